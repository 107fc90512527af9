"""`train`'s Ray Train options, kept apart from pipeline/cli.py so the CLI only wires them in. Importing this
module does not import Ray (the parser must stay fast)."""

from __future__ import annotations

import argparse
from pathlib import Path

from .argtypes import number_at_least, positive_int
from .errors import ConfigError


_workers = positive_int("--workers")
MIN_OBJECT_STORE_MB = 75  # Ray refuses a smaller object store (ray_constants.OBJECT_STORE_MINIMUM_MEMORY_BYTES)
_object_store_mb = number_at_least("--object-store-mb", MIN_OBJECT_STORE_MB)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("distributed fit (Ray Train: how `train` fits both model kinds)")
    g.add_argument("--workers", type=_workers, default=1,
                   help="Ray Train workers (DDP over gloo, one torch thread each; default: 1). DATA is streamed "
                        "to the workers by Ray Data, never read whole into this process")
    g.add_argument("--ray-address", metavar="ADDR",
                   help="join this Ray cluster (e.g. ray://host:10001 or host:6379); default: start a local "
                        "cluster sized to this machine and shut it down afterwards. An address where no Ray cluster answers "
                        "fails within seconds (exit 2), before anything is written")
    g.add_argument("--checkpoint-dir", metavar="DIR",
                   help="where per-epoch checkpoints go (default: MODEL_DIR.checkpoints beside the model)")
    g.add_argument("--resume", action="store_true",
                   help="continue the fit whose checkpoints are in the checkpoint dir (after an interruption, or "
                        "with a larger --epochs) instead of starting afresh")
    g.add_argument("--per-partition", metavar="COL",
                   help="fit one generator per value of partition column COL (e.g. region), all at once; "
                        "each is written to MODEL_DIR/COL=VALUE. With --register NAME each becomes a version of its "
                        "own registered model NAME-VALUE (characters of VALUE other than letters, digits, '_', '.', "
                        "'-' become '_'; e.g. NAME-eu), each through the same quality gate and alias (--promote); a "
                        "partition that fails the gate gets no version and the command exits 3 naming it")
    g.add_argument("--worker-cache-mb", type=float, default=None, metavar="MB",
                   help="memory per worker for keeping its encoded shard after the first epoch, so later epochs do "
                        "not re-read DATA (default: 256; 0: stream DATA at every epoch)")
    g.add_argument("--object-store-mb", type=_object_store_mb, default=None, metavar="MB",
                   help="size of the local cluster's shared object store, through which Ray Data streams DATA "
                        "(default: Ray's own sizing, 30%% of memory; at least 75, Ray's minimum). Ray Data reads "
                        "ahead into up to half of the store, and every store page a worker reads counts in its "
                        "RSS: a bounded store (e.g. 96) keeps a worker's RSS flat however large DATA is, but "
                        "epochs that stream DATA took ~1.3x the wall time on a busy 2-core machine "
                        "(benchmarks/RESULTS.md). Not allowed with --ray-address (that cluster's store is set by "
                        "whoever started it)")


def options_from_args(args, kind: str = "tabular"):
    from .ray_fit import RayFitOptions

    storage = str(Path(args.checkpoint_dir).resolve()) if args.checkpoint_dir else None
    cache = {} if args.worker_cache_mb is None else {"cache_mb": args.worker_cache_mb}
    if args.worker_cache_mb is not None and kind != "tabular":
        raise ConfigError("--worker-cache-mb applies to tabular fits (a time-series worker always keeps its shard "
                          "of the windows in memory)")
    if args.worker_cache_mb is not None and args.worker_cache_mb < 0:
        raise ConfigError(f"--worker-cache-mb must be >= 0 (got {args.worker_cache_mb:g})")
    opts = RayFitOptions(workers=args.workers, address=args.ray_address, resume=args.resume, storage=storage,
                         object_store_mb=args.object_store_mb, **cache)
    from .ray_fit import check_store_request
    check_store_request(opts)
    return opts
