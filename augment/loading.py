"""Where a MODEL argument points: a local model directory, or a model in MLflow.

`resolve_model(ref)` returns a local directory holding `model.json` + `*.safetensors`:
* a directory: returned as is (no MLflow import);
* `models:/NAME@ALIAS`, `models:/NAME/VERSION`: the registry version is looked up first (a clear
  ModelError names an unknown model, alias or version and lists the known ones), then its artifacts are
  downloaded once into the cache (`$GANSTREAM_CACHE_DIR`, default `~/.cache/ganstream/models`), keyed
  by tracking URI + NAME + VERSION (versions are immutable, so an alias that moves is looked up anew
  each time while the files of a version are fetched once);
* `runs:/RUN_ID/PATH`: the run artifact PATH (a logged pyfunc generator, or a plain model directory).

The tracking URI is the `tracking_uri` argument, else $MLFLOW_TRACKING_URI, else MLflow's default.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from pathlib import Path

from trainers.errors import ModelError
from trainers.persistence import META_FILE

SCHEMES = ("models:/", "runs:/")


def is_mlflow_uri(ref: str) -> bool:
    return str(ref).startswith(SCHEMES)


def cache_root() -> Path:
    return Path(os.environ.get("GANSTREAM_CACHE_DIR") or Path.home() / ".cache" / "ganstream" / "models")


def resolve_model(ref: str | os.PathLike, tracking_uri: str | None = None) -> str:
    ref = str(ref)
    if not is_mlflow_uri(ref):
        return ref
    from deploy.tracking import resolve_uri, using
    uri = resolve_uri(tracking_uri)
    with using(uri):
        if ref.startswith("models:/"):
            return _resolve_registered(ref, uri)
        return _resolve_run(ref, uri)


def _cache_dir(uri: str, *parts: str) -> Path:
    key = hashlib.sha256(uri.encode()).hexdigest()[:12]
    safe = [re.sub(r"[^A-Za-z0-9_.-]", "_", p) for p in parts]
    return cache_root().joinpath(key, *safe)


def _find_model_dir(root: Path) -> Path | None:
    """The ganstream model directory inside a downloaded artifact tree (pyfunc: artifacts/<dir>)."""
    if (root / META_FILE).is_file():
        return root
    hits = sorted(p.parent for p in root.rglob(META_FILE) if any(p.parent.glob("*.safetensors")))
    return hits[0] if hits else None


def _download(artifact_uri: str, dest: Path) -> str:
    import mlflow
    found = _find_model_dir(dest) if dest.is_dir() else None
    if found:
        return str(found)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        mlflow.artifacts.download_artifacts(artifact_uri=artifact_uri, dst_path=str(tmp))
        if _find_model_dir(tmp) is None:
            raise ModelError(f"{artifact_uri}: holds no ganstream model (no {META_FILE} with weights)")
        shutil.rmtree(dest, ignore_errors=True)
        os.replace(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return str(_find_model_dir(dest))


def _resolve_registered(ref: str, uri: str) -> str:
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    body = ref[len("models:/"):]
    m = re.fullmatch(r"([^/@]+)@([^/@]+)", body) or re.fullmatch(r"([^/@]+)/([0-9]+)", body)
    if not m:
        raise ModelError(f"{ref}: expected models:/NAME@ALIAS or models:/NAME/VERSION")
    name, what = m.group(1), m.group(2)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    try:
        model = client.get_registered_model(name)
    except MlflowException:
        known = sorted(rm.name for rm in client.search_registered_models())
        raise ModelError(f"{ref}: no registered model '{name}' at {uri} "
                         f"(known: {', '.join(known) or 'none'})") from None
    if "@" in body:
        try:
            mv = client.get_model_version_by_alias(name, what)
        except MlflowException:
            aliases = ", ".join(f"{a}->{v}" for a, v in sorted((model.aliases or {}).items())) or "none"
            raise ModelError(f"{ref}: model '{name}' has no alias '{what}' (aliases: {aliases})") from None
    else:
        try:
            mv = client.get_model_version(name, what)
        except MlflowException:
            versions = sorted(int(v.version) for v in client.search_model_versions(f"name='{name}'"))
            raise ModelError(f"{ref}: model '{name}' has no version {what} "
                             f"(versions: {', '.join(map(str, versions)) or 'none'})") from None
    return _download(f"models:/{name}/{mv.version}", _cache_dir(uri, "models", name, str(mv.version)))


def _resolve_run(ref: str, uri: str) -> str:
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    m = re.fullmatch(r"runs:/([^/]+)/?(.*)", ref)
    if not m:
        raise ModelError(f"{ref}: expected runs:/RUN_ID/PATH")
    run_id, path = m.group(1), m.group(2).strip("/")
    try:
        MlflowClient(tracking_uri=uri).get_run(run_id)
    except MlflowException:
        raise ModelError(f"{ref}: no run '{run_id}' at {uri}") from None
    try:
        return _download(ref, _cache_dir(uri, "runs", run_id, path or "_root"))
    except MlflowException as e:
        raise ModelError(f"{ref}: cannot download artifacts ({str(e).splitlines()[0][:200]})") from None
