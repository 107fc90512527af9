"""The generator a stream uses, and which one it is (name + version, recorded in every output file).

A stream started from `models:/NAME@ALIAS` follows the alias: `ModelHandle.current()` asks the registry
which version the alias points to at most every `swap_check_s` seconds and, when it moved, loads the new
version and switches to it between two batches (the stream never stops). Beam's own model-update side
input (RunInference's `model_metadata_pcoll`) does not run on the in-process runners (../shared/STACK.md),
and polling from inside the DoFn works on every runner. A bounded job pins the version resolved at start,
so that its shards (and a re-run after a kill) all come from one version.
"""

from __future__ import annotations

import hashlib
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from trainers.errors import ModelError

ALIAS_RE = re.compile(r"models:/([^/@]+)@([^/@]+)")
VERSION_RE = re.compile(r"models:/([^/@]+)/([0-9]+)")
RUN_RE = re.compile(r"runs:/([^/]+)/?(.*)")


@dataclass(frozen=True)
class ModelId:
    """Where a stream's model comes from: `ref` as given, `pinned` a reference that never moves."""
    ref: str
    name: str
    version: str
    pinned: str
    alias: str | None = None  # set when `ref` is models:/NAME@ALIAS (the stream may follow it)


def _client(uri: str):
    from mlflow import MlflowClient
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def alias_version(uri: str, name: str, alias: str) -> str:
    """The version an alias points to now (one cheap registry call)."""
    return str(_client(uri).get_model_version_by_alias(name, alias).version)


def local_version(model_dir: str | Path) -> str:
    """A model directory has no registry version: name it by the hash of its metadata (stable, unique)."""
    meta = Path(model_dir) / "model.json"
    return "local-" + hashlib.sha256(meta.read_bytes()).hexdigest()[:12]


def identify(ref: str, tracking_uri: str | None) -> tuple[ModelId, str]:
    """(ModelId, local model directory) for MODEL; unknown models, aliases or versions raise ModelError."""
    from augment.loading import is_mlflow_uri, resolve_model
    ref = str(ref)
    if not is_mlflow_uri(ref):
        local = resolve_model(ref)
        if not (Path(local) / "model.json").is_file():
            raise ModelError(f"{ref}: not a model directory (no model.json)")
        return ModelId(ref, Path(local).resolve().name, local_version(local), str(Path(local).resolve())), local
    from deploy.tracking import resolve_uri
    uri = resolve_uri(tracking_uri)
    m = ALIAS_RE.fullmatch(ref)
    if m:
        resolve_model(ref, uri)  # the registry's own checks and readable errors (unknown model / alias)
        name, alias = m.group(1), m.group(2)
        version = alias_version(uri, name, alias)
        pinned = f"models:/{name}/{version}"
        return ModelId(ref, name, version, pinned, alias), resolve_model(pinned, uri)
    m = VERSION_RE.fullmatch(ref)
    if m:
        return ModelId(ref, m.group(1), m.group(2), ref), resolve_model(ref, uri)
    m = RUN_RE.fullmatch(ref)
    local = resolve_model(ref, uri)
    run_id, path = (m.group(1), m.group(2)) if m else (ref, "")
    return ModelId(ref, path or run_id, f"run-{run_id}", ref), local


def load_any(model_dir: str):
    """load_model for every kind the checkout has (importing a model module registers its kind)."""
    import importlib
    for module in ("trainers.tabular_gan", "trainers.timeseries_gan"):
        try:
            importlib.import_module(module)
        except ImportError:
            pass
    from trainers.base import load_model
    return load_model(model_dir)


class ModelHandle:
    """Loads the model once (call from DoFn.setup) and, for an alias, follows it (see module docstring)."""

    def __init__(self, model_id: ModelId, tracking_uri: str | None, follow_alias: bool, swap_check_s: float,
                 log=None):
        self.id = model_id
        self.tracking_uri = tracking_uri
        self.follow = follow_alias and model_id.alias is not None
        self.swap_check_s = swap_check_s
        self.log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
        self.model = None
        self.version = model_id.version
        self._checked = 0.0

    def load(self) -> None:
        """The pinned version; a follower takes the alias's version now (a worker that starts late must not
        go back to the version the stream started with)."""
        from augment.loading import resolve_model
        if self.follow:
            self._checked = time.monotonic()
            self._maybe_swap()
            if self.model is not None:
                return
        self.model = load_any(resolve_model(self.id.pinned, self.tracking_uri))
        self._checked = time.monotonic()

    def current(self):
        """(model, version) to use for the next batch; looks the alias up when the check interval passed."""
        if self.model is None:
            self.load()
        if self.follow and time.monotonic() - self._checked >= self.swap_check_s:
            self._checked = time.monotonic()
            self._maybe_swap()
        return self.model, self.version

    def _maybe_swap(self) -> None:
        from augment.loading import resolve_model
        try:
            from deploy.tracking import resolve_uri
            uri = resolve_uri(self.tracking_uri)
            version = alias_version(uri, self.id.name, self.id.alias)
            if version == self.version and self.model is not None:
                return
            model = load_any(resolve_model(f"models:/{self.id.name}/{version}", uri))
        except Exception as e:  # a registry hiccup must not stop the stream: keep the current version
            self.log(f"stream: alias {self.id.ref} not checked ({type(e).__name__}: {str(e)[:160]}); "
                     f"staying on version {self.version}")
            return
        if version != self.version:
            self.log(f"stream: {self.id.ref} moved from version {self.version} to {version}; switched")
        self.model, self.version = model, version
