"""`ganstream train DATA --out MODEL_DIR`: the command line's half of a fit. It turns the options into a typed
`TrainRequest` (pipeline/train.py) and runs it; every check happens there, before anything is written."""

from __future__ import annotations

import argparse
from pathlib import Path

from ganstream.pipeline.argtypes import number_at_least, positive_float, positive_int
from ganstream.pipeline.cli_common import TRACKING_HELP, console
from ganstream.trainers.backends.options import MATERIALIZE_MB, MIN_OBJECT_STORE_MB
from ganstream.trainers.errors import ConfigError

# Options only one model kind understands: given with the other kind they are an error (dest -> flag).
TABULAR_ONLY = {"loss": "--loss", "pac": "--pac", "target": "--target", "imputer_epochs": "--imputer-epochs",
                "numeric_encoding": "--numeric-encoding", "categorical": "--categorical",
                "dp_epsilon": "--dp-epsilon", "dp_delta": "--dp-delta"}
TIMESERIES_ONLY = {"seq_len": "--seq-len", "id_col": "--id-col", "time_col": "--time-col", "static_col": "--static-col"}
SHARED = ("epochs", "batch_size", "seed")


def add_parser(sub) -> None:
    t = sub.add_parser("train", help="fit a generator on DATA and write a model directory",
                       description="Fit a tabular GAN (conditional, PacGAN discriminator) or, with --kind timeseries, a "
                       "time-series GAN on DATA. Columns with missing values are allowed: the tabular model learns "
                       "where values go missing and fits a GAIN-style imputer too; the time-series model trains "
                       "through masks. One worker fits in this process; more workers, --ray-address or "
                       "--per-partition fit with Ray Train (--backend chooses explicitly). The first line says which.")
    t.add_argument("data", metavar="DATA", help="training table (.csv, .parquet, or a directory of .parquet files)")
    t.add_argument("--kind", choices=["tabular", "timeseries"], default="tabular",
                   help="model kind (default: tabular; timeseries: sequences, see --seq-len)")
    t.add_argument("--out", required=True, metavar="MODEL_DIR", help="directory to write the model to (replaced if it is a model)")
    t.add_argument("--epochs", type=positive_int("--epochs"), default=None,
                   help="passes over the data (default: tabular 300, or more on a small table so the fit makes at least "
                        "2,000 optimiser steps; timeseries 100)")
    t.add_argument("--batch-size", type=positive_int("--batch-size"), default=None,
                   help="rows per step, a multiple of --pac (default: 500, lowered for smaller tables; timeseries: "
                        "windows per step, default 128)")
    t.add_argument("--seed", type=int, default=None, help="random seed (default: 0)")
    t.add_argument("--missing-token", action="append", default=[], metavar="TOK",
                   help="text that means 'missing' in DATA, e.g. '?' (repeatable; empty strings are always missing)")
    tab = t.add_argument_group("tabular model")
    tab.add_argument("--loss", choices=["wgan-gp", "non-saturating", "minimax", "dual"], default=None,
                     help="adversarial loss (default: wgan-gp; minimax is the original game, kept for comparison; "
                     "dual: two discriminators penalising both KL and reverse KL, docs/mode_collapse.md)")
    tab.add_argument("--pac", type=positive_int("--pac"), default=None,
                     help="samples per discriminator input, PacGAN packing (default: 10)")
    tab.add_argument("--numeric-encoding", choices=["auto", "quantile", "mode"], default=None,
                     help="numeric columns: 'quantile' (per-column CDF to a normal), 'mode' (Gaussian-mixture mode "
                     "one-hot + offset) or 'auto' (per column: 'mode' where the values form separated clusters, "
                     "'quantile' elsewhere; docs/mode_collapse.md) (default: auto)")
    tab.add_argument("--imputer-epochs", type=positive_int("--imputer-epochs"), default=None,
                     help="passes of the imputer that fills holes before GAN training (default: min(--epochs, 40))")
    tab.add_argument("--target", metavar="COL",
                     help="a categorical column downstream models will predict: an auxiliary classifier keeps "
                          "P(COL | other columns) of the synthetic rows close to the real one (better utility)")
    tab.add_argument("--categorical", action="append", default=None, metavar="COL",
                     help="learn COL as a category (repeatable). By default a column that is nearly unique per row "
                          "(an id) or free text is not learned, since it could only be sampled as copies of training "
                          "values; and dates and timestamps are learned as numbers. `train` lists each column's kind")
    dp = t.add_argument_group("differential privacy (tabular)")
    dp.add_argument("--dp-epsilon", type=positive_float("--dp-epsilon"), metavar="EPS",
                    help="train with DP-SGD (per-row clipping and Gaussian noise) to this epsilon; the accountant's "
                         "epsilon and delta go into model.json and the MLflow run, and train prints what the guarantee "
                         "covers and what it does not (column statistics; docs/privacy.md)")
    dp.add_argument("--dp-delta", type=positive_float("--dp-delta"), metavar="D",
                    help="delta of the guarantee (default: 1e-5, or 0.1/rows when smaller); must be below 1/rows")
    ts = t.add_argument_group("time-series model (--kind timeseries)")
    ts.add_argument("--seq-len", type=positive_int("--seq-len"), metavar="L",
                    help="window length the model learns (required with --kind timeseries; shorter series are skipped)")
    ts.add_argument("--id-col", metavar="C", help="series id column (long format); without it DATA is one series in row order")
    ts.add_argument("--time-col", metavar="C", help="time/order column: must increase within each series; on a regular "
                    "grid, skipped timestamps become gaps")
    ts.add_argument("--static-col", action="append", default=[], metavar="C",
                    help="per-series attribute column the model conditions on (repeatable; needs --id-col)")
    tr = t.add_argument_group("tracking and registry (MLflow)")
    tr.add_argument("--tracking-uri", metavar="URI", help=TRACKING_HELP + "; giving it turns tracking on")
    tr.add_argument("--experiment", metavar="NAME", help="MLflow experiment of the run (default: ganstream). The fit is "
                    "tracked as an MLflow run when --register, --tracking-uri or --experiment is given or "
                    "$MLFLOW_TRACKING_URI is set; otherwise train needs no MLflow")
    tr.add_argument("--register", metavar="NAME", help="register the fit as a new version of model NAME if it passes "
                    "the quality gate (turns tracking on); a failing gate exits 3 and registers nothing")
    tr.add_argument("--promote", metavar="ALIAS", default="champion", help="alias moved to the new version (default: champion)")
    tr.add_argument("--gate", action="append", default=[], metavar="KEY<=VALUE",
                    help="override a gate threshold, e.g. detection_auc<=0.95, utility_ratio>=0.8, dcr_ratio=off "
                         "(repeatable; defaults in deploy/gate.py)")
    tr.add_argument("--holdout", metavar="DATA", help="real rows the fit never sees (tabular): the run also runs the "
                    "membership-inference audit against them (--gate membership_auc<=X) and, with --target, measures "
                    "whether real + synthetic rows train better downstream models than real rows alone on them "
                    "(the augmentation lift; --gate lift_auc>=X)")
    add_backend_arguments(t)
    t.set_defaults(func=run)


