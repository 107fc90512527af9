"""The Ray cluster a fit runs on, and the plumbing both Ray fits share (tabular: ray_tabular.py, time series:
ray_timeseries.py): joining or starting the cluster, CPUs per worker, running TorchTrainers while relaying
their progress, turning a worker's failure into one line, and the end-of-epoch report.

Every failure of Ray itself (a cluster that cannot start, too few CPUs, a fit that dies) is a
DistributedFitError: an InfrastructureError, exit 4, one line."""

from __future__ import annotations

import os
import sys
import tempfile
import threading
import time
from collections import Counter
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from ganstream.trainers.backends.reaper import start_reaper, stop_reaper
from ganstream.trainers.errors import ConfigError, GanstreamError, InfrastructureError, disk_full
from ganstream.trainers.progress import ProgressFn

READ_CPUS = 1.0  # CPUs left free for Ray Data's read tasks (none left -> read_parquet hangs, STACK.md)
MIN_WORKER_CPUS = 0.25  # below this a worker would be starved: refuse instead of crawling


class DistributedFitError(InfrastructureError):
    """The cluster cannot run the fit (cannot start, unreachable, too few CPUs) or the fit failed on it (exit 4)."""


def object_store_mb() -> float:
    """The joined or started cluster's object store, in MB (what Ray reports; for the console and tests)."""
    import ray
    return float(ray.cluster_resources().get("object_store_memory", 0.0)) / 2**20


@contextmanager
def ray_cluster(address: str | None = None, store_mb: float | None = None) -> Iterator[None]:
    """Join ADDR, or start a local cluster sized to this machine (object store: `store_mb`, None: Ray's sizing)
    and shut it down afterwards. A joined cluster's store belongs to its operator: `store_mb` is not applied.
    A Ray already initialised in this process is used as it is and left running; so is the one started here
    when $GANSTREAM_RAY_KEEP=1 (the test suite shares one cluster and shuts it down at the end)."""
    import ray

    if ray.is_initialized():
        yield
        return
    os.environ.setdefault("RAY_TRAIN_V2_ENABLED", "1")
    reaper = None if address else start_reaper()  # a local cluster's processes must not outlive a killed job
    try:
        if address:
            ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
        else:
            os.environ.setdefault("RAY_AUTH_MODE", "disabled")
            _local_train_settings()
            store = int(store_mb * 2**20) if store_mb else None
            ray.init(num_cpus=os.cpu_count() or 1, object_store_memory=store, include_dashboard=False,
                     log_to_driver=False, logging_level="ERROR")
    except (ConnectionError, RuntimeError, ValueError, OSError) as e:
        where = f"Ray cluster at {address}" if address else "a local Ray cluster"
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:300]
        hint = ""
        if "socket" in first.lower() and not address:
            hint = (f"; Ray's socket paths must stay under 108 bytes: set RAY_TMPDIR (or TMPDIR) to a short directory "
                    f"such as /tmp/ray (now {os.environ.get('RAY_TMPDIR') or os.environ.get('TMPDIR') or '/tmp'})")
        stop_reaper(reaper)
        raise DistributedFitError(f"cannot start or join {where} ({first}){hint}") from None
    _quiet_ray_data()
    _relay_cluster_messages()
    try:
        yield
    finally:
        if os.environ.get("GANSTREAM_RAY_KEEP") != "1":
            ray.shutdown()
            stop_reaper(reaper)  # (a kept cluster keeps its watcher until this process ends)


def _local_train_settings() -> None:
    """Ray Train settings for a cluster started here (its processes inherit this environment; a joined cluster
    keeps its operator's). The controller collects workers' reports every 2 s by default and a worker's next
    report waits until the previous one is collected, so every epoch shorter than that was stretched to ~2 s
    (measured: 1.7 s of waiting after each 0.3-s epoch; an 18-epoch test fit took 56 s, 20 s at 0.25). No node
    of a local cluster is preempted: no watcher actor for it."""
    os.environ.setdefault("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", "0.25")
    os.environ.setdefault("RAY_TRAIN_ENABLE_PREEMPTION_WATCHER", "0")


def _relay_cluster_messages() -> None:
    """Ray prints the cluster's messages to this driver (a node marked dead, the raylet's log tail) on stdout,
    which is where ganstream's results go: one line each on stderr instead, prefixed "ray:". The worker-pool
    warning about fractional CPUs is dropped: fractional CPUs per worker are this backend's choice
    (`cpus_per_worker`). Ray is pinned (pyproject.toml); the hook is only replaced where it exists."""
    import ray._private.worker as ray_worker
    if getattr(ray_worker.print_to_stdstream, "ganstream", False) or not hasattr(ray_worker, "print_to_stdstream"):
        return
    original = ray_worker.print_to_stdstream

    def relay(data, ignore_prefix):
        if data.get("pid") != "raylet":
            return original(data, ignore_prefix)
        first = next((ln.strip() for text in data.get("lines", []) for ln in str(text).splitlines() if ln.strip()), "")
        if first and "PYTHON worker processes have been started" not in first:
            print(f"ray: {first[:300]}", file=sys.stderr, flush=True)

    relay.ganstream = True
    ray_worker.print_to_stdstream = relay


