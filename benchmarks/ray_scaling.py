"""Ray Train scaling: throughput with 1 and 2 workers, Ray's overhead against the same step run in-process,
and peak memory per worker as the data grows from 1M to 5M rows.

    .venv/bin/python benchmarks/ray_scaling.py [--rows 5000000] [--small-rows 1000000] [--timing-rows 100000]
        [--skip inprocess|ray1|ray2|memory] [--read-block-mb MB] [--cache-mb MB] [--object-store-mb MB] [--out FILE]

Run time: ~10 min on an idle 2-core machine (dataset generation ~10 s the first time, then reused; timing
runs ~6 min, memory runs ~3 min); 2-3x that under load.

A hive-partitioned dataset (4 regions x days, 125k rows per file, 2% holes in one column) is generated once
into $TMPDIR/ganstream-bench/ (reused when present); the 1M set hard-links the first days' files; the
timing set holds the first --timing-rows/4 rows of each region's first file. Side by side, in one process
on one Ray cluster:
  * throughput / overhead (timing set, full epochs): in-process TabularGAN.fit on the set read whole,
    the Ray Train path with 1 worker and with 2 workers. Epoch time is the trainers' own epoch_s (the epoch
    loop only: the in-process fit encodes once before it; a Ray worker reads, fills and encodes its shard
    in its first epoch and, when the encoded shard fits --cache-mb, trains on it in memory afterwards).
    CPU: epoch_cpu_s is the training process's CPU time per epoch (the in-process fit / a Ray worker);
    tree_cpu_s is the CPU time of this process and all its live descendants (Ray's GCS, raylet, workers,
    read tasks) over the whole run. The hole-filling imputer runs 1 epoch (one-off, outside epoch times).
  * memory (1M and 5M hive dirs, 2 workers, streaming: no shard cache): every row is streamed through each
    worker's data path (read, fill, encode, condition pools) but only --memory-steps training steps run per
    epoch, so the 5M run fits in a benchmark budget on a busy 2-core machine; peak RSS and peak private
    memory (RssAnon) of a worker (rank 0) are compared. --read-block-mb 128 restores Ray Data's default
    block cap, for the before/after comparison.
  * object store: every run records the local store's size, its peak use (polled every 0.5 s) and what Ray
    spilled to disk / restored / put in fallback files during the run (0 expected: spilling would make a
    bounded store a slowdown, not a fix). --object-store-mb sizes the store as `train --object-store-mb`
    does (default: Ray's own sizing, as a fit's default).
Timing runs fit --epochs (3) epochs; the epoch time reported is the mean of epochs 2.., the first (which
also waits for Ray Data's pipeline to start) is shown apart. Writes benchmarks/results/ray_scaling.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("GANSTREAM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("GANSTREAM_RAY_KEEP", "1")  # one cluster for all runs of this script
os.environ.setdefault("RAY_AUTH_MODE", "disabled")

import numpy as np  # noqa: E402  # noqa: E402
import pandas as pd  # noqa: E402  # noqa: E402
import pyarrow as pa  # noqa: E402  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import torch  # noqa: E402  # noqa: E402

torch.set_num_threads(1)

from ganstream.trainers.backends.options import FitOptions
from ganstream.trainers.backends.ray_tabular import fit_on_ray  # noqa: E402
from ganstream.trainers.tabular.model import TabularGAN  # noqa: E402

REGIONS = ("eu", "us", "apac", "latam")
ROWS_PER_FILE = 125_000


def partition(region: str, day: int, n: int) -> pd.DataFrame:
    rng = np.random.default_rng([REGIONS.index(region), day])
    c = rng.choice(["a", "b", "c", "d", "e"], n, p=[0.4, 0.3, 0.15, 0.1, 0.05])
    x1 = rng.normal(REGIONS.index(region), 1.0, n) + (c == "e") * 3.0
    x2 = np.round(rng.lognormal(3.0, 1.0, n), 2)
    x2[rng.random(n) < 0.02] = np.nan
    return pd.DataFrame({"x1": x1, "x2": x2, "k": rng.integers(0, 10, n), "c": c, "flag": rng.random(n) < 0.3})


def make_dataset(root: Path, rows: int) -> Path:
    marker = root / "_complete"
    if marker.exists():
        return root
    days = int(np.ceil(rows / ROWS_PER_FILE / len(REGIONS)))
    for day in range(days):
        for region in REGIONS:
            d = root / f"region={region}" / f"day=2026-11-{day + 1:02d}"
            d.mkdir(parents=True, exist_ok=True)
            pq.write_table(pa.Table.from_pandas(partition(region, day, ROWS_PER_FILE), preserve_index=False),
                           d / "part-0.parquet")
    marker.write_text(str(rows))
    return root


def subset(big: Path, small: Path, rows: int) -> Path:
    """The first days of `big` (hard links: no second copy on disk)."""
    if (small / "_complete").exists():
        return small
    days = rows // ROWS_PER_FILE // len(REGIONS)
    for f in sorted(big.rglob("*.parquet")):
        day = int(f.parent.name.split("-")[-1])
        if day <= days:
            target = small / f.relative_to(big)
            target.parent.mkdir(parents=True, exist_ok=True)
            if not target.exists():
                os.link(f, target)
    (small / "_complete").write_text(str(rows))
    return small


def timing_set(big: Path, root: Path, rows: int) -> Path:
    if (root / "_complete").exists():
        return root
    per = rows // len(REGIONS)
    for region in REGIONS:
        f = big / f"region={region}" / "day=2026-11-01" / "part-0.parquet"
        target = root / f.relative_to(big)
        target.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pq.read_table(f).slice(0, per), target)
    (root / "_complete").write_text(str(rows))
    return root


def read_hive(root: Path) -> pd.DataFrame:
    return pd.concat([pd.read_parquet(f).assign(region=f.parent.parent.name.split("=")[1], day=f.parent.name.split("=")[1])
                      for f in sorted(root.rglob("*.parquet"))], ignore_index=True)


def tree_cpu_s() -> float:
    """CPU seconds (user + system) of this process and every live descendant: the Ray cluster's GCS, raylet,
    training workers, Ray Data's read tasks and split coordinator. The contention-robust cost of a run (a
    process that exited in between is missed: Ray keeps its workers alive, so few do)."""
    parents, cpu = {}, {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry)] = int(fields[1])
        cpu[int(entry)] = (int(fields[11]) + int(fields[12])) / tick
    tree, frontier = {os.getpid()}, [os.getpid()]
    while frontier:
        p = frontier.pop()
        for child, parent in parents.items():
            if parent == p and child not in tree:
                tree.add(child)
                frontier.append(child)
    return sum(cpu.get(p, 0.0) for p in tree)


class StoreMonitor:
    """The local object store during a run: its size, peak bytes in use (polled), and the spill / restore /
    fallback totals Ray keeps (cumulative since the cluster started: a run's share is the difference)."""

    def __init__(self, interval_s: float = 0.5):
        import threading
        self.interval_s, self.peak, self._stop = interval_s, 0, threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    @staticmethod
    def stats():
        import ray
        from ray._private import internal_api
        if not ray.is_initialized():
            return None
        state = internal_api.get_state_from_address(ray.get_runtime_context().gcs_address)
        return internal_api.get_memory_info_reply(state, timeout_seconds=10).store_stats

    def _poll(self):
        while not self._stop.is_set():
            try:
                s = self.stats()
                if s is not None:
                    self.peak = max(self.peak, s.object_store_bytes_used)
            except Exception:
                pass
            self._stop.wait(self.interval_s)

    def __enter__(self):
        s = self.stats()
        self.before = (s.spilled_bytes_total, s.restored_bytes_total) if s is not None else (0, 0)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        s = self.stats()
        mb = 2**20
        self.result = {"store_mb": float(s.object_store_bytes_avail) / mb, "store_peak_used_mb": self.peak / mb,
                       "spilled_mb": (s.spilled_bytes_total - self.before[0]) / mb,
                       "restored_mb": (s.restored_bytes_total - self.before[1]) / mb,
                       "fallback_mb": s.object_store_bytes_fallback / mb}
        return False


def summary(model, label: str, rows: int, workers: int | None, seconds: float) -> dict:
    """Epoch time: the mean over epochs after the first when there are several (steady state: the first Ray
    epoch also waits for Ray Data's pipeline to start), else the one epoch; the first is kept apart."""
    hist = model.history
    steady = hist[1:] or hist
    h = hist[-1]
    steps = h.get("steps") or max(1, rows // model.config.batch_size)
    mean = lambda k: float(np.mean([e.get(k, 0.0) for e in steady]))  # noqa: E731
    return {"run": label, "rows": rows, "workers": workers, "epochs": len(hist), "first_epoch_s": hist[0]["epoch_s"],
            "epoch_s": mean("epoch_s"), "epoch_cpu_s": mean("epoch_cpu_s"), "first_epoch_cpu_s": hist[0].get("epoch_cpu_s"),
            "data_wait_s": mean("data_wait_s"), "prepare_s": mean("prepare_s"), "checkpoint_s": mean("checkpoint_s"),
            "cached_epochs": sum(bool(e.get("cached")) for e in hist),
            "steps_per_worker": steps, "rows_per_s": mean("rows_per_s"),
            "peak_rss_mb_per_worker": h.get("peak_rss_mb"), "peak_private_mb_per_worker": h.get("peak_private_mb"),
            "shared_mb_per_worker": h.get("shared_mb"),
            "total_s": seconds}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=5_000_000)
    p.add_argument("--small-rows", type=int, default=1_000_000)
    p.add_argument("--timing-rows", type=int, default=100_000)
    p.add_argument("--memory-steps", type=int, default=20)
    p.add_argument("--epochs", type=int, default=3, help="epochs of the timing runs (memory runs: 1)")
    p.add_argument("--batch-size", type=int, default=500)
    p.add_argument("--dir", default=os.path.join(tempfile.gettempdir(), "ganstream-bench"))
    p.add_argument("--out", default=str(Path(__file__).parent / "results" / "ray_scaling.json"))
    p.add_argument("--skip", action="append", default=[], help="skip runs: inprocess, ray1, ray2, memory")
    p.add_argument("--read-block-mb", type=float, default=None,
                   help="Ray Data block cap for the runs (default: trainers.partitioned.READ_BLOCK_BYTES, 4 MiB; "
                        "128 = Ray Data's own default, which made worker memory grow with the data)")
    p.add_argument("--cache-mb", type=float, default=None,
                   help="--worker-cache-mb of the timing runs (default: the fit's, 256; 0: re-read every epoch)")
    p.add_argument("--object-store-mb", type=float, default=None,
                   help="the local cluster's object store, as train --object-store-mb (default: Ray's own "
                        "sizing, 30%% of memory, as a fit's default)")
    args = p.parse_args()
    base = Path(args.dir)
    load_at_start = os.getloadavg()
    t0 = time.perf_counter()
    big = make_dataset(base / f"hive_{args.rows}", args.rows)
    small = subset(big, base / f"hive_{args.small_rows}", args.small_rows)
    timing = timing_set(big, base / f"timing_{args.timing_rows}", args.timing_rows)
    print(f"datasets ready in {time.perf_counter() - t0:.0f}s: {big} ({args.rows:,} rows), {small}, {timing}", flush=True)
    if args.read_block_mb is not None:
        import ganstream.trainers.backends.partitioned as partitioned
        partitioned.READ_BLOCK_BYTES = int(args.read_block_mb * 2**20)
    cache = {} if args.cache_mb is None else {"cache_mb": args.cache_mb}
    store = {"object_store_mb": args.object_store_mb or None}  # 0 or none: Ray's own sizing
    cfg = dict(epochs=args.epochs, batch_size=args.batch_size, seed=0, imputer_epochs=1)
    ckpt = base / "checkpoints"
    rows = []

    def record(r, t_cpu):
        r["tree_cpu_s"] = tree_cpu_s() - t_cpu  # the whole run: start-up, statistics pass, imputer, epochs
        rows.append(r)
        print(r, flush=True)

    if "inprocess" not in args.skip:
        table = read_hive(timing)
        t, c = time.perf_counter(), tree_cpu_s()
        model = TabularGAN(**cfg).fit(table)
        record({**summary(model, "in-process", len(table), None, time.perf_counter() - t),
                "peak_rss_mb_per_worker": None}, c)
    for label, workers in (("ray-1", 1), ("ray-2", 2)):
        if label.replace("-", "") in args.skip:
            continue
        t, c = time.perf_counter(), tree_cpu_s()
        with StoreMonitor() as monitor:
            model = fit_on_ray(TabularGAN(**cfg), str(timing),
                               opts=FitOptions(backend="ray", workers=workers, checkpoint_dir=str(ckpt), run_name=label, **cache, **store))
        record({**summary(model, label, args.timing_rows, workers, time.perf_counter() - t), **monitor.result}, c)
    if "memory" not in args.skip:
        for label, data, n in (("memory 1M", small, args.small_rows), ("memory 5M", big, args.rows)):
            t, c = time.perf_counter(), tree_cpu_s()
            opts = FitOptions(backend="ray", workers=2, checkpoint_dir=str(ckpt), run_name=label.replace(" ", "-"),
                                 max_steps_per_epoch=args.memory_steps, worker_cache_mb=0, **store)
            with StoreMonitor() as monitor:
                model = fit_on_ray(TabularGAN(**{**cfg, "epochs": 1}), str(data), opts=opts)
            record({**summary(model, label, n, 2, time.perf_counter() - t), **monitor.result}, c)

    by = {r["run"]: r for r in rows}
    ratios = {}
    if "in-process" in by and "ray-1" in by:
        ratios["ray1_over_inprocess_epoch_s"] = by["ray-1"]["epoch_s"] / by["in-process"]["epoch_s"]
        ratios["ray1_over_inprocess_epoch_cpu_s"] = by["ray-1"]["epoch_cpu_s"] / by["in-process"]["epoch_cpu_s"]
        ratios["ray1_over_inprocess_total_tree_cpu_s"] = by["ray-1"]["tree_cpu_s"] / by["in-process"]["tree_cpu_s"]
    if "ray-1" in by and "ray-2" in by:
        ratios["ray2_over_ray1_rows_per_s"] = by["ray-2"]["rows_per_s"] / by["ray-1"]["rows_per_s"]
    if "memory 1M" in by and "memory 5M" in by:
        ratios["rss_5m_over_1m"] = by["memory 5M"]["peak_rss_mb_per_worker"] / by["memory 1M"]["peak_rss_mb_per_worker"]
        ratios["private_5m_over_1m"] = (by["memory 5M"]["peak_private_mb_per_worker"]
                                        / by["memory 1M"]["peak_private_mb_per_worker"])
    print(f"\n{'run':<12}{'rows':>11}{'workers':>8}{'steps/w':>8}{'1st ep s':>9}{'epoch s':>9}{'ep CPU s':>9}"
          f"{'wait s':>8}{'cached':>7}{'rows/s':>9}{'RSS/worker MB':>15}{'private MB':>12}{'shared MB':>11}{'total s':>9}{'tree CPU s':>11}"
          f"{'store MB':>10}{'peak used':>10}{'spilled':>9}")
    for r in rows:
        rss = f"{r['peak_rss_mb_per_worker']:.0f}" if r["peak_rss_mb_per_worker"] else "-"
        priv = f"{r['peak_private_mb_per_worker']:.0f}" if r.get("peak_private_mb_per_worker") else "-"
        shared = f"{r['shared_mb_per_worker']:.0f}" if r.get("shared_mb_per_worker") is not None else "-"
        print(f"{r['run']:<12}{r['rows']:>11,}{str(r['workers'] or '-'):>8}{r['steps_per_worker']:>8}"
              f"{r['first_epoch_s']:>9.1f}{r['epoch_s']:>9.1f}{r['epoch_cpu_s']:>9.1f}{r['data_wait_s']:>8.1f}"
              f"{r['cached_epochs']:>7}{r['rows_per_s']:>9,.0f}{rss:>15}{priv:>12}{shared:>11}{r['total_s']:>9.0f}{r['tree_cpu_s']:>11.0f}"
              + (f"{r['store_mb']:>10,.0f}{r['store_peak_used_mb']:>10.0f}{r['spilled_mb']:>9.0f}" if "store_mb" in r else ""))
    for k, v in ratios.items():
        print(f"{k}: {v:.3f}")
    load = os.getloadavg()
    import ganstream.trainers.backends.partitioned as partitioned
    result = {"command": " ".join(sys.argv), "read_block_mb": partitioned.READ_BLOCK_BYTES / 2**20,"date": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, shared",
              "load_avg_at_start": load_at_start, "load_avg_at_end": load, "config": {**cfg, "rows": args.rows, "small_rows": args.small_rows,
                                                  "timing_rows": args.timing_rows, "memory_steps": args.memory_steps,
                                                  "cache_mb": args.cache_mb, "object_store_mb": args.object_store_mb},
              "runs": rows, "ratios": ratios}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(f"wrote {args.out} (load average at start {load_at_start[0]:.1f}, at end {load[0]:.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