def add_backend_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("where the fit runs")
    g.add_argument("--backend", choices=["auto", "local", "ray"], default="auto",
                   help="local: this process; ray: Ray Train; auto (default): local for one worker with no "
                        "--ray-address and no --per-partition, Ray otherwise")
    g.add_argument("--workers", type=positive_int("--workers"), default=1,
                   help="Ray Train workers (DDP over gloo, one torch thread each; default: 1). Tabular DATA is streamed "
                        "to the workers by Ray Data, never read whole into this process")
    g.add_argument("--ray-address", metavar="ADDR",
                   help="join this Ray cluster (e.g. ray://host:10001 or host:6379); default: start a local cluster "
                        "sized to this machine and stop it afterwards. An address where no Ray cluster answers fails "
                        "within seconds (exit 4), before anything is written")
    g.add_argument("--checkpoint-dir", metavar="DIR",
                   help="where checkpoints go (default: MODEL_DIR.checkpoints beside the model); both backends write them. "
                        "With Ray also s3://BUCKET/PREFIX (endpoint and keys from the AWS_* environment, e.g. "
                        "AWS_ENDPOINT_URL for MinIO): the nodes then need no shared disk")
    g.add_argument("--keep-checkpoints", action="store_true",
                   help="leave the checkpoints after a successful fit, for a later --resume that extends it "
                   "(default: removed once the model is written)")
    g.add_argument("--resume", action="store_true",
                   help="continue the fit whose checkpoints are in the checkpoint dir (after an interruption, or "
                        "with a larger --epochs) instead of starting afresh")
    g.add_argument("--per-partition", metavar="COL",
                   help="fit one generator per value of partition column COL (e.g. region), all at once on Ray; "
                        "each is written to MODEL_DIR/COL=VALUE. With --register NAME each becomes a version of its "
                        "own registered model NAME-VALUE (characters of VALUE other than letters, digits, '_', '.', "
                        "'-' become '_'), each through the same gate and alias; a partition that fails the gate "
                        "gets no version and the command exits 3 naming it")
    g.add_argument("--worker-cache-mb", type=float, default=None, metavar="MB",
                   help="Ray: memory per worker for keeping its encoded shard after the first epoch, so later epochs "
                        "do not re-read DATA (default: 256; 0: stream DATA at every epoch)")
    g.add_argument("--materialize-mb", type=float, default=MATERIALIZE_MB, metavar="MB",
                   help="Ray, tabular: DATA of at most MB megabytes on disk is read once into Ray's object store and "
                        "trained from there; larger DATA streams from its files at every epoch (default: %(default)g; 0: always "
                        "stream)")
    g.add_argument("--object-store-mb", type=number_at_least("--object-store-mb", MIN_OBJECT_STORE_MB), default=None,
                   metavar="MB",
                   help="Ray: size of the local cluster's object store, through which Ray Data streams DATA (default: "
                        "Ray's sizing, 30%% of memory; at least 75). A bounded store (e.g. 96) keeps a worker's RSS "
                        "flat however large DATA is, at some speed on a busy machine (benchmarks/RESULTS.md). Not "
                        "with --ray-address")


