"""A fit as an MLflow run: parameters, per-epoch losses, final quality figures, plots, lineage, the gate's
verdict, and (when it passes and a name is given) a registered version.

This module takes explicit values and knows no data science: the caller (pipeline/train.py) builds the quality
report and its plots (augment/), evaluates the gate (gate.py) and hands all of it over as a `FitRecord`.

What a run records:
* params: the model config, the data, the missing tokens, rows and columns
* metrics: every per-epoch figure of the history with step=epoch (one batched call after the fit), the gated
  figures of the quality report, train_seconds
* artifacts: plots/<name>.png for each plot, quality_report.json, and, when registered, the model
* tags: lineage (data path + sha256, code version + git commit, seed) and the gate verdict
  (gate=passed|failed, gate.summary, gate.failures)

Nothing is written before the fit: the session only probes the server's health when it is created (an
unreachable server fails the command in seconds, exit 4, before minutes of training); the experiment and the
run are created after the fit.
"""

from __future__ import annotations

import contextlib

import logging
import time
from dataclasses import dataclass, field
from typing import Callable

from ganstream.deploy.gate import GateResult
from ganstream.trainers.errors import GanstreamError
from ganstream.deploy.mlflow_env import check_reachable, mlflow_errors, resolve_uri, using

DEFAULT_EXPERIMENT = "ganstream"
MAX_METRICS_PER_BATCH = 1000  # MLflow accepts at most 1000 metrics per log_batch call


@dataclass
class FitRecord:
    """One fit, as the run will show it."""
    run_name: str
    params: dict[str, str]
    history: list[dict]
    report: dict
    figures: dict[str, float | None]
    plots: dict[str, Callable[[], object]] = field(default_factory=dict)  # name -> figure factory
    lineage: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    train_seconds: float = 0.0


@dataclass
class TrackedFit:
    run_id: str
    version: str | None = None  # the registered version, when one was made


class TrackingSession:
    """Created before the fit (resolves the URI, probes a server's health: nothing written), used after it."""

    def __init__(self, uri: str | None = None, experiment: str | None = None, info: Callable[[str], None] | None = None):
        self.uri = resolve_uri(uri)
        self.experiment = experiment or DEFAULT_EXPERIMENT
        self.info = info or (lambda msg: None)
        logging.getLogger("mlflow").setLevel(logging.WARNING)  # MLflow's INFO lines are not the user's business
        check_reachable(self.uri)

    def log_fit(self, record: FitRecord, gate: GateResult, model_dir=None, register: str | None = None,
                alias: str | None = None) -> TrackedFit:
        """One MLflow run for `record`; with `register` and a passing gate, `model_dir` becomes a new version of
        that registered model and `alias` moves to it (registry.register: verified before the alias moves)."""
        import mlflow

        with using(self.uri):
            mlflow.set_experiment(self.experiment)
            with _run(record.run_name, self.uri) as run:
                self._log(run.info.run_id, record, gate)
                extra = f" ({', '.join(f'{k}={v}' for k, v in record.tags.items())})" if record.tags else ""
                self.info(f"tracking: run {run.info.run_id}{extra} in experiment '{self.experiment}' at {self.uri}")
                self.info(f"gate {'passed' if gate.passed else 'FAILED'}: {gate.summary()}")
                version = None
                if register and gate.passed:
                    from ganstream.deploy import registry
                    t0 = time.perf_counter()
                    logged = registry.log_generator(model_dir)
                    tags = {**record.lineage, **record.tags, "gate": "passed", "gate.summary": gate.summary()[:5000],
                            "run_id": run.info.run_id,
                            **{f"gate.{k}": f"{v:.6g}" for k, v in record.figures.items() if v is not None}}
                    version = registry.register(logged, register, alias, tags, info=self.info)
                    mlflow.set_tag("registered_version", f"{register}/{version}")
                    self.info(f"registering + verifying took {time.perf_counter() - t0:.1f}s")
        return TrackedFit(run.info.run_id, version)

    def _log(self, run_id: str, record: FitRecord, gate: GateResult) -> None:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import mlflow
        from mlflow import MlflowClient

        mlflow.set_tags({**record.lineage, **record.tags})
        mlflow.log_params(record.params)
        metrics = _history_metrics(record.history)
        client = MlflowClient()
        for i in range(0, len(metrics), MAX_METRICS_PER_BATCH):
            client.log_batch(run_id, metrics=metrics[i:i + MAX_METRICS_PER_BATCH])
        mlflow.log_metrics({**{k: float(v) for k, v in record.figures.items() if v is not None},
                            "train_seconds": float(record.train_seconds)})
        mlflow.log_dict(record.report, "quality_report.json")
        for name, make in record.plots.items():
            fig = make()
            mlflow.log_figure(fig, f"plots/{name}.png")
            plt.close(fig)
        mlflow.set_tags({"gate": "passed" if gate.passed else "failed", "gate.summary": gate.summary()[:5000],
                         "gate.failures": "; ".join(gate.failures)[:5000]})


@contextlib.contextmanager
def _run(name: str, uri: str):
    """An MLflow run that ends FINISHED, or FAILED when the block raises. Unlike `mlflow.start_run`'s own exit,
    a server that no longer answers cannot replace the block's error with one about ending the run: the run is
    then left RUNNING, and the error that ends the command says what happened."""
    import mlflow
    run = mlflow.start_run(run_name=name)
    try:
        with mlflow_errors(uri):  # MLflow's and HTTP errors become one-line TrackingErrors here, so the note fits
            yield run
    except BaseException as e:
        ended = False
        with _quick_http(), contextlib.suppress(Exception):  # a hung server must not add its full timeout again
            mlflow.end_run("FAILED")
            ended = True
        if isinstance(e, GanstreamError) and e.args:  # say what is left of the run
            state = "marked FAILED" if ended else "left RUNNING (the server did not answer)"
            e.args = (f"{e.args[0]}; run {run.info.run_id} {state}", *e.args[1:])
        raise
    mlflow.end_run()


@contextlib.contextmanager
def _quick_http(timeout_s: int = 3):
    """MLflow's HTTP timeout and retries for one last request on the way out of a failure (MLflow reads them
    from the environment on every request)."""
    import os
    keys = {"MLFLOW_HTTP_REQUEST_TIMEOUT": str(timeout_s), "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"}
    saved = {k: os.environ.get(k) for k in keys}
    os.environ.update(keys)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _history_metrics(history: list[dict]):
    from mlflow.entities import Metric
    now = int(time.time() * 1000)
    return [Metric(key=k, value=float(v), timestamp=now, step=int(h["epoch"]))
            for h in history for k, v in h.items()
            if k not in ("epoch", "epochs") and isinstance(v, (int, float)) and not isinstance(v, bool)]
