"""`stream`: the typed core behind `ganstream stream` and the streams of `ganstream run JOB.yaml`. A
`StreamRequest` says which model, where to (a sink directory), and what to write; `run_stream` checks it all
before the sink is created or any file is written, plans the shards (stream_plan.py) and runs the Beam
pipeline (stream.py)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

from ganstream.pipeline.console import SILENT, Console
from ganstream.pipeline.stream_plan import IN_PROCESS_RUNNERS, window_rows
from ganstream.trainers.errors import ConfigError, InfrastructureError, ModelError

DEFAULT_SHARD_ROWS = 100_000


@dataclass
class StreamRequest:
    """One stream. Bounded (rows, mix, impute): exactly `rows` rows in seeded shards of `shard_rows`; unbounded
    (rate): `rate` rows per second in one file per `window_s` window, for `duration` seconds (None: until
    interrupted). mix/impute/balance/format: what is written (see `ganstream stream --help`)."""
    model: str
    sink: str
    tracking_uri: str | None = None
    rows: int | None = None
    shard_rows: int = DEFAULT_SHARD_ROWS
    rate: float | None = None
    duration: float | None = None
    window_s: float = 5.0
    swap_check_s: float = 10.0
    seed: int = 0
    missing: str = "keep"
    mix: str | None = None
    synthetic_fraction: float | None = None
    balance: str | None = None
    impute: str | None = None
    missing_tokens: tuple[str, ...] = ()
    format: str = "rows"
    runner: str = "FnApiRunner"
    direct_num_workers: int = 1
    direct_running_mode: str = "in_memory"
    beam_args: str = ""


def check_request(args: "StreamRequest") -> bool:
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
    if not bounded and args.direct_num_workers > 1 and args.runner in IN_PROCESS_RUNNERS:
        # Beam's in-process runner with several workers never fired the stream's timer: every such run ended
        # after 3-11 s with nothing written (2026-12-07); refuse rather than succeed silently
        raise ConfigError(f"an unbounded stream on the in-process runner ({args.runner}) runs on one worker: drop "
                          f"--direct_num_workers {args.direct_num_workers} (with several, that runner never fires the stream's timer)")
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
def run_stream(args: "StreamRequest", console: Console = SILENT) -> int:
    """Check `args` (a StreamRequest), then write the stream into its sink. Returns 0."""
    bounded = check_request(args)
    from ganstream.pipeline.stream_sink import check_manifest, check_sink
    sink = check_sink(args.sink)
    from ganstream.deploy.models import load_with_id
    model, model_id = load_with_id(args.model, args.tracking_uri)
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
        from ganstream.trainers.schema import check_compatible
        from ganstream.trainers.table_io import read_table
        path = args.mix or args.impute
        real = read_table(path, args.missing_tokens)
        check_compatible(model.encoder.schema, real, what=str(path))

    import torch
    from ganstream.pipeline.stream_frames import StreamJob
    uri = model_id.tracking_uri
    real_path = str(Path(args.mix or args.impute).resolve()) if real is not None else None
    job = StreamJob(model_id, uri, seed=args.seed, missing=args.missing, real_path=real_path,
                    missing_tokens=tuple(args.missing_tokens), mark_synthetic=bool(args.mix), episodes=args.format == "episodes",
                    follow_alias=not bounded, swap_check_s=args.swap_check_s, threads=torch.get_num_threads())
    from ganstream.pipeline.stream import pipeline_options
    options = pipeline_options(args.runner, args.direct_num_workers, args.direct_running_mode, args.beam_args,
                               streaming=not bounded)
    if bounded:
        per_item = model.config.seq_len if kind == "timeseries" else 1  # a sequence is seq_len rows
        return _run_bounded(args, job, model_id, spec, real, sink, options, console, per_item)
    return _run_unbounded(args, job, model_id, spec, sink, options, console)


def _streams(args, spec, real):
    from ganstream.pipeline.stream_plan import EPISODES, IMPUTE, REAL, SYNTHETIC, StreamSpec, balanced_counts
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


def _run_bounded(args, job, model_id, spec, real, sink, options, console: Console, per_item: int = 1) -> int:
    from ganstream.pipeline.stream import run_bounded
    from ganstream.pipeline.stream_plan import plan_shards
    from ganstream.pipeline.stream_sink import check_manifest, count_rows, prepare_sink
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
    console.info(f"stream: {what} from {model_id.name} version {model_id.version} in {len(shards)} shard(s)"
               f"{info_extra} -> {sink} [{args.runner}]")
    t0 = time.perf_counter()
    run_bounded(job, shards, sink, options)
    dt = time.perf_counter() - t0
    written = count_rows([sink / s.name for s in shards])
    if written != total * per_item:
        raise RuntimeError(f"sink holds {written} rows, planned {total * per_item}")  # a bug, not a user error
    console.info(f"stream: wrote {written:,} rows in {len(shards)} file(s) to {sink} ({written / max(dt, 1e-9):,.0f} rows/s)")
    return 0


def _run_unbounded(args, job, model_id, spec, sink, options, console: Console) -> int:
    from ganstream.pipeline.stream import run_unbounded
    from ganstream.pipeline.stream_sink import check_manifest, count_rows, output_files, prepare_sink
    manifest = job.manifest(mode="unbounded", **_describe(args))
    check_manifest(sink, manifest)
    prepare_sink(sink, manifest)
    before = set(output_files(sink))
    balance = [spec.name, list(spec.categories)] if spec is not None else None
    follow = f", following {model_id.ref} (checked every {args.swap_check_s:g}s)" if model_id.alias else ""
    console.info(f"stream: {args.rate:g} rows/s from {model_id.name} version {model_id.version}{follow}, "
               f"{args.window_s:g}s windows -> {sink}" + (f" for {args.duration:g}s" if args.duration else " until interrupted"))
    run_unbounded(job, sink, options, args.rate, args.window_s, args.duration, balance)
    new = [f for f in output_files(sink) if f not in before]
    written = count_rows(new)
    console.info(f"stream: wrote {written:,} rows in {len(new)} window file(s) to {sink}")
    if args.duration is not None:  # a stream that ends early must not look like one that finished
        windows = math.ceil(args.duration / args.window_s - 1e-9)
        planned = sum(window_rows(args.rate, args.window_s, k, args.duration) for k in range(windows))
        if written < planned or len(new) < windows:
            raise InfrastructureError(f"the stream ended short of its plan: {written:,} of {planned:,} rows in "
                                      f"{len(new)} of {windows} window file(s) in {sink}")
    return 0
