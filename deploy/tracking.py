"""`ganstream train` as an MLflow run: parameters, per-epoch losses, final quality figures, plots, lineage.

Tracking is ON when `--register`, `--tracking-uri` or `--experiment` is given or MLFLOW_TRACKING_URI is
set, and OFF otherwise, so a plain `train` needs no MLflow at all. The tracking URI is `--tracking-uri`,
else $MLFLOW_TRACKING_URI, else MLflow's embedded default (`sqlite:///<cwd>/mlflow.db`, no server).

What a run records:
* params: the model config, the data path, missing tokens
* metrics: d_loss, g_loss, cond_loss (target_loss), rows_per_s, epoch_s with step=epoch (one batched
  call after the fit), then the final quality figures of `augment.metrics.quality_report` on the
  training data (at most 10,000 rows): detection_auc, marginal_mean_distance, association_distance,
  utility_ratio (with --target), dcr_ratio, exact_copies, exact_copy_rate; train_seconds
* artifacts: plots/loss_curves.png, plots/marginals.png, plots/associations.png, quality_report.json
  (time series: the TimeGAN scores of augment/ts_report.py, and plots/series.png instead of marginals and
  associations)
* tags: lineage (data path + sha256, code version + git commit, seed) and the gate verdict
  (gate=passed|failed, gate.summary, gate.failures)

An unreachable server fails before the fit (a reachability probe with a 5 s timeout), and MLflow's HTTP
retries are capped (MLFLOW_HTTP_REQUEST_MAX_RETRIES=1, MLFLOW_HTTP_REQUEST_TIMEOUT=15 unless set), so a
server that dies mid-run fails the command in bounded time with one readable line.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from trainers.errors import GanstreamError

DEFAULT_EXPERIMENT = "ganstream"
REPORT_MAX_ROWS = 10_000


class TrackingError(GanstreamError):
    """The MLflow tracking server / store cannot be used (unreachable, refused, failed request)."""


# ------------------------------------------------------------------------------------ configuration
def tracking_requested(args) -> bool:
    return bool(getattr(args, "register", None) or getattr(args, "tracking_uri", None)
                or getattr(args, "experiment", None) or os.environ.get("MLFLOW_TRACKING_URI"))


def resolve_uri(cli_uri: str | None = None) -> str:
    """--tracking-uri, else $MLFLOW_TRACKING_URI, else MLflow's embedded default for the working dir."""
    if cli_uri:
        return cli_uri
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    from mlflow.tracking._tracking_service import utils
    if utils._tracking_uri is not None:
        return utils._tracking_uri
    import mlflow
    return mlflow.get_tracking_uri()


def _bound_http_retries() -> None:
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "15")


def check_reachable(uri: str, timeout: float = 5.0) -> None:
    """Raise TrackingError at once when an http(s) tracking server does not answer its health check."""
    if not uri.startswith(("http://", "https://")):
        return
    url = uri.rstrip("/") + "/health"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            if r.status != 200:
                raise TrackingError(f"tracking server {uri} is unhealthy (GET /health: HTTP {r.status})")
    except urllib.error.HTTPError as e:
        raise TrackingError(f"tracking server {uri} is unhealthy (GET /health: HTTP {e.code})") from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise TrackingError(f"tracking server {uri} is unreachable ({reason}); start it or pass another "
                            f"--tracking-uri") from None


