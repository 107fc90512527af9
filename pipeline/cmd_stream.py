"""`ganstream stream MODEL --sink DIR ...`: the Beam job that streams a generator's rows into a directory of
Parquet files (pipeline/stream.py). Everything a user can get wrong is checked here, before the sink is
created or any file is written."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ganstream.pipeline.argtypes import positive_float, positive_int
from ganstream.pipeline.cli_common import MODEL_HELP, TRACKING_HELP, console
from ganstream.pipeline.stream_run import DEFAULT_SHARD_ROWS, StreamRequest

EPILOG = """examples:
  ganstream stream runs/adult --sink out/synthetic --rows 1000000 --seed 7
  ganstream stream models:/adult@champion --sink out/live --rate 500 --duration 60 --window-s 5
  ganstream stream models:/adult@champion --sink out/train --mix data/adult.csv --missing-token '?' --synthetic-fraction 0.3
  ganstream stream runs/adult --sink out/balanced --mix data/adult.csv --missing-token '?' --balance income
  ganstream stream runs/adult --sink out/imputed --impute data/adult.csv --missing-token '?'
  ganstream stream runs/adult --sink out/flink --rows 10000000 --runner FlinkRunner --beam-args '--flink_master=host:8081'

Bounded (--rows, --mix, --impute): the rows are split into shards of --shard-rows; shard k is seeded from
(--seed, k) and written as DIR/shard-KKKKK-of-NNNNN.parquet (temp name, then rename). The same job writes
the same bytes; re-running a killed job completes it without duplicates (finished shards are kept).
Unbounded (--rate): one file per --window-s window, DIR/window-<UTC start>Z-<k>.parquet, renamed into place
when its window closes; runs --duration seconds, or until interrupted. Started from models:/NAME@ALIAS,
a stream follows the alias (checked every --swap-check-s seconds) and switches version without stopping.
Every file records the model (Parquet metadata ganstream.model_name/model_version, and a model_version column)."""


def add_parser(sub) -> None:
    s = sub.add_parser("stream", help="Beam job: stream synthetic rows from MODEL into a directory of Parquet files",
                       description="Stream synthetic rows (or a mixed, balanced or imputed training set) from MODEL "
                       "into DIR with an Apache Beam pipeline.", epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    s.add_argument("model", metavar="MODEL", help=MODEL_HELP)
    s.add_argument("--sink", required=True, metavar="DIR", help="output directory (created; one Parquet file per shard or window)")
    s.add_argument("--tracking-uri", metavar="URI", help=TRACKING_HELP)
    g = s.add_argument_group("bounded job")
    g.add_argument("--rows", type=positive_int("--rows"), help="exactly N rows (sequences for a time-series model)")
    g.add_argument("--shard-rows", type=positive_int("--shard-rows"), default=DEFAULT_SHARD_ROWS,
                   help=f"rows per shard file (default: {DEFAULT_SHARD_ROWS:,})")
    u = s.add_argument_group("unbounded stream")
    u.add_argument("--rate", type=positive_float("--rate"), help="rows per second")
    u.add_argument("--duration", type=positive_float("--duration"), help="seconds to run (default: until interrupted)")
    u.add_argument("--window-s", type=positive_float("--window-s"), default=5.0, help="seconds per window file (default: 5)")
    u.add_argument("--swap-check-s", type=positive_float("--swap-check-s"), default=10.0,
                   help="how often a stream from models:/NAME@ALIAS checks whether the alias moved (default: 10)")
    d = s.add_argument_group("what is written")
    d.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    d.add_argument("--missing", choices=["keep", "fill"], default="keep",
                   help="synthetic rows with realistic holes (keep, default) or complete (fill)")
    d.add_argument("--mix", metavar="REAL_DATA", help="write REAL_DATA's rows and synthetic rows together, with an is_synthetic column")
    d.add_argument("--synthetic-fraction", type=float, metavar="F",
                   help="with --mix: share of synthetic rows in the output, in (0, 1]; --rows is the total (default: as many as REAL_DATA)")
    d.add_argument("--balance", metavar="TARGET", help="synthetic rows conditioned on TARGET's classes (a categorical column): "
                   "alone, N rows split evenly over the classes; with --mix, all real rows plus synthetic rows of each "
                   "minority class up to the majority count")
    d.add_argument("--impute", metavar="REAL_DATA", help="stream REAL_DATA with its missing cells filled by the model's imputer")
    d.add_argument("--missing-token", action="append", default=[], metavar="TOK", help="text that means 'missing' in REAL_DATA (repeatable)")
    d.add_argument("--format", choices=["rows", "episodes"], default="rows",
                   help="episodes (time-series models): episode_id, step, observation columns, done")
    b = s.add_argument_group("Beam")
    b.add_argument("--runner", default="FnApiRunner",
                   help="Beam runner (default: FnApiRunner, in-process and offline; DirectRunner first tries to download Prism)")
    b.add_argument("--direct_num_workers", type=positive_int("--direct_num_workers"), default=1,
                   help="workers of the in-process runner, for a bounded job (default: 1; keep workers x "
                   "--threads <= cores); an unbounded stream runs on one")
    b.add_argument("--direct_running_mode", choices=["in_memory", "multi_threading", "multi_processing"], default="in_memory")
    b.add_argument("--beam-args", default="", metavar="'ARGS'", help="any other Beam pipeline options, as one quoted string")
    s.set_defaults(func=run)


def stream_request(args) -> StreamRequest:
    """`stream`'s options as a StreamRequest (pipeline/stream_run.py)."""
    fields = StreamRequest.__dataclass_fields__
    values = {k: getattr(args, k) for k in fields if k != "missing_tokens" and hasattr(args, k)}
    return StreamRequest(**values, missing_tokens=tuple(args.missing_token))


def run(args) -> int:
    from ganstream.pipeline.stream_run import run_stream
    return run_stream(stream_request(args), console(args))
