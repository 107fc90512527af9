"""`train`'s Ray Train options, kept apart from pipeline/cli.py so the CLI only wires them in. Importing this
module does not import Ray (the parser must stay fast)."""

from __future__ import annotations

import argparse
from pathlib import Path

from .errors import ConfigError


def _workers(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--workers must be an integer (got {text!r})") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"--workers must be >= 1 (got {value})")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("distributed fit (Ray Train; the default path of tabular models)")
    g.add_argument("--workers", type=_workers, default=1,
                   help="Ray Train workers (DDP over gloo, one torch thread each; default: 1). DATA is streamed "
                        "to the workers by Ray Data, never read whole into this process")
    g.add_argument("--ray-address", metavar="ADDR",
                   help="join this Ray cluster (e.g. ray://host:10001 or host:6379); default: start a local "
                        "cluster sized to this machine and shut it down afterwards")
    g.add_argument("--checkpoint-dir", metavar="DIR",
                   help="where per-epoch checkpoints go (default: MODEL_DIR.checkpoints beside the model)")
    g.add_argument("--resume", action="store_true",
                   help="continue the fit whose checkpoints are in the checkpoint dir (after an interruption, or "
                        "with a larger --epochs) instead of starting afresh")
    g.add_argument("--per-partition", metavar="COL",
                   help="fit one generator per value of partition column COL (e.g. region), all at once; "
                        "each is written to MODEL_DIR/COL=VALUE")


def options_from_args(args):
    from .ray_fit import RayFitOptions

    from deploy.tracking import tracking_requested

    if args.per_partition and tracking_requested(args):
        raise ConfigError("--per-partition cannot be combined with tracking/--register yet "
                          "(registration per partition is not built)")
    storage = str(Path(args.checkpoint_dir).resolve()) if args.checkpoint_dir else None
    return RayFitOptions(workers=args.workers, address=args.ray_address, resume=args.resume, storage=storage)
