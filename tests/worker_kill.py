"""The real fault of the Ray fit tests: run a fit in a thread, SIGKILL one training worker process (rank 1)
once the first checkpoint is registered, and hand back the fitted model and that rank's start records, so
the test can assert the worker was replaced and restarted from a checkpoint. No mock: the process dies."""

import os
import signal
import threading
import time
from pathlib import Path


def fit_with_a_killed_worker(fit, storage: Path, pid_dir: Path, run_name: str = "ganstream"):
    """`fit()` must run a 2-worker fit whose FitOptions have this `storage` and `pid_dir`. Asserts that rank 1
    was replaced and restarted from a checkpoint; returns the fitted model."""
    result = {}

    def run():
        try:
            result["model"] = fit()
        except BaseException as e:  # surfaced below
            result["error"] = e

    t = threading.Thread(target=run)
    t.start()
    deadline = time.monotonic() + 600
    committed = storage / run_name / "checkpoint_manager_snapshot.json"  # written once a checkpoint is registered
    while not committed.exists() and t.is_alive() and time.monotonic() < deadline:
        time.sleep(0.1)
    victim_file = pid_dir / "rank1.pid"
    assert t.is_alive() and victim_file.exists(), f"fit ended before the kill: {result}"
    os.kill(int(victim_file.read_text().split()[0]), signal.SIGKILL)
    t.join(timeout=900)
    assert not t.is_alive() and "error" not in result, result.get("error")
    starts = [tuple(int(v) for v in line.split()) for line in victim_file.read_text().splitlines()]
    assert len(starts) >= 2 and starts[0][0] != starts[-1][0], "the killed worker was replaced"
    assert starts[-1][1] >= 1, "the replacement started from a checkpoint, not from scratch"
    return result["model"]
