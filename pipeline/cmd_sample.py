"""`ganstream sample MODEL --rows N --out FILE`: synthetic rows from a tabular model, or N sequences (long
format) from a time-series model. The output path is checked before the model is loaded; the file is written
atomically."""

from __future__ import annotations

import time

from ganstream.pipeline.argtypes import condition, positive_int
from ganstream.pipeline.cli_common import MODEL_HELP, TRACKING_HELP, console, load_model_arg
from ganstream.trainers.errors import ConfigError


def add_parser(sub) -> None:
    s = sub.add_parser("sample", help="write N synthetic rows (or sequences) from MODEL",
                       description="Generate synthetic rows. Same MODEL, --rows and --seed give the same rows. "
                       "A time-series MODEL writes N sequences of its --seq-len steps (or --steps) in long format: the "
                       "training table's id and time columns (series_id and step without them), then the features.")
    s.add_argument("model", metavar="MODEL", help=MODEL_HELP)
    s.add_argument("--tracking-uri", metavar="URI", help=TRACKING_HELP)
    s.add_argument("--rows", type=positive_int("--rows"), required=True, help="number of rows (sequences) to generate")
    s.add_argument("--out", required=True, metavar="FILE", help="output .csv or .parquet")
    s.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    s.add_argument("--condition", type=condition, metavar="COL=VALUE",
                   help="tabular: every row gets VALUE in categorical column COL (no rejection sampling)")
    s.add_argument("--missing", choices=["keep", "fill"], default=None,
                   help="tabular: keep realistic missing values as in the training data (default), or fill: complete rows")
    s.add_argument("--steps", type=positive_int("--steps"), default=None, metavar="N",
                   help="time series: steps per sequence (default: the model's --seq-len); longer sequences are "
                        "generated step by step, each step conditioned on the ones before")
    s.set_defaults(func=run)


def run(args) -> int:
    from ganstream.trainers.table_io import check_output_path, write_table
    check_output_path(args.out)
    model = load_model_arg(args.model, args.tracking_uri)
    t0 = time.perf_counter()
    if model.kind == "timeseries":
        if args.condition:
            raise ConfigError("--condition applies to tabular models only; time-series models continue a history "
                              "instead: ganstream extend MODEL --history FILE")
        if args.missing is not None:
            raise ConfigError("--missing applies to tabular models only: a time-series model's sequences have no holes")
        steps = args.steps or model.config.seq_len
        frame = model.user_frame(model.sample(args.rows, seed=args.seed, length=steps))
        write_table(frame, args.out)
        console(args).info(f"wrote {args.rows:,} sequences x {steps} steps ({len(frame):,} rows) to "
                           f"{args.out} ({time.perf_counter() - t0:.2f}s)")
        return 0
    if args.steps is not None:
        raise ConfigError("--steps applies to time-series models only (a tabular model writes --rows rows)")
    rows = model.sample(args.rows, seed=args.seed, condition=dict([args.condition]) if args.condition else None,
                        missing=args.missing or "keep")
    dt = time.perf_counter() - t0
    write_table(rows, args.out)
    console(args).info(f"wrote {len(rows):,} rows to {args.out} ({len(rows) / max(dt, 1e-9):,.0f} rows/s)")
    return 0