def _quiet_ray_data() -> None:
    import warnings

    import ray.data
    # Ray warns about its own internal use of its deprecated options (ExecutionOptions.exclude_resources) on every
    # fit: nothing a user of ganstream can act on
    warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"ray(\..*)?$")
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False if hasattr(ctx, "print_on_execution_start") else None
    import logging
    logging.getLogger("ray.data").setLevel(logging.ERROR)
    logging.getLogger("ray.train").setLevel(logging.ERROR)


def cpus_per_worker(total_workers: int, wait_s: float | None = None, read_cpus: float = READ_CPUS) -> float:
    """CPUs to ask per worker so that `read_cpus` stay free for Ray Data's readers (0 when no Ray Data
    pipeline feeds the workers). Fails at once when the
    cluster is too small for every worker to get MIN_WORKER_CPUS (Ray would otherwise wait forever for
    resources); when it is big enough but busy (tasks of an earlier job still finishing, another fit), waits
    up to `wait_s` ($GANSTREAM_RAY_WAIT_S, default 30) for CPUs to free, then fails with the same message."""

    import ray
    need = read_cpus + MIN_WORKER_CPUS * total_workers
    wait_s = float(os.environ.get("GANSTREAM_RAY_WAIT_S", "30")) if wait_s is None else wait_s
    total = float(ray.cluster_resources().get("CPU", 0.0))
    deadline = time.monotonic() + (wait_s if total >= need else 0.0)
    while True:
        available = float(ray.available_resources().get("CPU", 0.0))
        per = min(1.0, (available - read_cpus) / total_workers)
        if per >= MIN_WORKER_CPUS:
            return round(per, 3)
        if time.monotonic() >= deadline:
            reading = f" + {read_cpus:g} for reading" if read_cpus else ""
            wanted = (f"{total_workers} worker(s) need at least {need:g} free CPUs on the Ray cluster "
                      f"({MIN_WORKER_CPUS:g} per worker{reading})")
            if total < need:  # the cluster can never seat them: the request is what has to change
                raise ConfigError(f"{wanted}, but the cluster has {total:g}: lower --workers")
            raise DistributedFitError(f"{wanted}, but only {available:g} of {total:g} are free (busy): retry later "
                                      f"or lower --workers")
        time.sleep(0.5)


RELAY_RETRIES = 40  # consecutive failed reads of the progress queue (0.5 s apart) before the relay says so


def run_trainers(build, progress: ProgressFn | None, multi: bool = False, note=None) -> list:
    """Run the TorchTrainers `build(queue)` returns concurrently (threads: `fit()` blocks), relaying rank 0's
    per-epoch metrics (put on `queue` by the workers) to the console progress line while they run; with
    `multi`, each line is tagged with its run's partition. Where the workers run (`announce_placement`) goes to
    `note` as one line once all have started, and again after a restart: on a multi-node cluster that is what
    a user checks first. Returns the trainers' results; a failure in any is raised (a user error keeps its type
    and message, see `_explain`). Shared by tabular and time-series fits."""
    from ray.util.queue import Empty, Queue

    # The queue lives on the head node: on a multi-node cluster, the node a worker dies with must not take the
    # progress relay along. A hard constraint: with a soft affinity to this process's node (the head here), Ray
    # still placed the queue on the second node in about half the runs, and when that node was killed the
    # restarted workers' lines and the restart line were lost (2026-12-08, tests/test_ray_multinode.py).
    queue = Queue(actor_options={"num_cpus": 0, **_on_the_head_node()})
    trainers = build(queue)
    results: list = [None] * len(trainers)
    errors: list = [None] * len(trainers)

    def run(i):
        try:
            results[i] = trainers[i].fit()
        except BaseException as e:  # reported below, in the calling thread
            errors[i] = e

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(len(trainers))]
    for t in threads:
        t.start()
    placements: dict = {}
    announced = failures = 0
    while any(t.is_alive() for t in threads):
        try:
            metrics = queue.get(timeout=0.5)
            failures = 0
        except Empty:
            continue
        except Exception as e:  # a node went away: the queue's actor may be unavailable for a while, or for good
            failures += 1
            if failures == RELAY_RETRIES and note:  # the fits go on; their lines resume if the queue answers again
                note(f"Ray Train: the progress queue has not answered for {RELAY_RETRIES // 2} s "
                     f"({type(e).__name__}); the fit goes on, its progress lines resume if it answers again")
            time.sleep(0.5)
            continue
        if "placement" in metrics:  # Ray Train restarts a whole worker group: every worker announces again
            placements[(metrics.get("run"), metrics["placement"])] = metrics["node"]
            announced += 1
            if note and announced % (len(trainers) * metrics["world"]) == 0:
                per_node = Counter(placements.values())
                again = " (restarted after a failure)" if announced > len(trainers) * metrics["world"] else ""
                note(f"Ray Train: {len(placements)} worker(s) on {len(per_node)} node(s){again}: "
                     + ", ".join(f"{n} on node {node[:8]}" for node, n in sorted(per_node.items())))
            continue
        if progress:
            run_name = metrics.pop("run", None)
            progress({**metrics, "stage": run_name.split("-", 1)[1]} if multi and run_name else metrics)
    for t in threads:
        t.join()
    try:
        queue.shutdown()
    except Exception:
        pass
    for e in errors:
        if e is not None:
            raise _explain(e)
    return results