@contextlib.contextmanager
def using(uri: str):
    """Point MLflow's fluent API at `uri` for the block, then restore the previous global setting:
    mlflow.set_tracking_uri writes $MLFLOW_TRACKING_URI and mlflow.set_experiment writes a module global and
    $MLFLOW_EXPERIMENT_ID; an experiment id of one store must not leak into a later command on another
    (it fails there with "No Experiment with id=...")."""
    _bound_http_retries()
    check_reachable(uri)
    import mlflow
    from mlflow.tracking import fluent
    from mlflow.tracking._tracking_service import utils
    saved_env = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_ID")}
    old_uri, old_experiment = utils._tracking_uri, fluent._active_experiment_id
    mlflow.set_tracking_uri(uri)
    try:
        with mlflow_errors(uri):
            yield
    finally:
        mlflow.set_tracking_uri(old_uri)
        fluent._active_experiment_id = old_experiment
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _short(msg: str) -> str:
    """One line out of MLflow's multi-line, URL-laden HTTP failure messages."""
    import re
    m = re.search(r"API request to \S*?(/api/\S+) failed", msg)
    for needle, reason in (("Connection refused", "connection refused"), ("timed out", "timed out"),
                           ("Max retries exceeded", "no answer")):
        if needle in msg:
            where = f" during {m.group(1)}" if m else ""
            return f"the tracking server stopped answering{where} ({reason}); nothing was registered"
    return msg.splitlines()[0][:300] if msg else "unknown error"


@contextlib.contextmanager
def mlflow_errors(uri: str):
    """Turn MLflow / HTTP failures into one-line TrackingErrors (GanstreamErrors pass through)."""
    from mlflow.exceptions import MlflowException
    try:
        yield
    except GanstreamError:
        raise
    except MlflowException as e:
        msg = str(e.message if hasattr(e, "message") else e).strip()
        raise TrackingError(f"MLflow at {uri}: {_short(msg)}") from None
    except (ConnectionError, TimeoutError, OSError) as e:
        raise TrackingError(f"MLflow at {uri}: {type(e).__name__}: {str(e)[:300]}") from None
    except Exception as e:  # requests' exceptions, when requests is what failed
        if type(e).__module__.startswith(("requests", "urllib3")):
            raise TrackingError(f"MLflow at {uri} failed: {type(e).__name__}: {str(e)[:300]}") from None
        raise


# ------------------------------------------------------------------------------------------ lineage
def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def data_fingerprint(path: str | os.PathLike) -> dict:
    """Path, total bytes and sha256 of a file; for a directory, the sha256 of its sorted
    (relative path, size, sha256) listing, so renaming, adding or changing any file changes it."""
    p = Path(path).resolve()
    if p.is_file():
        return {"path": str(p), "files": 1, "bytes": p.stat().st_size, "sha256": _sha256(p)}
    files = sorted(f for f in p.rglob("*") if f.is_file() and not f.name.startswith("."))
    listing = [(str(f.relative_to(p)), f.stat().st_size, _sha256(f)) for f in files]
    digest = hashlib.sha256(json.dumps(listing).encode()).hexdigest()
    return {"path": str(p), "files": len(files), "bytes": sum(s for _, s, _ in listing), "sha256": digest}


def code_version() -> dict:
    """ganstream package version, and the git commit (+ whether the tree had local changes) if known."""
    try:
        from importlib.metadata import version
        out = {"version": version("ganstream")}
    except Exception:
        out = {"version": "unknown"}
    repo = Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=5).stdout.strip()
        if commit:
            dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
                                   capture_output=True, text=True, timeout=5).stdout.strip()
            out.update(git_commit=commit, git_dirty=str(bool(dirty)).lower())
    except (OSError, subprocess.SubprocessError):
        pass
    return out


def lineage_tags(data_path: str, seed: int) -> dict[str, str]:
    fp, code = data_fingerprint(data_path), code_version()
    tags = {f"data.{k}": str(v) for k, v in fp.items()}
    tags.update({f"code.{k}": str(v) for k, v in code.items()})
    tags["seed"] = str(seed)
    return tags


# -------------------------------------------------------------------------------------------- plots
def plot_losses(history: list[dict]):
    import matplotlib
    import numpy as np
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4))
    epochs = [h["epoch"] for h in history]
    for key in ("d_loss", "g_loss", "cond_loss", "target_loss", "sup_loss", "wdist"):
        if history and key in history[-1]:
            ax.plot(epochs, [h.get(key, np.nan) for h in history], label=key, marker="." if len(epochs) < 30 else None)
    ax.set_xlabel("epoch"); ax.set_ylabel("loss"); ax.set_title("training losses"); ax.legend()
    fig.tight_layout()
    return fig


