"""A real `mlflow server` for tests: 127.0.0.1 on a free port, sqlite backend and a local artifact
directory under a tmp dir, one worker and no job execution (2 processes instead of 12, see
../shared/STACK.md). `running_server(dir)` waits until /health answers, yields a handle, and SIGTERMs
the server at exit (SIGKILL of its own process group if it does not stop in 20 s)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from mlflow_db import fresh_store


@dataclass
class MlflowServer:
    uri: str
    backend_uri: str  # the sqlite store behind the server, readable directly even after it stopped
    proc: subprocess.Popen
    log: Path

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> None:
        if self.proc.poll() is not None:
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)  # the group of the server we started (own session)
            self.proc.wait(timeout=10)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(directory: Path) -> MlflowServer:
    """Start a server process (not yet healthy: see `wait_healthy`)."""
    directory.mkdir(parents=True, exist_ok=True)
    db, artifacts, log = fresh_store(directory / "server.db"), directory / "artifacts", directory / "server.log"
    port = free_port()
    exe = Path(sys.executable).with_name("mlflow")
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "MLFLOW_DISABLE_TELEMETRY": "true"}
    env.pop("MLFLOW_TRACKING_URI", None)
    cmd = [str(exe), "server", "--backend-store-uri", f"sqlite:///{db}", "--artifacts-destination", str(artifacts),
           "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=directory,
                                start_new_session=True)
    return MlflowServer(f"http://127.0.0.1:{port}", f"sqlite:///{db}", proc, log)


def wait_healthy(server: MlflowServer, timeout: float = 120.0) -> MlflowServer:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"mlflow server exited with {server.proc.returncode}:\n{server.log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(server.uri + "/health", timeout=2) as r:
                if r.status == 200:
                    return server
        except OSError:
            pass
        time.sleep(0.3)
    server.stop()
    raise RuntimeError(f"mlflow server not healthy after {timeout:.0f}s:\n{server.log.read_text()[-3000:]}")


def start(directory: Path, timeout: float = 120.0) -> MlflowServer:
    return wait_healthy(launch(directory), timeout)


def start_many(directories: list[Path]) -> list[MlflowServer]:
    """Several servers started at once (their start-ups overlap): for the tests that each stop, kill or freeze
    their own."""
    launched = [launch(d) for d in directories]
    return [wait_healthy(s, timeout=300.0) for s in launched]  # four start-ups at once on 2 cores: slow when busy


@contextlib.contextmanager
def running_server(directory: Path):
    server = start(directory)
    try:
        yield server
    finally:
        server.stop()
