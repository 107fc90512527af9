"""`train`: the typed core behind `ganstream train`, `ganstream run JOB.yaml` and `ganstream.train(...)`.

A `TrainRequest` says what to fit (the model's config), on what (DATA), where it runs (FitOptions: backend,
workers, checkpoints), where it goes (`out`) and whether it is tracked, gated and registered (`Tracking`).
`run_train` does, in this order:
1. every check that needs no writing: the output directory, the options, the gate specs, the tracking server's
   health (a dead server fails in seconds, exit 4), a Ray address (probed, exit 4);
2. the fit (trainers/backends: its first line names the backend and why);
3. the model directory, written atomically;
4. with tracking: the quality report and plots (augment/evaluation.py), the gate (deploy/gate.py), the MLflow
   run and, if the gate passes and a name is given, the registered version (deploy/tracking.py). A refused
   gate raises GateFailed (exit 3) after the run is logged; nothing is registered.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from ganstream.pipeline.console import SILENT, Console
from ganstream.trainers.backends.options import FitOptions
from ganstream.trainers.errors import ConfigError
from ganstream.trainers.kinds import model_class
from ganstream.trainers.persistence import META_FILE


@dataclass
class Tracking:
    """Track a fit as an MLflow run, gate it, and optionally register it.

    uri (None): the tracking URI; None: $MLFLOW_TRACKING_URI, else MLflow's embedded sqlite:///mlflow.db.
    experiment (None -> "ganstream"): the MLflow experiment.
    register (None): register the fit as a new version of this model name if it passes the gate.
    promote ("champion"): the alias moved to that version.
    gate (()): threshold overrides, e.g. ("detection_auc<=0.95", "dcr_ratio=off"); defaults in deploy/gate.py.
    holdout (None): a table of real rows the fit never sees (tabular, with the model's target): the run then also
        measures the augmentation lift on them (augment/lift.py), which `lift_auc>=X` gates.
    """
    uri: str | None = None
    experiment: str | None = None
    register: str | None = None
    promote: str = "champion"
    gate: tuple[str, ...] = ()
    holdout: str | None = None


@dataclass
class TrainRequest:
    data: object  # a path (CSV, Parquet file, directory of Parquet files) or a DataFrame
    config: object  # TabularGANConfig | TimeSeriesGANConfig
    out: Path | None = None
    fit: FitOptions = field(default_factory=FitOptions)
    missing_tokens: tuple[str, ...] = ()
    tracking: Tracking | None = None

    @property
    def kind(self) -> str:
        return "timeseries" if type(self.config).__name__.startswith("TimeSeries") else "tabular"


@dataclass
class TrainResult:
    model: object
    model_dir: Path | None = None
    runs: dict[str, str] = field(default_factory=dict)  # partition value ("" for one model) -> MLflow run id
    versions: dict[str, str] = field(default_factory=dict)  # partition value -> registered version


def check_output_dir(out: Path | None) -> None:
    """A model directory may replace an older model, never anything else."""
    if out is None:
        return
    out = Path(out)
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / META_FILE).exists())):
        raise ConfigError(f"{out}: exists and is not a ganstream model directory; refusing to overwrite it")


def run_train(request: TrainRequest, console: Console = SILENT) -> TrainResult:
    """Fit, save, and (with tracking) report, gate, log and register. See the module docstring for the order."""
    check_output_dir(request.out)
    request.config.validate()
    request.fit.validate(request.kind)
    if isinstance(request.data, (str, os.PathLike)) and not Path(request.data).exists():
        raise ConfigError(f"{request.data}: no such file or directory")
    session, gates = _tracking_session(request, console)
    if request.fit.ray_address:
        from ganstream.trainers.backends.ray_address import check_ray_address
        check_ray_address(request.fit.ray_address)
    model = model_class(request.kind)(request.config)
    from ganstream.trainers import backends
    fitted = backends.fit(model, request.data, request.fit, out=request.out, missing_tokens=request.missing_tokens,
                          progress=console.progress("train"), info=console.info)
    if request.out is not None:
        fitted.save(request.out)
        console.info(f"model written to {request.out} ({fitted.training.get('seconds', 0.0):.1f}s)")
        backends.remove_checkpoints(request.fit, request.out)
    result = TrainResult(fitted, request.out)
    if session is not None:
        from ganstream.deploy.mlflow_env import TrackingError
        from ganstream.deploy.registry import RegistrationIncomplete
        try:
            _track(request, fitted, session, gates, console, result)
        except TrackingError as e:
            left = f"the model is written to {request.out}" if request.out else "the model is fitted"
            registered = ", ".join(f"version {v}" for v in result.versions.values())
            if isinstance(e, RegistrationIncomplete):  # its message already says what the registry holds
                raise TrackingError(f"{e}; {left}" + (f"; registered before: {registered}" if registered else "")) \
                    from None
            raise TrackingError(f"{e}; {left}, " + (f"registered before the failure: {registered}" if registered
                                                     else "nothing was registered")) from None
    return result


def _name(data) -> str:
    return str(data) if isinstance(data, (str, os.PathLike)) else f"a table of {len(data):,} rows"


def _tracking_session(request: TrainRequest, console: Console):
    """(TrackingSession, parsed gates) when the fit is tracked, else (None, None). Validates the gate specs and
    probes the server now, before the fit; writes nothing."""
    t = request.tracking
    from ganstream.deploy.mlflow_env import tracking_requested
    if t is None or not tracking_requested(t.uri, t.register, t.experiment):
        if t is not None and (t.gate or t.holdout):
            what = "--gate" if t.gate else "--holdout"
            raise ConfigError(f"{what} applies to tracked fits: add --register NAME (or --tracking-uri)")
        return None, None
    from ganstream.deploy.gate import parse_gates
    from ganstream.deploy.tracking import TrackingSession
    target = getattr(request.config, "target", None)
    gates = parse_gates(list(t.gate), target, kind=request.kind, holdout=bool(t.holdout))
    if t.holdout is not None:  # the membership audit runs on it; with --target, the augmentation lift too
        if request.kind != "tabular":
            raise ConfigError("--holdout applies to tabular fits (the membership audit and the augmentation lift)")
        if not Path(t.holdout).exists():
            raise ConfigError(f"--holdout {t.holdout}: no such file or directory")
        from ganstream.trainers.table_io import read_table
        if target is not None and target not in read_table(t.holdout, list(request.missing_tokens)).columns:
            raise ConfigError(f"--holdout {t.holdout}: has no --target column '{target}'")
    return TrackingSession(t.uri, t.experiment, info=console.info), gates


def _track(request: TrainRequest, fitted, session, gates, console: Console, result: TrainResult) -> None:
    """One run per model (per partition with --per-partition), each gated and registered on its own; a
    partition that fails the gate gets no version and the others still do; then GateFailed names the failures."""
    import time

    from ganstream.deploy.gate import GateFailed
    from ganstream.deploy.registry import partition_model_names

    t, t0 = request.tracking, time.perf_counter()
    column = getattr(fitted, "column", None)
    models = fitted.models if column else {"": fitted}
    names = partition_model_names(t.register, list(models)) if column and t.register else {"": t.register}
    failed, registered = [], []
    for value in sorted(models):
        model = models[value]
        model_dir = Path(request.out) / f"{column}={value}" if column else request.out
        tags = {"partition.column": column, "partition.value": value} if column else {}
        tracked, gate = _track_one(request, model, session, gates, console, model_dir, names.get(value), tags)
        result.runs[value] = tracked.run_id
        if tracked.version:
            result.versions[value] = tracked.version
            registered.append(f"{column}={value} -> {names[value]} version {tracked.version}")
        elif not gate.passed:
            failed.append((value, gate, tracked.run_id))
    console.info(f"tracking added {time.perf_counter() - t0:.1f}s")
    if t.register and failed and not column:
        _, gate, run_id = failed[0]
        raise GateFailed(f"quality gate failed, '{t.register}' not registered, alias '{t.promote}' unchanged: "
                         f"{'; '.join(gate.failures)} (run {run_id}; relax with --gate KEY<=VALUE or KEY=off)")
    if t.register and failed:
        listed = ", ".join(f"{column}={v} ({'; '.join(g.failures)}; run {r})" for v, g, r in failed)
        raise GateFailed(f"quality gate failed for {len(failed)} of {len(models)} partitions, not registered, their "
                         f"alias '{t.promote}' unchanged: {listed}; registered: {', '.join(registered) or 'none'} "
                         f"(relax with --gate KEY<=VALUE or KEY=off)")


def _track_one(request: TrainRequest, model, session, gates, console: Console, model_dir, register, tags):
    import time

    from ganstream.augment.evaluation import evaluate
    from ganstream.deploy.gate import evaluate as gate_evaluate
    from ganstream.deploy.lineage import lineage_tags
    from ganstream.deploy.tracking import FitRecord

    cfg = model.config
    t0 = time.perf_counter()
    table = getattr(model, "stats_sample", None)
    holdout = None
    if request.tracking.holdout is not None:
        from ganstream.trainers.table_io import read_table
        holdout = read_table(request.tracking.holdout, list(request.missing_tokens))
    target = getattr(cfg, "target", None)
    report = evaluate(model, table, target=target, seed=cfg.seed, plots=True, holdout=holdout,
                      lift=holdout is not None and target is not None)
    what = report.data.get("windows_real") if request.kind == "timeseries" else report.data.get("rows_real")
    console.info(f"quality report on {what:,} {'windows' if request.kind == 'timeseries' else 'rows'}: "
                 f"{time.perf_counter() - t0:.1f}s")
    figures = report.figures
    stem = Path(str(request.data)).stem if isinstance(request.data, (str, os.PathLike)) else "table"
    params = {k: ("" if v is None else str(v)) for k, v in cfg.to_json().items()}
    params.update(kind=request.kind, data=_name(request.data), missing_tokens=json.dumps(list(request.missing_tokens)),
                  rows=str(model.training.get("rows", model.training.get("windows"))),
                  columns=str(model.training.get("columns", model.training.get("features"))),
                  backend=str(model.training.get("backend", "")))
    if getattr(model, "privacy", None) is not None:  # what the accountant says, next to what was asked
        plan = model.privacy
        params.update({"privacy.epsilon_spent": f"{plan.spent():.6g}", "privacy.delta": f"{plan.delta:.6g}",
                       "privacy.accountant": plan.accountant, "privacy.noise_multiplier": f"{plan.noise_multiplier:.6g}",
                       "privacy.sample_rate": f"{plan.sample_rate:.6g}", "privacy.steps": str(plan.steps_done)})
    suffix = f"-{tags['partition.column']}={tags['partition.value']}" if tags else ""
    record = FitRecord(run_name=f"train-{stem}{suffix}", params=params, history=model.history, report=report.data,
                       figures=figures, plots=report.plots, lineage=lineage_tags(request.data, cfg.seed),
                       tags={"ganstream.kind": request.kind, **tags},
                       train_seconds=float(model.training.get("seconds", 0.0)))
    gate = gate_evaluate(figures, gates)
    tracked = session.log_fit(record, gate, model_dir=model_dir, register=register,
                              alias=request.tracking.promote)
    return tracked, gate


def train(data, kind: str = "tabular", *, out: str | os.PathLike | None = None, backend: str = "auto",
          workers: int = 1, ray_address: str | None = None, tracking: "Tracking | str | bool | None" = None,
          missing_tokens: tuple[str, ...] | list[str] = (), checkpoint_dir: str | None = None, resume: bool = False,
          keep_checkpoints: bool = False, per_partition: str | None = None, quiet: bool = False, **params):
    """Fit a model as `ganstream train` does, and return it fitted.

    data: a CSV or Parquet path, a directory of Parquet files, or a DataFrame.
    kind ("tabular"): "tabular" or "timeseries".
    out (None): a directory to save the model to (and beside it, MODEL_DIR.checkpoints).
    backend ("auto"): "local" (this process), "ray" (Ray Train) or "auto": local for one worker without a Ray
        address, Ray otherwise.
    workers (1), ray_address (None): Ray Train workers, and a cluster to join (None: start a local one).
    tracking (None): an MLflow tracking URI, True (MLflow's default store), or a `Tracking` (experiment,
        register, promote, gate).
    missing_tokens (()): text that means "missing" in DATA, e.g. ("?",).
    checkpoint_dir (None), resume (False): where checkpoints go, and continue from them.
    keep_checkpoints (False): leave them after a successful fit (default: removed once the model is written).
    per_partition (None): fit one model per value of this partition column (Ray).
    quiet (False): no progress lines on stderr.
    **params: the model's hyper-parameters (see help(ganstream.TabularGAN) / help(ganstream.TimeSeriesGAN)).
    """
    config = model_class(kind)(**params).config if kind in ("tabular", "timeseries") else None
    if config is None:
        raise ConfigError(f"kind must be 'tabular' or 'timeseries' (got {kind!r})")
    if tracking is True:
        tracking = Tracking(experiment="ganstream")
    elif isinstance(tracking, str):
        tracking = Tracking(uri=tracking)
    fit = FitOptions(backend=backend, workers=workers, ray_address=ray_address, checkpoint_dir=checkpoint_dir,
                     resume=resume, keep_checkpoints=keep_checkpoints, per_partition=per_partition)
    request = TrainRequest(data, config, Path(out) if out is not None else None, fit, tuple(missing_tokens), tracking)
    result = run_train(request, Console(quiet=quiet))
    result.model.tracked = {"runs": result.runs, "versions": result.versions} if result.runs else None
    return result.model
