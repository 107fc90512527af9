"""`ganstream extend MODEL --history FILE --horizon k --draws K --out FILE [--seed S]`: K possible futures of
k steps for every series of a history table, from a time-series model (trainers/timeseries/model.py).

Everything is checked before anything is written: the model must be a time-series one, the output path
valid, the history readable and laid out like the training data (same feature/id/time/static columns, no
unknown column, time increasing, at least one observed value per series). Output: long format with the
training table's id column, `draw`, its time column continuing each history's time grid (`series_id` and `step`,
continuing the history's steps, for a model trained without them), then the features in original units."""

from __future__ import annotations

import time


def add_parser(sub) -> None:
    from ganstream.pipeline.argtypes import positive_int
    from ganstream.pipeline.cli_common import TRACKING_HELP
    e = sub.add_parser("extend", help="continue the series of a history K ways with a time-series MODEL",
                       description="Generate DRAWS possible continuations of HORIZON steps for every series in "
                       "--history (same columns as the training data: the id/time columns if the model was trained "
                       "with them, the feature columns, static columns). Gaps (empty cells) in the history are "
                       "allowed. Same MODEL, history and --seed give the same file.")
    e.add_argument("model", metavar="MODEL", help="time-series model directory written by `train --kind timeseries`, "
                   "or models:/NAME@ALIAS, models:/NAME/VERSION, runs:/RUN_ID/PATH")
    e.add_argument("--history", required=True, metavar="FILE", help="history table (.csv, .parquet or a directory of .parquet)")
    e.add_argument("--horizon", type=positive_int("--horizon"), required=True, help="steps to generate after each history (>= 1)")
    e.add_argument("--draws", type=positive_int("--draws"), default=10, help="continuations per series (default: 10)")
    e.add_argument("--out", required=True, metavar="FILE", help="output .csv or .parquet")
    e.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    e.add_argument("--missing-token", action="append", default=[], metavar="TOK", help="text that means 'missing' in the history (repeatable)")
    e.add_argument("--tracking-uri", metavar="URI", help=TRACKING_HELP)
    e.set_defaults(func=run)


def run(args) -> int:
    from ganstream.pipeline.cli_common import console, load_model_arg
    from ganstream.trainers.table_io import check_output_path, read_table, write_table

    check_output_path(args.out)
    model = load_model_arg(args.model, args.tracking_uri, kind="timeseries", command="extend")
    history = read_table(args.history, args.missing_token)
    t0 = time.perf_counter()
    futures = model.extend(history, horizon=args.horizon, draws=args.draws, seed=args.seed)
    n_series = futures["series_id"].nunique()
    write_table(model.user_frame(futures, history), args.out)
    console(args).info(f"wrote {args.draws} x {args.horizon}-step continuations of {n_series} series to {args.out} "
                       f"({time.perf_counter() - t0:.2f}s)")
    return 0
