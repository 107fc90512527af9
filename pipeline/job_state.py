"""The state a job keeps between runs in its STATE_DIR: the lock that keeps two runs of one job apart, and the
record of what the last run did."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
from pathlib import Path

from ganstream.trainers.errors import EXIT_BUSY, GanstreamError, InfrastructureError


class JobBusy(GanstreamError):
    """A second run of a job while the first still holds its lock. Exit status 5."""

    exit_code = EXIT_BUSY


@contextlib.contextmanager
def job_lock(job):
    """Hold `STATE_DIR/run.lock` (flock, released by the kernel even if the process dies) for the block;
    raise JobBusy at once if another process holds it."""
    state = Path(job.state_dir)
    try:
        state.mkdir(parents=True, exist_ok=True)
        fd = os.open(state / "run.lock", os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise InfrastructureError(f"cannot create the job's lock in {state}: {e}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
        os.close(fd)
        raise JobBusy(f"job '{job.name}' is already running ({holder}, lock {state / 'run.lock'}); "
                      f"not starting a second run") from None
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()} since "
                      f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}".encode(), 0)
        yield
    finally:
        os.ftruncate(fd, 0)
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def write_state(job, record: dict) -> None:
    """STATE_DIR/last_run.json, atomically: what the last run did (for people and monitoring)."""
    state = Path(job.state_dir)
    tmp = state / ".last_run.json.tmp"
    tmp.write_text(json.dumps(record, indent=1, default=str))
    os.replace(tmp, state / "last_run.json")
