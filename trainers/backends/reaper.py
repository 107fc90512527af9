"""No process outlives its job: a watcher that ends what a job started when the job is killed outright.

Why: a local Ray cluster is a dozen processes started by the job (GCS, raylet, agents, workers). When the job
ends normally `ray.shutdown()` stops them; when it is killed with SIGKILL (a scheduler's timeout, the OOM killer)
nothing in it runs, and Ray's dashboard and runtime-env agents lived on for 61 s before noticing (measured
2026-12-07). A scheduler that kills the whole process group does not see this, but one that kills the job's
pid does, and on a shared machine those processes keep memory and ports.

The watcher is a small separate process in its own session (so that a process-group kill of the job does not
take it along before it has done its work). Every POLL_S it records the job's descendants that appeared after it
was started, leaving out whatever the job had started before (pid and start time, so that a reused pid is
never hit). It exits when told to (the job ended
normally) or, when its parent is gone, ends what it recorded. A cluster keeps starting processes after its job is
gone (a raylet starts workers), some after the last poll: so the watcher first freezes (SIGSTOP) what it
recorded, takes in the children of frozen processes until no new one appears, and only then SIGKILLs them all.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

POLL_S = 0.5

_WATCH = r"""
import os, signal, sys, time
parent, before = int(sys.argv[1]), set(map(int, filter(None, sys.argv[2].split(","))))
def stat(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[1]), fields[19]  # ppid, start time
    except (OSError, IndexError, ValueError):
        return None
def descendants(*roots):
    children = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            s = stat(int(name))
            if s:
                children.setdefault(s[0], []).append((int(name), s[1]))
    out, todo = {}, list(roots)
    while todo:
        for pid, start in children.get(todo.pop(), []):
            if pid not in out and pid not in before and pid != me:  # never into what the job had before
                out[pid] = start
                todo.append(pid)
    return out
seen, me = {}, os.getpid()
while os.getppid() == parent:
    seen.update(descendants(parent))
    time.sleep(%(poll)s)
def alive(pid, start):
    s = stat(pid)
    return s is not None and s[1] == start
frozen = set()  # recorded pids already stopped, or found gone
while not set(seen) <= frozen:
    for pid, start in list(seen.items()):
        if pid not in frozen and alive(pid, start):
            try:
                os.kill(pid, signal.SIGSTOP)
            except OSError:
                pass
        frozen.add(pid)
    seen.update(descendants(*frozen))
for pid, start in seen.items():
    if alive(pid, start):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
"""


def _children_now() -> list[int]:
    """This process's current descendants (excluded from the watch: they are not the cluster's)."""
    mine, found = str(os.getpid()), []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            fields = Path(f"/proc/{name}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[1] == mine:
            found.append(int(name))
    return found


def start_reaper() -> subprocess.Popen | None:
    """Start the watcher for this process (Linux only: it reads /proc); None where it cannot run."""
    if not Path("/proc/self/stat").exists():
        return None
    try:
        return subprocess.Popen([sys.executable, "-c", _WATCH % {"poll": POLL_S}, str(os.getpid()),
                                 ",".join(map(str, _children_now()))],
                                start_new_session=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
    except OSError:
        return None


def stop_reaper(reaper: subprocess.Popen | None) -> None:
    """The job ended normally (its cluster is shut down): the watcher goes without killing anything."""
    if reaper is not None and reaper.poll() is None:
        reaper.kill()
        reaper.wait()
