"""`ganstream` command line: one module per sub-command (pipeline/cmd_*.py), each with `add_parser(sub)` and
`run(args) -> int`. A command turns its options into typed calls into the library core and checks its inputs
and output paths *before* any work, so bad input fails fast with one readable line, the exit code of
trainers/errors.py, and no output file."""

from __future__ import annotations

import argparse
import os
import sys

from ganstream.pipeline import (cmd_evaluate, cmd_extend, cmd_impute, cmd_models, cmd_run, cmd_sample, cmd_stream,
                                cmd_train)
from ganstream.pipeline.argtypes import positive_int
from ganstream.trainers.errors import GanstreamError, disk_full

COMMANDS = (cmd_train, cmd_sample, cmd_impute, cmd_evaluate, cmd_extend, cmd_stream, cmd_models, cmd_run)

EPILOG = """examples:
  ganstream train data/adult.csv --missing-token '?' --out runs/adult --epochs 50
  ganstream sample runs/adult --rows 10000 --out runs/synthetic.parquet --seed 1
  ganstream sample runs/adult --rows 1000 --condition 'income=>50K' --missing fill --out rich.csv
  ganstream impute data/adult.csv --missing-token '?' --draws 5 --out runs/imputed.parquet
  ganstream evaluate runs/adult --real data/adult.csv --missing-token '?' --target income

  ganstream train data/adult.csv --missing-token '?' --out runs/adult --register adult --target income
  ganstream sample models:/adult@champion --rows 1000 --out synthetic.csv
  ganstream models show adult
  ganstream run examples/job.yaml

DATA is a .csv file, a .parquet file or a directory of .parquet files. FILE is written as .csv or
.parquet by its extension, atomically (a crash never leaves a partial file). MODEL is a directory
written by `train`, or an MLflow URI: models:/NAME@ALIAS, models:/NAME/VERSION, runs:/RUN_ID/PATH.

exit status: 0 done; 2 bad input or options; 3 the quality gate refused the fit; 4 infrastructure
(Ray, the tracking server, the disk: retry later); 5 the job is already running. Errors are one line."""


class _Parser(argparse.ArgumentParser):
    """argparse exits with status 2 on usage errors, which matches our convention; keep its messages."""


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="ganstream", description="Fit GANs on tables with missing values and on time series; sample, "
                "impute, evaluate, register, stream.", epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=positive_int("--threads"), default=None,
                   help="torch CPU threads (default: $GANSTREAM_THREADS or 1; keep processes x threads <= cores)")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.add_argument("--verbose", action="store_true", help="every figure of every epoch in the progress lines")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    args = build_parser().parse_args(argv)
    from ganstream.trainers.runtime import set_threads
    set_threads(args.threads)
    try:
        return args.func(args)
    except GanstreamError as e:
        print(f"ganstream {args.command}: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print(f"ganstream {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # a full disk surfaces from pandas, pyarrow, Beam or Ray in their own wrappers
        full = disk_full(e, target=next((str(v) for k in ("out", "sink") if (v := getattr(args, k, None))), None))
        if full is None:
            raise  # anything else is a bug: keep its traceback
        print(f"ganstream {args.command}: error: {full}", file=sys.stderr)
        return full.exit_code


if __name__ == "__main__":
    sys.exit(main())
