"""Where a Ray Train worker's memory goes while it streams its shard: the diagnosis behind the read block cap
of trainers/backends/partitioned.py and `train --object-store-mb` (benchmarks/RESULTS.md, "Ray Train scaling").

    .venv/bin/python benchmarks/ray_block_memory.py DATA [--block-mb MB] [--store-mb MB] [--data-limit-mb MB] [--encode]

Two actors consume `streaming_split(2, equal=True)` of DATA (what Ray Train hands its workers) in 4,000-row
batches, with no training; every 50 batches each records rows seen, private memory (RssAnon), peak RSS, the
Arrow pool's allocated bytes, and at the end its RssShmem (object-store pages it mapped), its CPU time and its
minor page faults. The first batch's `get_total_buffer_size()` is the block the batch is sliced from. The
store's size, peak use and spill / restore totals are printed too. --block-mb sets Ray Data's block cap
(default: the fit's own, READ_BLOCK_BYTES; 128 = Ray Data's default); --store-mb sizes the local object store;
--data-limit-mb caps Ray Data's own use of the store (its read-ahead); --encode also fills and encodes each
batch as a fit's worker does. DATA: e.g. $TMPDIR/ganstream-bench/hive_5000000 (written by
benchmarks/ray_scaling.py). ~30-40 s per run on a 2-core machine.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # ray_scaling's StoreMonitor
os.environ.setdefault("RAY_AUTH_MODE", "disabled")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data")
    p.add_argument("--block-mb", type=float, default=None)
    p.add_argument("--store-mb", type=float, default=None)
    p.add_argument("--encode", action="store_true")
    p.add_argument("--data-limit-mb", type=float, default=None,
                   help="cap Ray Data's object-store use for the stream (ExecutionOptions.resource_limits)")
    args = p.parse_args()

    import numpy as np
    import ray

    from ganstream.trainers.backends import ray_cluster, ray_tabular, ray_tabular_worker
    from ganstream.trainers.backends.options import FitOptions
    from ganstream.trainers.backends.partitioned import discover, read_dataset, to_frame

    ray.init(num_cpus=2, object_store_memory=int(args.store_mb * 2**20) if args.store_mb else None,
             include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    ray_cluster._quiet_ray_data()
    src = discover(args.data)
    ds = read_dataset(src, seed=0)
    if args.block_mb:
        ds.context.target_max_block_size = int(args.block_mb * 2**20)
    if args.data_limit_mb:
        from ray.data import ExecutionResources
        ds.context.execution_options.resource_limits = ExecutionResources(object_store_memory=args.data_limit_mb * 2**20)
    config = None
    if args.encode:
        from ganstream.trainers.tabular.model import TabularGAN
        model = TabularGAN(epochs=1, batch_size=500, seed=0, imputer_epochs=1)
        ray_tabular.prepare_model(model, src, ds, (), 2)
        config = ray_tabular.worker_config(model, src, (), FitOptions(backend="ray", workers=2), "memory", None)

    @ray.remote(num_cpus=0.5)
    class Consumer:
        def run(self, shard, columns, keys, config):
            import pyarrow as pa
            model = ray_tabular_worker._rebuild(config) if config else None
            rng = np.random.default_rng(0)
            trace, rows, first_block = [], 0, None
            cpu0, faults0 = time.process_time(), resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            for i, batch in enumerate(shard.iter_batches(batch_size=4000, batch_format="pyarrow")):
                rows += batch.num_rows
                if first_block is None:
                    first_block = batch.get_total_buffer_size() / 2**20
                if model is not None:
                    ray_tabular_worker.encode_batch(model, to_frame(batch, columns, keys, ()), rng)
                if i % 50 == 0:
                    trace.append((rows, ray_cluster.private_memory_mb(),
                                  resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, pa.total_allocated_bytes() / 2**20))
            trace.append((rows, ray_cluster.private_memory_mb(),
                          resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, pa.total_allocated_bytes() / 2**20))
            usage = (time.process_time() - cpu0, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults0)
            return first_block, ray_cluster.shared_memory_mb(), trace, usage

    from ray_scaling import StoreMonitor

    t0 = time.perf_counter()
    consumers = [Consumer.remote() for _ in range(2)]
    with StoreMonitor() as store:
        results = ray.get([c.run.remote(s, src.columns, src.partition_keys, config)
                           for c, s in zip(consumers, ds.streaming_split(2, equal=True))])
    s = store.result
    print(f"{args.data}: block cap {ds.context.target_max_block_size / 2**20:g} MiB, "
          f"store {s['store_mb']:,.0f} MB (peak use {s['store_peak_used_mb']:.0f} MB, spilled {s['spilled_mb']:.0f} MB, "
          f"restored {s['restored_mb']:.0f} MB), encode {args.encode}, {time.perf_counter() - t0:.0f}s")
    print("rows seen: private MB / peak RSS MB / Arrow pool MB")
    for k, (first_block, shared, trace, (cpu_s, faults)) in enumerate(results):
        points = trace[::max(1, len(trace) // 8)] + [trace[-1]]
        print(f"worker {k}: first batch's block {first_block:.0f} MB, object-store pages at the end {shared:.0f} MB, "
              f"CPU {cpu_s:.1f} s, {faults:,} minor page faults")
        print("  " + "  ".join(f"{r // 1000}k: {p:.0f}/{rss:.0f}/{a:.0f}" for r, p, rss, a in points))
    ray.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
