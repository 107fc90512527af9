"""The generator a stream uses, and which one it is (name + version, recorded in every output file).

A stream started from `models:/NAME@ALIAS` follows the alias: `ModelHandle.current()` asks the registry
which version the alias points to at most every `swap_check_s` seconds and, when it moved, loads the new
version and switches to it between two batches (the stream never stops). Beam's own model-update side
input (RunInference's `model_metadata_pcoll`) does not run on the in-process runners (../shared/STACK.md),
and polling from inside the DoFn works on every runner. A bounded job pins the version resolved at start,
so that its shards (and a re-run after a kill) all come from one version.
"""

from __future__ import annotations

import sys
import time

from ganstream.deploy.models import ModelId, alias_version, resolve
from ganstream.trainers.kinds import load_model


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
        if self.follow:
            self._checked = time.monotonic()
            self._maybe_swap()
            if self.model is not None:
                return
        self.model = load_model(resolve(self.id.pinned, self.tracking_uri).path)
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
        try:
            from ganstream.deploy.mlflow_env import resolve_uri
            uri = resolve_uri(self.tracking_uri)
            version = alias_version(uri, self.id.name, self.id.alias)
            if version == self.version and self.model is not None:
                return
            model = load_model(resolve(f"models:/{self.id.name}/{version}", uri).path)
        except Exception as e:  # a registry hiccup must not stop the stream: keep the current version
            self.log(f"stream: alias {self.id.ref} not checked ({type(e).__name__}: {str(e)[:160]}); "
                     f"staying on version {self.version}")
            return
        if version != self.version:
            self.log(f"stream: {self.id.ref} moved from version {self.version} to {version}; switched")
        self.model, self.version = model, version