def _on_the_head_node() -> dict:
    """Actor options that place an actor on the head node, which holds Ray's control store (if it goes, the
    cluster goes): its own resource, which only the head has. Where no node has it, a soft preference for this
    process's node."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
    if any(node.get("Alive") and HEAD_RESOURCE in node.get("Resources", {}) for node in ray.nodes()):
        return {"resources": {HEAD_RESOURCE: 0.001}}
    return {"scheduling_strategy": NodeAffinitySchedulingStrategy(node_id=ray.get_runtime_context().get_node_id(),
                                                                   soft=True)}


HEAD_RESOURCE = "node:__internal_head__"  # the resource Ray gives the head node only


def _explain(e: BaseException) -> BaseException:
    """A user error raised in a worker keeps its type and message; anything else becomes one line."""
    seen = set()
    stack = [e]
    worker_errors = []
    while stack:
        x = stack.pop()
        if x is None or id(x) in seen:
            continue
        seen.add(id(x))
        if isinstance(x, GanstreamError):
            return x
        full = disk_full(x)  # a worker's ENOSPC arrives as text inside Ray's wrapper
        if full is not None:
            return full
        failures = getattr(x, "worker_failures", None) or {}
        worker_errors += [f for f in failures.values() if f is not None]
        stack.extend(failures.values())
        stack.extend([getattr(x, "cause", None), x.__cause__, x.__context__,
                      getattr(x, "controller_failure", None)])
    first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    # Ray's own first line ("Training failed due to worker errors:") names no cause: add a worker's last line
    causes = [ln.strip() for w in worker_errors for ln in str(w).strip().splitlines()[-1:] if ln.strip()]
    return DistributedFitError(f"distributed fit failed: {first}{' ' + causes[0][:300] if causes else ''}")


def announce_placement(rank: int, world: int, config: dict) -> None:
    """A worker says which node it runs on (see `run_trainers`); best effort, like the progress queue."""
    import ray
    if config.get("queue") is None:
        return
    try:
        config["queue"].put_nowait({"placement": rank, "world": world, "run": config.get("run"),
                                    "node": ray.get_runtime_context().get_node_id()})
    except Exception:
        pass


def report_epoch(rank: int, metrics: dict, config: dict, checkpoint) -> None:
    """End of an epoch on a worker: rank 0 relays its metrics to the console queue, writes a checkpoint with
    `checkpoint(tmp_dir)` and reports it; the other ranks report their metrics only (Ray Train keeps rank 0's
    checkpoint). Shared by the tabular and the time-series workers."""
    import ray.train

    if rank != 0:
        ray.train.report(metrics)
        return
    if config["queue"] is not None:
        try:
            config["queue"].put_nowait({**metrics, "run": config["run"]})
        except Exception:
            pass
    with tempfile.TemporaryDirectory(prefix="ganstream-ckpt-") as tmp:
        checkpoint(Path(tmp))
        ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(tmp))


def private_memory_mb() -> float:
    """This process's private resident memory (RssAnon). Peak RSS also counts the pages of Ray's shared
    object store the worker has touched (RssShmem, `shared_memory_mb`), which grow with how far Ray Data
    reads ahead (up to half the store: see --object-store-mb): private memory is what the worker itself holds."""
    return _status_mb("RssAnon")


def shared_memory_mb() -> float:
    """Resident shared memory (RssShmem): pages of Ray's object store this process has mapped and touched."""
    return _status_mb("RssShmem")


def _status_mb(field: str) -> float:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")
