"""`ganstream stream MODEL --sink DIR ...`: the Beam job that streams a generator's rows into a directory of
Parquet files (pipeline/stream.py). Everything a user can get wrong is checked here, before the sink is
created or any file is written."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from trainers.argtypes import positive_float, positive_int
from trainers.errors import ConfigError, ModelError

DEFAULT_SHARD_ROWS = 100_000

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
    from pipeline.cli import TRACKING_HELP
    s = sub.add_parser("stream", help="Beam job: stream synthetic rows from MODEL into a directory of Parquet files",
                       description="Stream synthetic rows (or a mixed, balanced or imputed training set) from MODEL "
                       "into DIR with an Apache Beam pipeline.", epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    s.add_argument("model", metavar="MODEL", help="model directory, or models:/NAME@ALIAS, models:/NAME/VERSION, runs:/RUN_ID/PATH")
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
                   help="workers of the in-process runner (default: 1; keep workers x --threads <= cores)")
    b.add_argument("--direct_running_mode", choices=["in_memory", "multi_threading", "multi_processing"], default="in_memory")
    b.add_argument("--beam-args", default="", metavar="'ARGS'", help="any other Beam pipeline options, as one quoted string")
    s.set_defaults(func=run)


# ------------------------------------------------------------------------------------------ checks
def _check_combination(args) -> bool:
    """Option combinations; returns True for a bounded job."""
    if args.rows is not None and args.rate is not None:
        raise ConfigError("give --rows N (bounded job) or --rate R (unbounded stream), not both")
    bounded = args.rate is None
    if args.duration is not None and bounded:
        raise ConfigError("--duration applies to an unbounded stream (--rate R)")
    if args.mix and args.impute:
        raise ConfigError("--mix and --impute are different outputs: give one")
    f = args.synthetic_fraction
    if f is not None and not 0.0 < f <= 1.0:  # checked here, not by argparse, for a one-line error
        raise ConfigError(f"--synthetic-fraction must be in (0, 1] (got {f:g})")
    if f is not None and not args.mix:
        raise ConfigError("--synthetic-fraction applies with --mix REAL_DATA")
    if args.mix and args.balance and args.synthetic_fraction is not None:
        raise ConfigError("with --mix and --balance the synthetic rows follow from the class counts: drop --synthetic-fraction")
    if args.mix and not args.balance and args.synthetic_fraction is None:
        raise ConfigError("--mix needs --synthetic-fraction F (or --balance TARGET)")
    if (args.mix or args.impute) and not bounded:
        raise ConfigError("--mix and --impute stream a finite table: they run as a bounded job (no --rate)")
    if args.impute and (args.rows is not None or args.balance):
        raise ConfigError("--impute writes every row of REAL_DATA: drop --rows / --balance")
    if args.mix and args.balance and args.rows is not None:
        raise ConfigError("with --mix and --balance the row count follows from REAL_DATA: drop --rows")
    if bounded and args.rows is None and not (args.mix or args.impute):
        raise ConfigError("give --rows N (bounded job) or --rate R (unbounded stream)")
    if args.format == "episodes" and (args.mix or args.impute or args.balance):
        raise ConfigError("--format episodes writes generated sequences only (no --mix / --impute / --balance)")
    return bounded


def _balance_column(model, column: str):
    schema = model.encoder.schema
    if column not in schema.names:
        raise ConfigError(f"--balance column '{column}' is not in the model (columns: {', '.join(schema.names)})")
    spec = schema[column]
    if not model.encoder.as_category(spec):
        raise ConfigError(f"--balance column '{column}' is not categorical ({spec.kind} with many levels); it must "
                          f"be categorical, boolean or a few-level integer")
    return spec


# --------------------------------------------------------------------------------------------- run
def run(args) -> int:
    from pipeline.cli import _info
    bounded = _check_combination(args)
    from .stream_sink import check_manifest, check_sink
    sink = check_sink(args.sink)
    from .stream_model import identify, load_any
    model_id, local = identify(args.model, args.tracking_uri)
    model = load_any(local)
    kind = getattr(model, "kind", "?")
    if args.format == "episodes" and kind != "timeseries":
        raise ConfigError(f"--format episodes needs a time-series model; {args.model} is a {kind} model")
    if (args.mix or args.impute or args.balance) and kind != "tabular":
        raise ConfigError(f"--mix / --impute / --balance need a tabular model; {args.model} is a {kind} model")
    if args.impute and getattr(model, "imputer", None) is None:
        raise ModelError(f"{args.model} has no imputer (its training data had no missing values)")
    spec = _balance_column(model, args.balance) if args.balance else None
    real = None
    if args.mix or args.impute:
        from trainers.schema import check_compatible
        from trainers.table_io import read_table
        path = args.mix or args.impute
        real = read_table(path, args.missing_token)
        check_compatible(model.encoder.schema, real, what=str(path))

    import torch
    from deploy.tracking import resolve_uri
    from .stream_frames import StreamJob
    uri = resolve_uri(args.tracking_uri) if model_id.ref.startswith(("models:/", "runs:/")) else None
    real_path = str(Path(args.mix or args.impute).resolve()) if real is not None else None
    job = StreamJob(model_id, uri, seed=args.seed, missing=args.missing, real_path=real_path,
                    missing_tokens=tuple(args.missing_token), mark_synthetic=bool(args.mix), episodes=args.format == "episodes",
                    follow_alias=not bounded, swap_check_s=args.swap_check_s, threads=torch.get_num_threads())
    from .stream import pipeline_options
    options = pipeline_options(args.runner, args.direct_num_workers, args.direct_running_mode, args.beam_args,
                               streaming=not bounded)
    if bounded:
        per_item = model.config.seq_len if kind == "timeseries" else 1  # a sequence is seq_len rows
        return _run_bounded(args, job, model_id, spec, real, sink, options, _info, per_item)
    return _run_unbounded(args, job, model_id, spec, sink, options, _info)


def _streams(args, spec, real):
    from .stream_plan import EPISODES, IMPUTE, REAL, SYNTHETIC, StreamSpec, balanced_counts
    if args.impute:
        return [StreamSpec(IMPUTE, len(real))]
    if args.format == "episodes":
        return [StreamSpec(EPISODES, args.rows)]
    if args.balance:
        have = None
        if args.mix:
            counts = real[spec.name].value_counts()
            have = {c: int(counts.get(c, 0)) for c in spec.categories}
        per_class = balanced_counts(list(spec.categories), args.rows or 0, have)
        streams = [StreamSpec(REAL, len(real))] if args.mix else []
        return streams + [StreamSpec(SYNTHETIC, n, condition=(spec.name, c)) for c, n in per_class.items() if n]
    if args.mix:
        total = args.rows or len(real)
        synthetic = round(args.synthetic_fraction * total)
        if total - synthetic > len(real):
            raise ConfigError(f"--rows {total} with --synthetic-fraction {args.synthetic_fraction} needs "
                              f"{total - synthetic:,} real rows; {args.mix} has {len(real):,}")
        return [StreamSpec(REAL, total - synthetic), StreamSpec(SYNTHETIC, synthetic)]
    return [StreamSpec(SYNTHETIC, args.rows)]


def _describe(args) -> dict:
    return {"mix": args.mix and str(Path(args.mix).resolve()), "synthetic_fraction": args.synthetic_fraction,
            "balance": args.balance, "impute": args.impute and str(Path(args.impute).resolve()),
            "format": args.format}


def _run_bounded(args, job, model_id, spec, real, sink, options, info, per_item: int = 1) -> int:
    from .stream import run_bounded
    from .stream_plan import plan_shards
    from .stream_sink import check_manifest, count_rows, prepare_sink
    streams = _streams(args, spec, real)
    total = sum(s.total for s in streams)
    if total == 0:
        raise ConfigError("nothing to write: --balance found the classes of REAL_DATA already balanced")
    shards = plan_shards(streams, args.seed, args.shard_rows)
    manifest = job.manifest(mode="bounded", rows=total, shard_rows=args.shard_rows,
                            model_version=model_id.version, **_describe(args))
    check_manifest(sink, manifest)
    prepare_sink(sink, manifest)
    done = sum((sink / s.name).exists() for s in shards)
    info_extra = f" ({done} already complete)" if done else ""
    what = f"{total:,} sequences" if per_item > 1 else f"{total:,} rows"
    info(args, f"stream: {what} from {model_id.name} version {model_id.version} in {len(shards)} shard(s)"
               f"{info_extra} -> {sink} [{args.runner}]")
    t0 = time.perf_counter()
    run_bounded(job, shards, sink, options)
    dt = time.perf_counter() - t0
    written = count_rows([sink / s.name for s in shards])
    if written != total * per_item:
        raise RuntimeError(f"sink holds {written} rows, planned {total * per_item}")  # a bug, not a user error
    info(args, f"stream: wrote {written:,} rows in {len(shards)} file(s) to {sink} ({written / max(dt, 1e-9):,.0f} rows/s)")
    return 0


def _run_unbounded(args, job, model_id, spec, sink, options, info) -> int:
    from .stream import run_unbounded
    from .stream_sink import check_manifest, count_rows, output_files, prepare_sink
    manifest = job.manifest(mode="unbounded", **_describe(args))
    check_manifest(sink, manifest)
    prepare_sink(sink, manifest)
    before = set(output_files(sink))
    balance = [spec.name, list(spec.categories)] if spec is not None else None
    follow = f", following {model_id.ref} (checked every {args.swap_check_s:g}s)" if model_id.alias else ""
    info(args, f"stream: {args.rate:g} rows/s from {model_id.name} version {model_id.version}{follow}, "
               f"{args.window_s:g}s windows -> {sink}" + (f" for {args.duration:g}s" if args.duration else " until interrupted"))
    run_unbounded(job, sink, options, args.rate, args.window_s, args.duration, balance)
    new = [f for f in output_files(sink) if f not in before]
    info(args, f"stream: wrote {count_rows(new):,} rows in {len(new)} window file(s) to {sink}")
    return 0
