"""A Ray cluster of two nodes on this machine, started and stopped here as a user starts one (`ray start --head`,
then `ray start --address` for the second node, 1 CPU each, in their own temp directory), and a fit on it:
`ganstream train --ray-address 127.0.0.1:PORT --workers 2` places one worker on each node, and when the second
node is killed mid-fit (SIGKILL to its raylet and every process below its `ray start`, as when a machine goes
away), the fit still ends in a model (or, if it cannot, in one line that --resume continues from): Ray Train
restarts both workers on the head node from the last checkpoint, the fit says so, and its progress lines go on.
(Until the progress queue was pinned to the head node, half the runs lost those lines: the queue had been placed
on the driver's node, which could be the killed one.)

Never `ray stop` here: it ends every Ray process on the machine, this suite's shared cluster included; each node is
its own process group (setsid) and is ended as one."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlflow_server import free_port

pytestmark = [pytest.mark.xdist_group("ray")]  # with the other Ray tests: one Ray workload at a time on 2 cores

RAY = Path(sys.executable).with_name("ray")
GANSTREAM = Path(sys.executable).with_name("ganstream")


def _start_node(args: list[str], log: Path, env: dict) -> subprocess.Popen:
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(RAY), "start", "--block", "--num-cpus", "1", "--node-ip-address", "127.0.0.1",
                                 *args], stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    deadline = time.monotonic() + 120
    while "Ray runtime started" not in log.read_text(errors="replace"):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"ray start failed:\n{log.read_text()[-3000:]}")
        time.sleep(0.3)
    return proc


def _end(proc: subprocess.Popen) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=15)
            time.sleep(1.0 if sig == signal.SIGTERM else 0)
        except subprocess.TimeoutExpired:
            continue


def _group_members(pgid: int, name: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.getpgid(int(entry)) == pgid and name in Path(f"/proc/{entry}/cmdline").read_bytes().decode(
                        errors="replace"):
                    found.append(int(entry))
            except (OSError, ProcessLookupError):
                continue
    return found


def _tree(root: int) -> list[int]:
    """`root` and every process below it (Ray's workers may start their own sessions: a group kill misses them)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


@pytest.fixture(scope="module")
def two_nodes(ray_first_fit):
    """(head address, the second node's process). `ray_first_fit`: the suite's shared cluster starts first, as
    every Ray test in the group expects; this cluster is separate from it."""
    directory = Path(tempfile.mkdtemp(prefix="gs-mn-", dir="/tmp"))  # short: Ray's socket paths have a 107-byte limit
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_ADDRESS")}
    env.update(RAY_TMPDIR=str(directory), OMP_NUM_THREADS="1")
    port = free_port()
    head = _start_node(["--head", "--port", str(port), "--include-dashboard", "false", "--temp-dir",
                        str(directory / "ray")], directory / "head.log", env)
    try:
        second = _start_node(["--address", f"127.0.0.1:{port}"], directory / "second.log", env)
    except BaseException:
        _end(head)
        raise
    yield f"127.0.0.1:{port}", second, directory
    _end(second)
    _end(head)
    shutil.rmtree(directory, ignore_errors=True)  # the nodes' logs and sockets


def test_two_workers_go_one_per_node_and_a_killed_node_is_recovered_from(two_nodes, tmp_path):
    address, second, directory = two_nodes
    rng = np.random.default_rng(0)
    n = 2000
    pd.DataFrame({"x": rng.normal(size=n), "y": rng.choice(["a", "b", "c"], n),
                  "z": rng.integers(0, 50, n)}).to_csv(tmp_path / "t.csv", index=False)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "RAY_TMPDIR": str(directory)}
    env.pop("RAY_ADDRESS", None)
    fit = subprocess.Popen([str(GANSTREAM), "train", str(tmp_path / "t.csv"), "--ray-address", address, "--workers",
                            "2", "--epochs", "25", "--imputer-epochs", "2", "--out", str(tmp_path / "m"),
                            "--checkpoint-dir", str(tmp_path / "ckpt")], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, env=env, text=True)
    lines, killed = [], None
    try:
        for line in fit.stdout:
            lines.append(line.rstrip("\n"))
            if killed is None and line.startswith("[train] epoch ") and int(line.split()[2].split("/")[0]) >= 3:
                assert _group_members(second.pid, "raylet"), "the second node has no raylet"
                for pid in _tree(second.pid):  # the raylet and everything on the node, as a lost machine
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                killed = time.monotonic()
        code = fit.wait(timeout=600)
    finally:
        if fit.poll() is None:
            fit.kill()
            fit.wait()
    out = "\n".join(lines)
    placed = [ln for ln in lines if ln.startswith("Ray Train: 2 worker(s) on ")]
    assert placed and placed[0].startswith("Ray Train: 2 worker(s) on 2 node(s): 1 on node "), out[-3000:]
    assert killed is not None, out[-3000:]
    assert "Traceback" not in out, out[-3000:]
    assert "(raylet)" not in out and "PYTHON worker processes" not in out, out[-3000:]  # one "ray:" line each
    if code == 0:  # the fit finished: Ray Train restarted the group on the head node, and the fit says so
        assert (tmp_path / "m" / "model.json").is_file()
        restarted = [i for i, ln in enumerate(lines) if "(restarted after a failure)" in ln]
        assert restarted and "on 1 node(s)" in lines[restarted[0]], out[-3000:]
        after = [ln for ln in lines[restarted[0]:] if ln.startswith("[train] epoch ")]
        assert after and after[-1].startswith("[train] epoch 25/25"), out[-3000:]  # its progress lines go on
    else:  # or one clear line, and --resume continues from the last good checkpoint on the remaining node
        errors = [ln for ln in lines if "error:" in ln]
        assert code == 4 and len(errors) == 1, out[-3000:]
        resumed = subprocess.run([*fit.args, "--resume"], capture_output=True, text=True, env=env, timeout=600)
        assert resumed.returncode == 0 and "--workers" in out, resumed.stderr[-3000:]
