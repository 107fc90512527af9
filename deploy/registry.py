"""Registering a fitted generator in the MLflow model registry, and reading the registry back.

Order of a registration (nothing half-registered): the model directory is logged to the run as a pyfunc
model first; only then is a registry version created from it; the version is loaded back through
`mlflow.pyfunc.load_model("models:/NAME/VERSION")` and asked for a few rows; only if that works is the
alias (default `champion`) moved to it. If anything fails after the version exists, the version is
deleted again (best effort) and the alias never moved. The version carries the lineage and gate figures
as tags.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
import time
from pathlib import Path

from ganstream.trainers.errors import ModelError

from ganstream.deploy.mlflow_env import TrackingError
from ganstream.deploy.models import INCOMPLETE_TAG

PIP_REQUIREMENTS_PACKAGES = ("mlflow", "torch", "numpy", "pandas", "safetensors", "scikit-learn", "scipy", "pyarrow")


def pip_requirements() -> list[str]:
    """Explicit pins from this environment (MLflow's inference would take ~12 s and drop torch's +cpu)."""
    from importlib.metadata import PackageNotFoundError, version
    out = []
    for pkg in PIP_REQUIREMENTS_PACKAGES:
        try:
            v = version(pkg).split("+")[0]
        except PackageNotFoundError:
            continue
        out.append(f"{pkg}=={v}")
    return out


def log_generator(model_dir: str | Path, name: str = "generator"):
    """Log `model_dir` to the active run as a pyfunc model (models-from-code, no pickle). Returns ModelInfo."""
    import mlflow

    import warnings

    from ganstream.deploy.pyfunc_model import ARTIFACT_KEY, code_paths, entry_script, signature
    with tempfile.TemporaryDirectory(prefix="ganstream-pyfunc-") as tmp, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*input example was not provided.*")  # free-form input by design
        return mlflow.pyfunc.log_model(
            name=name, python_model=str(entry_script(tmp)), artifacts={ARTIFACT_KEY: str(Path(model_dir).resolve())},
            code_paths=code_paths(tmp), pip_requirements=pip_requirements(), signature=signature())


def _wait_ready(client, name: str, version: str, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while True:
        mv = client.get_model_version(name, version)
        if mv.status == "READY":
            return mv
        if mv.status == "FAILED_REGISTRATION" or time.monotonic() > deadline:
            raise TrackingError(f"model version {name}/{version} did not become ready (status {mv.status})")
        time.sleep(0.2)


class RegistrationIncomplete(TrackingError):
    """The registry stopped answering part-way through a registration; the message says what is left."""


def register(model_info, name: str, alias: str | None, tags: dict[str, str], info=print) -> str:
    """Create a registry version from a logged model, verify it loads and samples, then move `alias`.

    Atomic as far as a user can see: the version is created tagged `ganstream.incomplete`, the tag is removed
    only after the version has loaded and sampled, and only then does the alias move. A server that stops
    answering part-way (its create request may have landed even though no answer came back) can therefore
    leave at most a tagged version that no alias points to and that `ganstream.load` refuses; a failure the
    server still answers deletes the version. The message says which of the two happened."""
    import mlflow
    import pandas as pd
    from mlflow import MlflowClient

    client = MlflowClient()
    try:
        with contextlib.redirect_stderr(io.StringIO()):  # MLflow prints "Successfully registered ..." itself
            mv = mlflow.register_model(model_info.model_uri, name, tags={**tags, INCOMPLETE_TAG: "true"})
    except Exception as e:
        raise RegistrationIncomplete(
            f"the registry stopped answering while creating a version of '{name}' ({_first_line(e)}): if the "
            f"server created one, it is tagged {INCOMPLETE_TAG}, no alias points to it and ganstream refuses "
            f"to load it; alias '{alias}' unchanged") from None
    version = str(mv.version)
    try:
        _wait_ready(client, name, version)
        loaded = mlflow.pyfunc.load_model(f"models:/{name}/{version}")
        probe = loaded.predict(pd.DataFrame({"rows": [5], "seed": [0]}))
        got = probe["series_id"].nunique() if "series_id" in probe.columns else len(probe)  # sequences or rows
        if got != 5:
            raise ModelError(f"registered version {name}/{version} returned {got} rows/sequences for 5")
        client.delete_model_version_tag(name, version, INCOMPLETE_TAG)
    except BaseException as e:
        try:
            client.delete_model_version(name, version)
        except Exception:
            raise RegistrationIncomplete(
                f"registering '{name}' failed ({_first_line(e)}) and version {version} could not be deleted: it "
                f"stays tagged {INCOMPLETE_TAG}, no alias points to it and ganstream refuses to load it; alias "
                f"'{alias}' unchanged") from None
        raise
    if alias:
        try:
            client.set_registered_model_alias(name, alias, version)
        except Exception as e:
            raise RegistrationIncomplete(
                f"version {version} of '{name}' is registered and verified, but alias '{alias}' could not be moved "
                f"to it ({_first_line(e)}): the alias still points where it did") from None
    info(f"registered {name} version {version}" + (f", alias '{alias}' -> {version}" if alias else ""))
    return version


def _first_line(e: BaseException) -> str:
    text = str(getattr(e, "message", "") or e).strip()
    return (text.splitlines()[0][:200] if text else type(e).__name__)


def partition_model_name(name: str, value: str) -> str:
    """The registered model of one partition of `train --per-partition COL --register NAME`: NAME-VALUE, with
    every run of characters other than letters, digits, '_', '.' and '-' in VALUE replaced by '_'."""
    import re
    return f"{name}-{re.sub(r'[^A-Za-z0-9_.-]+', '_', value) or '_'}"


def partition_model_names(name: str, values: list[str]) -> dict[str, str]:
    """value -> registered model name; two values that would share a name are refused (ConfigError)."""
    from ganstream.trainers.errors import ConfigError
    names = {v: partition_model_name(name, v) for v in values}
    seen: dict[str, str] = {}
    for v, n in names.items():
        if n in seen:
            raise ConfigError(f"partition values {seen[n]!r} and {v!r} would both be registered as '{n}'")
        seen[n] = v
    return names


# ------------------------------------------------------------------------------------------ reading
def _client(uri: str):
    from mlflow import MlflowClient
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def alias_version(uri: str, name: str, alias: str) -> tuple[str, dict[str, str]] | None:
    """(version, tags) of NAME@ALIAS — the tags hold its lineage (data.sha256, ...) — or None when the
    model or the alias does not exist yet. Used by `ganstream run` to skip a fit on unchanged data."""
    from mlflow.exceptions import MlflowException
    client = _client(uri)
    try:
        mv = client.get_model_version_by_alias(name, alias)
    except MlflowException as e:
        if getattr(e, "error_code", "") in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
            return None
        raise
    return str(mv.version), dict(mv.tags or {})


def _fmt_time(ms) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ms / 1000)) if ms else "?"


def list_models(uri: str) -> str:
    client = _client(uri)
    models = client.search_registered_models()
    if not models:
        return f"no registered models at {uri}"
    lines = [f"{'NAME':<24} {'LATEST':>6}  ALIASES"]
    for m in sorted(models, key=lambda m: m.name):
        versions = client.search_model_versions(f"name='{m.name}'")
        latest = max((int(v.version) for v in versions), default=0)
        aliases = ", ".join(f"{a}->{v}" for a, v in sorted((m.aliases or {}).items())) or "-"
        lines.append(f"{m.name:<24} {latest:>6}  {aliases}")
    return "\n".join(lines)


METRIC_KEYS = ("detection_auc", "marginal_mean_distance", "association_distance", "utility_ratio", "dcr_ratio",
               "exact_copies", "exact_copy_rate", "train_seconds")


def show_model(uri: str, name: str) -> str:
    from mlflow.exceptions import MlflowException
    client = _client(uri)
    try:
        m = client.get_registered_model(name)
    except MlflowException:
        raise ModelError(f"no registered model '{name}' at {uri} (see `ganstream models list`)") from None
    by_version: dict[str, list[str]] = {}
    for a, v in (m.aliases or {}).items():
        by_version.setdefault(str(v), []).append(a)
    lines = [f"model {name} ({uri})"]
    versions = sorted(client.search_model_versions(f"name='{name}'"), key=lambda v: -int(v.version))
    for v in versions:
        aliases = ", ".join(sorted(by_version.get(str(v.version), []))) or "-"
        lines.append(f"\nversion {v.version}  aliases: {aliases}  status: {v.status}  created: "
                     f"{_fmt_time(v.creation_timestamp)}  run: {v.run_id}")
        metrics = {}
        if v.run_id:
            try:
                metrics = client.get_run(v.run_id).data.metrics
            except MlflowException:
                pass
        shown = [f"{k}={metrics[k]:.4g}" for k in METRIC_KEYS if k in metrics]
        if shown:
            lines.append("  metrics: " + "  ".join(shown))
        tags = v.tags or {}
        for prefix, label in (("data.", "data"), ("code.", "code")):
            items = [f"{k[len(prefix):]}={val}" for k, val in sorted(tags.items()) if k.startswith(prefix)]
            if items:
                lines.append(f"  {label}: " + "  ".join(items))
        if "seed" in tags:
            lines.append(f"  seed: {tags['seed']}")
        if "gate.summary" in tags:
            lines.append(f"  gate: {tags.get('gate', '?')}  ({tags['gate.summary']})")
    return "\n".join(lines)
