"""`ganstream` command line. Each sub-command validates its inputs and output paths *before* any work, so
bad input fails fast with one readable line, a non-zero exit and no output file."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
from pathlib import Path

from trainers.argtypes import positive_int
from trainers.errors import ConfigError, GanstreamError

EPILOG = """examples:
  ganstream train data/adult.csv --kind tabular --missing-token '?' --out runs/adult --epochs 50
  ganstream sample runs/adult --rows 10000 --out runs/synthetic.parquet --seed 1
  ganstream sample runs/adult --rows 1000 --condition 'income=>50K' --missing fill --out rich.csv
  ganstream impute data/adult.csv --missing-token '?' --draws 5 --out runs/imputed.parquet
  ganstream evaluate runs/adult --real data/adult.csv --missing-token '?' --target income

  ganstream train data/adult.csv --missing-token '?' --out runs/adult --register adult --target income
  ganstream sample models:/adult@champion --rows 1000 --out synthetic.csv
  ganstream models show adult

DATA is a .csv file, a .parquet file or a directory of .parquet files. FILE is written as .csv or
.parquet by its extension, atomically (a crash never leaves a partial file). MODEL is a directory
written by `train`, or an MLflow URI: models:/NAME@ALIAS, models:/NAME/VERSION, runs:/RUN_ID/PATH.
Errors print one line and exit with status 2; a fit that fails the quality gate of --register exits 3."""

# Sub-commands that live in their own module (one job each): the module defines `add_parser(sub)`, which adds
# its parser and sets `func=run` via set_defaults, and `run(args) -> int`.
EXTENSIONS: list[str] = ["pipeline.cmd_run", "pipeline.cmd_stream", "pipeline.cmd_extend"]

TRACKING_HELP = "MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db in the working dir)"


def _condition(text: str) -> tuple[str, str]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"--condition must look like column=value (got {text!r})")
    col, value = text.split("=", 1)
    return col.strip(), value


class _Parser(argparse.ArgumentParser):
    """argparse exits with status 2 on usage errors, which matches our convention; keep its messages."""


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="ganstream", description="Fit GANs on tables with missing values, sample, impute, evaluate.",
                epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=positive_int("--threads"), default=None,
                   help="torch CPU threads (default: $GANSTREAM_THREADS or 1; keep processes x threads <= cores)")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    t = sub.add_parser("train", help="fit a generator on DATA and write a model directory",
                       description="Fit a tabular GAN (conditional, PacGAN discriminator) or, with --kind timeseries, a "
                       "time-series GAN on DATA, with Ray Train (a local cluster unless --ray-address). Columns with missing "
                       "values are allowed: the tabular model learns where values go missing and fits a GAIN-style "
                       "imputer too; the time-series model trains through masks.")
    t.add_argument("data", metavar="DATA", help="training table (.csv, .parquet, or a directory of .parquet files)")
    t.add_argument("--kind", choices=["tabular", "timeseries"], default="tabular",
                   help="model kind (default: tabular; timeseries: sequences, see --seq-len)")
    t.add_argument("--out", required=True, metavar="MODEL_DIR", help="directory to write the model to (replaced if it is a model)")
    t.add_argument("--epochs", type=positive_int("--epochs"), default=300, help="training epochs (default: 300)")
    t.add_argument("--batch-size", type=positive_int("--batch-size"), default=None,
                   help="rows per step, a multiple of --pac (default: 500; timeseries: windows per step, default 128)")
    t.add_argument("--loss", choices=["wgan-gp", "non-saturating", "minimax", "dual"], default="wgan-gp",
                   help="adversarial loss (default: wgan-gp; minimax is the original game, kept for comparison; "
                   "dual: two discriminators penalising both KL and reverse KL, see docs/mode_collapse.md)")
    t.add_argument("--pac", type=positive_int("--pac"), default=10, help="samples per discriminator input, PacGAN packing (default: 10)")
    t.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    t.add_argument("--numeric-encoding", choices=["auto", "quantile", "mode"], default=None,
                   help="tabular numeric columns: 'quantile' (per-column CDF to a normal), 'mode' (Gaussian-mixture "
                   "mode one-hot + offset, learns dependences between numeric modes) or 'auto' (per column: 'mode' "
                   "where the values form clusters separated by low density and are not mostly point masses, "
                   "'quantile' elsewhere; docs/mode_collapse.md) (default: auto)")
    ts = t.add_argument_group("time series (--kind timeseries)")
    ts.add_argument("--seq-len", type=positive_int("--seq-len"), metavar="L",
                    help="window length the model learns (required with --kind timeseries; series shorter than L are skipped)")
    ts.add_argument("--id-col", metavar="C", help="series id column (long format); without it DATA is one series in row order")
    ts.add_argument("--time-col", metavar="C", help="time/order column: must increase within each series; on a regular "
                    "grid, skipped timestamps become gaps")
    ts.add_argument("--static-col", action="append", default=[], metavar="C",
                    help="per-series attribute column the model conditions on (repeatable; needs --id-col)")
    t.add_argument("--missing-token", action="append", default=[], metavar="TOK",
                   help="text that means 'missing' in DATA, e.g. '?' (repeatable; empty strings are always missing)")
    t.add_argument("--imputer-epochs", type=positive_int("--imputer-epochs"), default=None,
                   help="epochs of the imputer that fills holes before GAN training (default: the imputer's own schedule)")
    t.add_argument("--target", metavar="COL",
                   help="a categorical column downstream models will predict: an auxiliary classifier keeps "
                        "P(COL | other columns) of the synthetic rows close to the real one (better utility)")
    t.add_argument("--tracking-uri", metavar="URI", help=TRACKING_HELP + "; giving it turns tracking on")
    t.add_argument("--experiment", metavar="NAME", help="MLflow experiment of the run (default: ganstream). The fit is tracked as an MLflow "
                   "run when --register, --tracking-uri or --experiment is given or $MLFLOW_TRACKING_URI is set; "
                   "otherwise train needs no MLflow")
    t.add_argument("--register", metavar="NAME", help="register the fit as a new version of model NAME if it "
                   "passes the quality gate (turns tracking on); a failing gate exits 3 and registers nothing")
    t.add_argument("--promote", metavar="ALIAS", default="champion",
                   help="alias moved to the new version (default: champion)")
    t.add_argument("--gate", action="append", default=[], metavar="KEY<=VALUE",
                   help="override a gate threshold, e.g. detection_auc<=0.95, utility_ratio>=0.8, dcr_ratio=off "
                        "(repeatable; defaults in deploy/gate.py)")
    from trainers.ray_options import add_arguments as add_ray_arguments
    add_ray_arguments(t)

    s = sub.add_parser("sample", help="write N synthetic rows from MODEL",
                       description="Generate synthetic rows. Same MODEL, --rows and --seed give the same rows.")
    s.add_argument("model", metavar="MODEL", help="model directory written by `train`, or models:/NAME@ALIAS, "
                   "models:/NAME/VERSION, runs:/RUN_ID/PATH")
    s.add_argument("--tracking-uri", metavar="URI", help=TRACKING_HELP)
    s.add_argument("--rows", type=positive_int("--rows"), required=True, help="number of rows to generate (>= 1)")
    s.add_argument("--out", required=True, metavar="FILE", help="output .csv or .parquet")
    s.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    s.add_argument("--condition", type=_condition, metavar="COL=VALUE",
                   help="every row gets VALUE in categorical column COL (no rejection sampling)")
    s.add_argument("--missing", choices=["keep", "fill"], default="keep",
                   help="keep: realistic missing values as in the training data (default); fill: complete rows")

    i = sub.add_parser("impute", help="fill the missing cells of DATA",
                       description="Fill missing cells with a GAIN-style imputer. Observed cells are never changed. "
                       "Without --model an imputer is fitted on DATA itself. With --draws K > 1 the output holds K "
                       "complete copies (multiple imputation), told apart by a leading 'draw' column.")
    i.add_argument("data", metavar="DATA", help="table with missing values")
    i.add_argument("--out", required=True, metavar="FILE", help="output .csv or .parquet")
    i.add_argument("--model", metavar="MODEL", help="use the imputer of a model (directory or MLflow URI) instead of fitting one")
    i.add_argument("--tracking-uri", metavar="URI", help=TRACKING_HELP)
    i.add_argument("--epochs", type=positive_int("--epochs"), default=None, help="imputer training epochs (default: the imputer's own)")
    i.add_argument("--draws", type=positive_int("--draws"), default=1, help="number of imputations K (default: 1)")
    i.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    i.add_argument("--missing-token", action="append", default=[], metavar="TOK", help="text that means 'missing' (repeatable)")

    e = sub.add_parser("evaluate", help="compare MODEL's samples with real data",
                       description="Sample as many rows as DATA has and report detection AUC (real vs synthetic "
                       "classifier), per-column marginal distances, association-matrix distance, privacy (distance to "
                       "closest record, exact copies) and, with --target, train-on-synthetic/test-on-real utility.")
    e.add_argument("model", metavar="MODEL", help="model directory")
    e.add_argument("--real", required=True, metavar="DATA", help="real table to compare against (ideally the training data)")
    e.add_argument("--holdout", metavar="DATA", help="real rows NOT used in training, for the privacy test (default: split --real)")
    e.add_argument("--target", metavar="COL", help="column to predict for the utility score")
    e.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    e.add_argument("--missing-token", action="append", default=[], metavar="TOK", help="text that means 'missing' (repeatable)")
    e.add_argument("--json", action="store_true", help="print the report as JSON")
    e.add_argument("--tracking-uri", metavar="URI", help=TRACKING_HELP)

    m = sub.add_parser("models", help="list registered models, or show one's versions, aliases, metrics, lineage")
    msub = m.add_subparsers(dest="models_command", required=True, metavar="ACTION")
    ml = msub.add_parser("list", help="registered models with their latest version and aliases")
    ml.add_argument("--tracking-uri", metavar="URI", help=TRACKING_HELP)
    ms = msub.add_parser("show", help="versions of NAME: aliases, quality metrics, data/code lineage, gate")
    ms.add_argument("name", metavar="NAME")
    ms.add_argument("--tracking-uri", metavar="URI", help=TRACKING_HELP)
    for module in EXTENSIONS:
        importlib.import_module(module).add_parser(sub)
    return p


def _progress(args, label: str):
    if args.quiet:
        return None
    from trainers.progress import ConsoleProgress
    return ConsoleProgress(label)


def _info(args, msg: str) -> None:
    if not args.quiet:
        print(msg, file=sys.stderr, flush=True)


def _resolve(ref: str, args) -> str:
    """MODEL as a local directory (MLflow URIs are downloaded to a cache, see augment/loading.py)."""
    from augment.loading import resolve_model
    return resolve_model(ref, getattr(args, "tracking_uri", None))


def _load_tabular(path: str, args=None):
    from trainers.base import load_model
    return load_model(_resolve(path, args))


# Options that only the tabular GAN understands: given (not default) with --kind timeseries they are an error.
TABULAR_ONLY = {"loss": "--loss", "pac": "--pac", "target": "--target", "imputer_epochs": "--imputer-epochs",
                "numeric_encoding": "--numeric-encoding"}
TIMESERIES_ONLY = {"seq_len": "--seq-len", "id_col": "--id-col", "time_col": "--time-col", "static_col": "--static-col"}


def _given(args, names: dict) -> list[str]:
    defaults = {"loss": "wgan-gp", "pac": 10, "static_col": []}
    return [flag for dest, flag in names.items() if getattr(args, dest, None) not in (None, defaults.get(dest))]


def new_model(args):
    """The unfitted model `train --kind` asks for, its config validated before any data is read."""
    if args.kind == "timeseries":
        return _new_timeseries_model(args)
    if _given(args, TIMESERIES_ONLY):
        raise ConfigError(f"{', '.join(_given(args, TIMESERIES_ONLY))} only apply with --kind timeseries")
    if args.batch_size is None:
        args.batch_size = 500
    from trainers.tabular_gan import TabularGAN, TabularGANConfig
    cfg = TabularGANConfig(epochs=args.epochs, batch_size=args.batch_size, loss=args.loss, pac=args.pac,
                           seed=args.seed, target=args.target, imputer_epochs=args.imputer_epochs or 0,
                           **({"numeric_encoding": args.numeric_encoding}
                              if getattr(args, "numeric_encoding", None) else {})).validate()
    return TabularGAN(cfg)


def _new_timeseries_model(args):
    from trainers.timeseries_gan import TimeSeriesGAN, TimeSeriesGANConfig
    if _given(args, TABULAR_ONLY):
        raise ConfigError(f"{', '.join(_given(args, TABULAR_ONLY))} apply to tabular models only, not --kind timeseries")
    if args.seq_len is None:
        raise ConfigError("--kind timeseries needs --seq-len L (the window length the model learns)")
    cfg = TimeSeriesGANConfig(seq_len=args.seq_len, id_col=args.id_col, time_col=args.time_col,
                              static_cols=tuple(args.static_col), epochs=args.epochs, seed=args.seed,
                              batch_size=args.batch_size or TimeSeriesGANConfig.batch_size).validate()
    return TimeSeriesGAN(cfg)


def fit_model(model, table, args, opts):
    """The single place where the fit path is chosen: Ray Train (`opts`: the Ray options cmd_train already
    parsed and checked). Tabular: table is None, the cluster reads DATA. Time series: `table` was read here
    (windows need whole series, see trainers/ray_fit_timeseries.py) and is handed to the workers."""
    kw = dict(opts=opts, out=args.out, progress=_progress(args, "train"), info=lambda msg: _info(args, msg))
    if model.kind == "timeseries":
        from trainers.ray_fit import PerPartitionModels
        from trainers.ray_fit_timeseries import fit_timeseries_on_ray, fit_timeseries_per_partition
        if args.per_partition:
            return PerPartitionModels(args.per_partition,
                                      fit_timeseries_per_partition(model, table, args.per_partition, **kw))
        return fit_timeseries_on_ray(model, table, **kw)
    from trainers.ray_fit import PerPartitionModels, fit_on_ray, fit_per_partition
    kw["missing_tokens"] = args.missing_token
    if args.per_partition:
        return PerPartitionModels(args.per_partition, fit_per_partition(model, args.data, args.per_partition, **kw))
    return fit_on_ray(model, args.data, **kw)


def cmd_train(args) -> int:
    from trainers.persistence import META_FILE
    from trainers.table_io import read_table

    out = Path(args.out)
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / META_FILE).exists())):
        raise ConfigError(f"{out}: exists and is not a ganstream model directory; refusing to overwrite it")
    model = new_model(args)
    cfg = model.config
    from trainers.ray_address import check_ray_address
    from trainers.ray_options import options_from_args
    ray_opts = options_from_args(args, kind=model.kind)  # a bad Ray option (e.g. --object-store-mb with --ray-address) fails here
    check_ray_address(args.ray_address)  # a dead --ray-address fails here, before a tracking run exists (Ray would retry for minutes)
    # tabular: the cluster reads DATA (never whole here); time series: windows need whole series, read here
    table = read_table(args.data, args.missing_token) if model.kind == "timeseries" else None
    tracking = None
    from deploy.tracking import tracking_requested
    if tracking_requested(args):
        from deploy.tracking import TrainTracking
        tracking = TrainTracking(args)  # validates --gate and reaches the tracking server before the fit
    if table is None:
        _info(args, f"training {model.kind} GAN on {args.data} with Ray Train: loss={cfg.loss}, epochs={cfg.epochs}")
    else:
        _info(args, f"training {model.kind} GAN on {args.data} with Ray Train: {len(table):,} rows x {table.shape[1]} "
                    f"columns, {int(table.isna().to_numpy().sum()):,} missing cells, epochs={cfg.epochs}")
    model = fit_model(model, table, args, ray_opts)
    if table is None:
        table = getattr(model, "stats_sample", None)  # the bounded sample the Ray fit drew, for quality reports
    model.save(out)
    _info(args, f"model written to {out} ({model.training['seconds']:.1f}s)")
    if tracking:
        return tracking.finish(model, table, out)
    return 0


def cmd_sample(args) -> int:
    from trainers.table_io import check_output_path, write_table
    check_output_path(args.out)
    model = _load_tabular(args.model, args)
    if model.kind == "timeseries":
        return _sample_sequences(model, args)
    condition = dict([args.condition]) if args.condition else None
    t0 = time.perf_counter()
    rows = model.sample(args.rows, seed=args.seed, condition=condition, missing=args.missing)
    dt = time.perf_counter() - t0
    write_table(rows, args.out)
    _info(args, f"wrote {len(rows):,} rows to {args.out} ({len(rows) / max(dt, 1e-9):,.0f} rows/s)")
    return 0


def _sample_sequences(model, args) -> int:
    """`sample` of a time-series model: --rows N sequences of --seq-len steps, long format."""
    from trainers.table_io import write_table
    if args.condition:
        raise ConfigError("--condition applies to tabular models only; time-series models continue a history "
                          "instead: ganstream extend MODEL --history FILE")
    t0 = time.perf_counter()
    frame = model.sample(args.rows, seed=args.seed)
    write_table(frame, args.out)
    _info(args, f"wrote {args.rows:,} sequences x {model.config.seq_len} steps ({len(frame):,} rows) to {args.out} "
                f"({time.perf_counter() - t0:.2f}s)")
    return 0


def cmd_impute(args) -> int:
    import pandas as pd
    from trainers.table_io import check_output_path, read_table, write_table

    check_output_path(args.out)
    if args.model and args.epochs:
        raise ConfigError("--epochs applies only when fitting a new imputer (without --model)")
    table = read_table(args.data, args.missing_token)
    holes = int(table.isna().to_numpy().sum())
    if args.model:
        args.model = _resolve(args.model, args)
        from trainers.base import load_model
        from trainers.persistence import read_meta
        if read_meta(args.model)["kind"] == "imputer":
            from trainers.imputer import TabularImputer
            imputer = TabularImputer.load(args.model)
            draws = imputer.transform(table, draws=args.draws, seed=args.seed)
        else:
            draws = load_model(args.model).impute(table, draws=args.draws, seed=args.seed)
    else:
        from trainers.imputer import GainConfig, TabularImputer
        cfg = GainConfig(seed=args.seed)
        if args.epochs:
            cfg.epochs = args.epochs
        _info(args, f"fitting imputer on {args.data}: {len(table):,} rows, {holes:,} missing cells")
        imputer = TabularImputer(cfg).fit(table, progress=_progress(args, "impute"))
        draws = imputer.transform(table, draws=args.draws, seed=args.seed)
    if args.draws == 1:
        out = draws[0]
    else:
        out = pd.concat([d.assign(draw=k) for k, d in enumerate(draws)], ignore_index=True)
        out = out[["draw", *table.columns]]
    write_table(out, args.out)
    _info(args, f"filled {holes:,} missing cells x {args.draws} draw(s); wrote {args.out}")
    return 0


def cmd_evaluate(args) -> int:
    from augment.metrics import format_report, quality_report
    from trainers.table_io import read_table

    model = _load_tabular(args.model, args)
    real = read_table(args.real, args.missing_token)
    holdout = read_table(args.holdout, args.missing_token) if args.holdout else None
    if args.target and args.target not in real.columns:
        raise ConfigError(f"--target column '{args.target}' is not in {args.real} (columns: {', '.join(map(str, real.columns))})")
    from trainers.schema import check_compatible
    check_compatible(model.encoder.schema, real, what=str(args.real))
    _info(args, f"sampling {len(real):,} synthetic rows and scoring them against {args.real} "
                f"(classifiers, nearest neighbours: about a minute per 10k rows on one thread)")
    synthetic = model.sample(len(real), seed=args.seed)
    report = quality_report(real[model.encoder.schema.names], synthetic, target=args.target, holdout=holdout, seed=args.seed)
    print(json.dumps(report, indent=1) if args.json else format_report(report))
    return 0


def cmd_models(args) -> int:
    from deploy.registry import list_models, show_model
    from deploy.tracking import resolve_uri, using
    uri = resolve_uri(args.tracking_uri)
    with using(uri):
        print(list_models(uri) if args.models_command == "list" else show_model(uri, args.name))
    return 0


COMMANDS = {"train": cmd_train, "sample": cmd_sample, "impute": cmd_impute, "evaluate": cmd_evaluate,
            "models": cmd_models}


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    args = build_parser().parse_args(argv)
    from trainers.runtime import set_threads
    set_threads(args.threads)
    try:
        run = getattr(args, "func", None) or COMMANDS[args.command]
        return run(args)
    except GanstreamError as e:
        print(f"ganstream {args.command}: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print(f"ganstream {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
