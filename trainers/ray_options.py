"""`train`'s Ray Train options, kept apart from pipeline/cli.py so the CLI only wires them in. Importing this
module does not import Ray (the parser must stay fast)."""

from __future__ import annotations

import argparse
from pathlib import Path

from .argtypes import positive_int
from .errors import ConfigError


_workers = positive_int("--workers")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("distributed fit (Ray Train; the default path of tabular models)")
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


def options_from_args(args):
    from .ray_fit import RayFitOptions

    storage = str(Path(args.checkpoint_dir).resolve()) if args.checkpoint_dir else None
    cache = {} if args.worker_cache_mb is None else {"cache_mb": args.worker_cache_mb}
    if args.worker_cache_mb is not None and args.worker_cache_mb < 0:
        raise ConfigError(f"--worker-cache-mb must be >= 0 (got {args.worker_cache_mb:g})")
    return RayFitOptions(workers=args.workers, address=args.ray_address, resume=args.resume, storage=storage, **cache)