def plot_marginals(real, synthetic, max_categories: int = 12):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from augment.metrics import _as_float, _is_numeric
    cols = list(real.columns)
    ncols = 4
    nrows = max(1, -(-len(cols) // ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(4 * ncols, 3 * nrows), squeeze=False)
    for ax, col in zip(axes.flat, cols):
        if _is_numeric(real[col]):
            r, s = _as_float(real[col]), _as_float(synthetic[col])
            r, s = r[~np.isnan(r)], s[~np.isnan(s)]
            both = np.concatenate([r, s]) if r.size + s.size else np.zeros(1)
            bins = np.histogram_bin_edges(both, bins=30)
            ax.hist(r, bins=bins, alpha=0.5, density=True, label="real")
            ax.hist(s, bins=bins, alpha=0.5, density=True, label="synthetic")
        else:
            r = real[col].astype(object).where(real[col].notna(), "<missing>").astype(str).str.strip()
            s = synthetic[col].astype(object).where(synthetic[col].notna(), "<missing>").astype(str).str.strip()
            rf, sf = r.value_counts(normalize=True), s.value_counts(normalize=True)
            cats = list(rf.index[:max_categories])
            x = np.arange(len(cats))
            ax.bar(x - 0.2, [rf.get(c, 0.0) for c in cats], width=0.4, label="real")
            ax.bar(x + 0.2, [sf.get(c, 0.0) for c in cats], width=0.4, label="synthetic")
            ax.set_xticks(x, [c[:10] for c in cats], rotation=60, fontsize=6)
        ax.set_title(str(col), fontsize=9)
    for ax in list(axes.flat)[len(cols):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.suptitle("marginals: real vs synthetic")
    fig.tight_layout()
    return fig


def plot_associations(real, synthetic):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from augment.metrics import _association, _is_numeric
    numeric = {c: _is_numeric(real[c]) for c in real.columns}
    a, b = _association(real, numeric), _association(synthetic[list(real.columns)], numeric)
    fig, axes = plt.subplots(1, 3, figsize=(18, 6))
    for ax, mat, title, cmap, vmin in ((axes[0], a, "real", "viridis", 0), (axes[1], b, "synthetic", "viridis", 0),
                                       (axes[2], b - a, "synthetic - real", "coolwarm", -1)):
        im = ax.imshow(mat.to_numpy(), vmin=vmin, vmax=1, cmap=cmap)
        ax.set_xticks(range(len(mat)), [str(c)[:12] for c in mat.columns], rotation=90, fontsize=7)
        ax.set_yticks(range(len(mat)), [str(c)[:12] for c in mat.index], fontsize=7)
        ax.set_title(f"associations: {title}")
        fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------------------------------ the run
def _flat_params(model, args) -> dict[str, str]:
    params = {k: ("" if v is None else str(v)) for k, v in model.config.to_json().items()}
    params.update(kind=args.kind, data=str(args.data), missing_tokens=json.dumps(args.missing_token),
                  rows=str(model.training.get("rows")), columns=str(model.training.get("columns")))
    return params


def _history_metrics(history: list[dict]):
    from mlflow.entities import Metric
    now = int(time.time() * 1000)
    skip = {"epoch", "epochs"}
    return [Metric(key=k, value=float(v), timestamp=now, step=int(h["epoch"]))
            for h in history for k, v in h.items() if k not in skip and v is not None]


def quality(model, table, target: str | None, seed: int):
    """quality_report of the model against its training data (subsampled to REPORT_MAX_ROWS); for a
    time-series model the TimeGAN-protocol report of augment/ts_report.py (real/synthetic are then None)."""
    if model.kind == "timeseries":
        from augment.ts_report import timeseries_quality_report
        return None, None, timeseries_quality_report(model, table, seed=seed)
    from augment.metrics import quality_report
    real = table[model.encoder.schema.names]
    if len(real) > REPORT_MAX_ROWS:
        real = real.sample(REPORT_MAX_ROWS, random_state=seed).reset_index(drop=True)
    synthetic = model.sample(len(real), seed=seed)
    return real, synthetic, quality_report(real, synthetic, target=target, seed=seed)


def _plots(model, table, real, synthetic, seed: int) -> dict:
    """name -> figure factory (figures are made one at a time and closed after logging)."""
    plots = {"loss_curves": lambda: plot_losses(model.history)}
    if model.kind == "timeseries":
        from augment.ts_report import plot_series
        plots["series"] = lambda: plot_series(model, table, seed=seed)
    else:
        plots.update(marginals=lambda: plot_marginals(real, synthetic),
                     associations=lambda: plot_associations(real, synthetic))
    return plots


def log_training_run(model, table, args, gates: dict, info=None) -> dict:
    """Inside an active run: log everything about this fit and evaluate the gate. Returns
    {"run_id", "report", "figures", "gate" (GateResult), "lineage" (tags)}."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import mlflow
    from mlflow import MlflowClient

    from . import gate as gate_mod

    run = mlflow.active_run()
    client = MlflowClient()
    lineage = lineage_tags(args.data, args.seed)
    mlflow.set_tags({**lineage, "ganstream.kind": args.kind})
    mlflow.log_params(_flat_params(model, args))
    metrics = _history_metrics(model.history)
    for i in range(0, len(metrics), 1000):  # MLflow accepts at most 1000 metrics per batch
        client.log_batch(run.info.run_id, metrics=metrics[i:i + 1000])
    t0 = time.perf_counter()
    real, synthetic, report = quality(model, table, getattr(args, "target", None), args.seed)
    if info:
        what = (f"{report.get('windows_real', 0):,} training windows" if real is None else f"{len(real):,} training rows")
        info(f"quality report on {what}: {time.perf_counter() - t0:.1f}s")
    figs = gate_mod.figures(report)
    mlflow.log_metrics({**{k: float(v) for k, v in figs.items() if v is not None},
                        "train_seconds": float(model.training.get("seconds", 0.0))})
    mlflow.log_dict(report, "quality_report.json")
    for name, make in _plots(model, table, real, synthetic, args.seed).items():
        fig = make()
        mlflow.log_figure(fig, f"plots/{name}.png")
        plt.close(fig)
    result = gate_mod.evaluate(figs, gates)
    mlflow.set_tags({"gate": "passed" if result.passed else "failed", "gate.summary": result.summary()[:5000],
                     "gate.failures": "; ".join(result.failures)[:5000]})
    return {"run_id": run.info.run_id, "report": report, "figures": figs, "gate": result, "lineage": lineage}


def info_printer(args):
    def info(msg: str) -> None:
        if not getattr(args, "quiet", False):
            print(msg, file=sys.stderr, flush=True)
    return info


# ------------------------------------------------------------------------------- `train` end to end
class TrainTracking:
    """Created before the fit (validates --gate, resolves the URI, fails fast on an unreachable server),
    finished after it (run, plots, gate, optional registration)."""

    def __init__(self, args):
        from . import gate as gate_mod
        self.args = args
        self.info = info_printer(args)
        self.gates = gate_mod.parse_gates(getattr(args, "gate", None), getattr(args, "target", None),
                                          kind=getattr(args, "kind", "tabular"))
        self.uri = resolve_uri(getattr(args, "tracking_uri", None))
        if getattr(args, "quiet", False):
            import logging
            logging.getLogger("mlflow").setLevel(logging.WARNING)
        self.experiment = getattr(args, "experiment", None) or DEFAULT_EXPERIMENT
        with using(self.uri):  # probes reachability now, before minutes of training
            import mlflow
            mlflow.set_experiment(self.experiment)

    def finish(self, model, table, model_dir) -> int:
        from . import gate as gate_mod
        if getattr(model, "kind", None) == "partitioned":
            return self.finish_partitions(model, model_dir)
        args, t0 = self.args, time.perf_counter()
        result, run_id, _ = self._track_one(model, table, model_dir, args.register, f"train-{Path(str(args.data)).stem}")
        self.info(f"tracking added {time.perf_counter() - t0:.1f}s")
        if args.register and not result.passed:
            raise gate_mod.GateFailed(f"quality gate failed, '{args.register}' not registered, alias "
                                      f"'{args.promote}' unchanged: {'; '.join(result.failures)} "
                                      f"(run {run_id}; relax with --gate KEY<=VALUE or KEY=off)")
        return 0

    def finish_partitions(self, models, model_dir) -> int:
        """--per-partition: one run per partition value, each gated and (with --register NAME) registered as
        its own model NAME-VALUE (deploy/registry.py) exactly as a single fit is. A partition that fails the
        gate gets no version; the others are still registered; then exit 3 naming the failed partitions."""
        from . import gate as gate_mod
        from .registry import partition_model_names
        args, t0, col = self.args, time.perf_counter(), models.column
        names = partition_model_names(args.register, list(models.models)) if args.register else {}
        failed, registered = [], []
        for value in sorted(models.models):
            m = models.models[value]
            result, run_id, version = self._track_one(
                m, getattr(m, "stats_sample", None), Path(model_dir) / f"{col}={value}", names.get(value),
                f"train-{Path(str(args.data)).stem}-{col}={value}", {"partition.column": col, "partition.value": value})
            if version:
                registered.append(f"{col}={value} -> {names[value]} version {version}")
            elif not result.passed:
                failed.append(f"{col}={value} ({'; '.join(result.failures)}; run {run_id})")
        self.info(f"tracking added {time.perf_counter() - t0:.1f}s")
        if args.register and failed:
            raise gate_mod.GateFailed(f"quality gate failed for {len(failed)} of {len(models.models)} partitions, "
                                      f"not registered, their alias '{args.promote}' unchanged: {', '.join(failed)}; "
                                      f"registered: {', '.join(registered) or 'none'} "
                                      f"(relax with --gate KEY<=VALUE or KEY=off)")
        return 0

    def _track_one(self, model, table, model_dir, register_name: str | None, run_name: str, tags=None):
        """One MLflow run: log the fit, gate it, and register it as `register_name` when it passes.
        Returns (gate result, run id, registered version or None)."""
        import mlflow

        args = self.args
        registered = None
        with using(self.uri):
            mlflow.set_experiment(self.experiment)
            with mlflow.start_run(run_name=run_name) as run:
                if tags:
                    mlflow.set_tags(tags)
                out = log_training_run(model, table, args, self.gates, info=self.info)
                result = out["gate"]
                what = f" ({', '.join(f'{k}={v}' for k, v in tags.items())})" if tags else ""
                self.info(f"tracking: run {run.info.run_id}{what} in experiment '{self.experiment}' at {self.uri}")
                self.info(f"gate {'passed' if result.passed else 'FAILED'}: {result.summary()}")
                if register_name and result.passed:
                    from . import registry
                    t1 = time.perf_counter()
                    info = registry.log_generator(model_dir)
                    version_tags = {**out["lineage"], **(tags or {}), "gate": "passed",
                                    "gate.summary": result.summary()[:5000], "run_id": run.info.run_id,
                                    **{f"gate.{k}": f"{v:.6g}" for k, v in out["figures"].items() if v is not None}}
                    registered = registry.register(info, register_name, args.promote, version_tags, info=self.info)
                    mlflow.set_tag("registered_version", f"{register_name}/{registered}")
                    self.info(f"registering + verifying took {time.perf_counter() - t1:.1f}s")
        return result, run.info.run_id, registered
