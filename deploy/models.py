"""The one way a model reference becomes a fitted model: `load(ref)`. Everything that takes a MODEL (the command
line, the stream, the RL env, the MLflow pyfunc, `ganstream.load`) goes through `resolve`.

A reference is
* a model directory written by `train` / `save` (`model.json` + `*.safetensors`): used as it is, no MLflow;
* `models:/NAME@ALIAS` or `models:/NAME/VERSION`: the registry is asked once which version that is (a clear
  ModelError names an unknown model, alias or version and lists the known ones); the version's files are
  downloaded once into the cache (`$GANSTREAM_CACHE_DIR`, default `~/.cache/ganstream/models`), keyed by
  tracking URI + NAME + VERSION: versions are immutable, so a moving alias is looked up anew every time while a
  version's files are fetched once;
* `runs:/RUN_ID/PATH`: the run artifact PATH (a logged pyfunc generator, or a plain model directory).

`resolve` also names what it found (`ModelId`: the reference as given, a name, a version, and a pinned
reference that never moves), which the stream records in every file it writes. The tracking URI is the
`tracking_uri` argument, else $MLFLOW_TRACKING_URI, else MLflow's default.

It lives in deploy/ (not augment/) because the pyfunc, which is deploy's, must load through it too.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ganstream.trainers.errors import ModelError
from ganstream.trainers.kinds import load_model
from ganstream.trainers.persistence import META_FILE

# A registry version whose registration did not finish (deploy/registry.register): never loaded, never aliased.
INCOMPLETE_TAG = "ganstream.incomplete"

SCHEMES = ("models:/", "runs:/")
ALIAS_RE = re.compile(r"models:/([^/@]+)@([^/@]+)")
VERSION_RE = re.compile(r"models:/([^/@]+)/([0-9]+)")
RUN_RE = re.compile(r"runs:/([^/]+)/?(.*)")


@dataclass(frozen=True)
class ModelId:
    """Where a model comes from: `ref` as given, `pinned` a reference that never moves."""
    ref: str
    name: str
    version: str
    pinned: str
    alias: str | None = None  # set when `ref` is models:/NAME@ALIAS (a stream may follow it)
    tracking_uri: str | None = None  # the store an MLflow reference was resolved in


@dataclass(frozen=True)
class ResolvedModel:
    path: Path  # a local model directory
    id: ModelId


def is_mlflow_uri(ref) -> bool:
    return str(ref).startswith(SCHEMES)


def cache_root() -> Path:
    return Path(os.environ.get("GANSTREAM_CACHE_DIR") or Path.home() / ".cache" / "ganstream" / "models")


def local_version(model_dir: str | Path) -> str:
    """A model directory has no registry version: name it by the hash of its metadata (stable, unique)."""
    meta = Path(model_dir) / META_FILE
    return "local-" + hashlib.sha256(meta.read_bytes()).hexdigest()[:12]


def resolve(ref: str | os.PathLike, tracking_uri: str | None = None) -> ResolvedModel:
    """A local model directory for `ref`, and what it is. Unknown models, aliases, versions and directories
    raise ModelError; an unreachable tracking server raises TrackingError (exit 4)."""
    ref = str(ref)
    if not is_mlflow_uri(ref):
        p = Path(ref)
        if not (p / META_FILE).is_file():
            what = "no such directory" if not p.exists() else f"no {META_FILE}"
            raise ModelError(f"{ref}: not a ganstream model directory ({what})")
        return ResolvedModel(p, ModelId(ref, p.resolve().name, local_version(p), str(p.resolve())))
    from ganstream.deploy.mlflow_env import resolve_uri, using
    uri = resolve_uri(tracking_uri)
    with using(uri):
        if ref.startswith("models:/"):
            return _resolve_registered(ref, uri)
        return _resolve_run(ref, uri)


def load(ref: str | os.PathLike, tracking_uri: str | None = None):
    """A fitted model (TabularGAN, TimeSeriesGAN, ...) from a model directory or an MLflow model URI:
    `ganstream.load("runs/adult")`, `ganstream.load("models:/adult@champion")`."""
    return load_model(resolve(ref, tracking_uri).path)


def load_with_id(ref: str | os.PathLike, tracking_uri: str | None = None):
    """(fitted model, ModelId): what a stream needs to write the version into its files."""
    resolved = resolve(ref, tracking_uri)
    return load_model(resolved.path), resolved.id


def alias_version(uri: str, name: str, alias: str) -> str:
    """The version an alias points to now (one cheap registry call)."""
    from mlflow import MlflowClient
    return str(MlflowClient(tracking_uri=uri, registry_uri=uri).get_model_version_by_alias(name, alias).version)


# ------------------------------------------------------------------------------------------ MLflow
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


def _download(artifact_uri: str, dest: Path) -> Path:
    import mlflow
    found = _find_model_dir(dest) if dest.is_dir() else None
    if found:
        return found
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
    return _find_model_dir(dest)


def _resolve_registered(ref: str, uri: str) -> ResolvedModel:
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    m = ALIAS_RE.fullmatch(ref) or VERSION_RE.fullmatch(ref)
    if not m:
        raise ModelError(f"{ref}: expected models:/NAME@ALIAS or models:/NAME/VERSION")
    name, what = m.group(1), m.group(2)
    alias = what if "@" in ref else None
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    try:
        model = client.get_registered_model(name)
    except MlflowException:
        known = sorted(rm.name for rm in client.search_registered_models())
        raise ModelError(f"{ref}: no registered model '{name}' at {uri} "
                         f"(known: {', '.join(known) or 'none'})") from None
    if alias:
        try:
            mv = client.get_model_version_by_alias(name, alias)
        except MlflowException:
            aliases = ", ".join(f"{a}->{v}" for a, v in sorted((model.aliases or {}).items())) or "none"
            raise ModelError(f"{ref}: model '{name}' has no alias '{alias}' (aliases: {aliases})") from None
    else:
        try:
            mv = client.get_model_version(name, what)
        except MlflowException:
            versions = sorted(int(v.version) for v in client.search_model_versions(f"name='{name}'"))
            raise ModelError(f"{ref}: model '{name}' has no version {what} "
                             f"(versions: {', '.join(map(str, versions)) or 'none'})") from None
    version = str(mv.version)
    if (mv.tags or {}).get(INCOMPLETE_TAG):
        raise ModelError(f"{ref}: version {version} of '{name}' is incomplete (its registration did not finish, tag "
                         f"{INCOMPLETE_TAG}): register the model again")
    pinned = f"models:/{name}/{version}"
    path = _download(pinned, _cache_dir(uri, "models", name, version))
    return ResolvedModel(path, ModelId(ref, name, version, pinned, alias, uri))


def _resolve_run(ref: str, uri: str) -> ResolvedModel:
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    m = RUN_RE.fullmatch(ref)
    if not m:
        raise ModelError(f"{ref}: expected runs:/RUN_ID/PATH")
    run_id, path = m.group(1), m.group(2).strip("/")
    try:
        MlflowClient(tracking_uri=uri).get_run(run_id)
    except MlflowException:
        raise ModelError(f"{ref}: no run '{run_id}' at {uri}") from None
    try:
        local = _download(ref, _cache_dir(uri, "runs", run_id, path or "_root"))
    except MlflowException as e:
        raise ModelError(f"{ref}: cannot download artifacts ({str(e).splitlines()[0][:200]})") from None
    return ResolvedModel(local, ModelId(ref, path or run_id, f"run-{run_id}", ref, None, uri))