def _given(args, names: dict) -> list[str]:
    return [flag for dest, flag in names.items() if getattr(args, dest, None) not in (None, [])]


def model_config(args):
    """The model's typed config from the options given (defaults from the config class, not from argparse)."""
    if args.kind == "timeseries":
        from ganstream.trainers.timeseries.config import TimeSeriesGANConfig
        if _given(args, TABULAR_ONLY):
            raise ConfigError(f"{', '.join(_given(args, TABULAR_ONLY))} apply to tabular models only, not --kind timeseries")
        if args.seq_len is None:
            raise ConfigError("--kind timeseries needs --seq-len L (the window length the model learns)")
        params = {"seq_len": args.seq_len, "id_col": args.id_col, "time_col": args.time_col,
                  "static_cols": tuple(args.static_col)}
        params.update({k: getattr(args, k) for k in SHARED if getattr(args, k) is not None})
        return TimeSeriesGANConfig.from_options(**params)
    from ganstream.trainers.tabular.config import TabularGANConfig
    if _given(args, TIMESERIES_ONLY):
        raise ConfigError(f"{', '.join(_given(args, TIMESERIES_ONLY))} only apply with --kind timeseries")
    params = {k: getattr(args, k) for k in (*SHARED, *TABULAR_ONLY) if getattr(args, k, None) is not None}
    return TabularGANConfig.from_options(**params)


def _location(path: str | None) -> str | None:
    """A local --checkpoint-dir made absolute (it must not move with Ray's working directory); s3:// kept."""
    from ganstream.trainers.backends.storage import is_remote
    if path is None or is_remote(path):
        return path
    return str(Path(path).resolve())


def train_request(args):
    """`train`'s options as a TrainRequest (pipeline/train.py)."""
    from ganstream.pipeline.train import Tracking, TrainRequest
    from ganstream.trainers.backends.options import FitOptions
    fit = FitOptions(backend=args.backend, workers=args.workers, ray_address=args.ray_address,
                     checkpoint_dir=_location(args.checkpoint_dir),
                     resume=args.resume, keep_checkpoints=args.keep_checkpoints, per_partition=args.per_partition,
                     worker_cache_mb=args.worker_cache_mb, object_store_mb=args.object_store_mb,
                     materialize_mb=args.materialize_mb)
    tracking = Tracking(uri=args.tracking_uri, experiment=args.experiment, register=args.register,
                        promote=args.promote, gate=tuple(args.gate), holdout=args.holdout)
    return TrainRequest(args.data, model_config(args), Path(args.out), fit, tuple(args.missing_token), tracking)


def run(args) -> int:
    from ganstream.pipeline.train import run_train
    run_train(train_request(args), console(args))
    return 0
