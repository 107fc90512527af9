"""The watcher that ends what a killed job started (trainers/backends/reaper.py), with real processes and no Ray:
a job whose child keeps starting new processes, as a raylet starts workers, right up to and after the kill."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="the watcher reads /proc")

# The "job": starts its watcher, then a spawner that starts a sleeping child (and a short-lived one) every 50 ms
# and writes the sleeping ones' pids down.
_JOB = r"""
import subprocess, sys, time
from ganstream.trainers.backends.reaper import start_reaper
reaper = start_reaper()
spawner = subprocess.Popen([sys.executable, "-c", '''
import subprocess, sys, time
brief = []
with open(sys.argv[1], "a") as out:
    while True:
        child = subprocess.Popen(["sleep", "300"], stdout=subprocess.DEVNULL)
        out.write(f"{child.pid}\\n"); out.flush()
        brief.append(subprocess.Popen(["sleep", "0.2"]))  # the watcher records some of these, gone at the end
        brief = [p for p in brief if p.poll() is None]
        time.sleep(0.05)
''', sys.argv[1]])
print(spawner.pid, reaper.pid, flush=True)
time.sleep(300)
"""


def _running(pid: int) -> bool:
    """Alive and not a zombie (a zombie holds no memory or ports; only its parent can reap it)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def test_processes_started_after_the_last_poll_and_after_the_kill_are_ended_too(tmp_path):
    """... and the watcher itself exits once it has done its work."""
    pids_file = tmp_path / "pids"
    job = subprocess.Popen([sys.executable, "-c", _JOB, str(pids_file)], stdout=subprocess.PIPE, text=True)
    try:
        spawner, reaper = map(int, job.stdout.readline().split())
        time.sleep(1.3)  # several polls, and the kill lands between two of them
    finally:
        job.send_signal(signal.SIGKILL)
        job.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        started = [spawner, *map(int, pids_file.read_text().split())]
        alive = [p for p in [*started, reaper] if _running(p)]
        if not alive:
            break
        time.sleep(0.2)
    assert not alive, alive
    assert len(started) > 20  # the spawner really kept starting processes


def test_a_job_that_ends_normally_leaves_what_it_started_alone(tmp_path):
    """stop_reaper (the cluster was shut down normally) kills nothing: here a process the job leaves running."""
    code = ("import subprocess, time\nfrom ganstream.trainers.backends.reaper import start_reaper, stop_reaper\n"
            "r = start_reaper(); time.sleep(0.3)\nchild = subprocess.Popen(['sleep', '30'], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)\n"
            "time.sleep(1.2); stop_reaper(r); print(child.pid, flush=True)\n")
    child = int(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
    try:
        time.sleep(1.0)
        assert _running(child)
    finally:
        os.kill(child, signal.SIGKILL)
