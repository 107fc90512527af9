"""The generator a stream uses, and which one it is (name + version, recorded in every output file).

A stream started from `models:/NAME@ALIAS` follows the alias: a background thread asks the registry which
version the alias points to every `swap_check_s` seconds and, when it moved, loads the new version;
`ModelHandle.current()` switches to it between two batches. The check runs off the write path because a
registry that hangs (a frozen server answers nothing until MLflow's HTTP timeout) must not hold up the
windows: they keep coming with the current version, and the stream says once that the registry is away and
once that it is back. Beam's own model-update side
input (RunInference's `model_metadata_pcoll`) does not run on the in-process runners (../shared/STACK.md),
and polling from inside the DoFn works on every runner. A bounded job pins the version resolved at start,
so that its shards (and a re-run after a kill) all come from one version.
"""

from __future__ import annotations

import sys
import threading
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
        self._lock = threading.Lock()
        self._pending = None  # (model, version) the checker loaded, taken by current()
        self._away_since: float | None = None
        self._checker: threading.Thread | None = None

    def load(self) -> None:
        """The pinned version; a follower takes the alias's version now (a worker that starts late must not
        go back to the version the stream started with), then checks it in the background."""
        if self.follow:
            self._check()
            self._take_pending()
        if self.model is None:
            self.model = load_model(resolve(self.id.pinned, self.tracking_uri).path)
        if self.follow and self._checker is None:
            self._checker = threading.Thread(target=self._check_forever, name="ganstream-alias-check", daemon=True)
            self._checker.start()

    def current(self):
        """(model, version) to use for the next batch: never waits for the registry."""
        if self.model is None:
            self.load()
        self._take_pending()
        return self.model, self.version

    def _take_pending(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, None
        if pending is None:
            return
        model, version = pending
        if self.model is not None and version != self.version:
            self.log(f"stream: {self.id.ref} moved from version {self.version} to {version}; switched")
        self.model, self.version = model, version

    def _check_forever(self) -> None:
        while True:
            time.sleep(self.swap_check_s)
            self._check()

    def _check(self) -> None:
        """One look at the alias; a new version is loaded here and handed over through `_pending`."""
        from ganstream.deploy.mlflow_env import resolve_uri
        try:
            uri = resolve_uri(self.tracking_uri)
            version = alias_version(uri, self.id.name, self.id.alias)
            with self._lock:
                known = self._pending[1] if self._pending else self.version
            model = None
            if version != known or self.model is None:
                model = load_model(resolve(f"models:/{self.id.name}/{version}", uri).path)
        except Exception as e:  # a registry hiccup must not stop the stream: keep the current version
            if self._away_since is None:
                self._away_since = time.monotonic()
                self.log(f"stream: the registry does not answer for {self.id.ref} ({type(e).__name__}: "
                         f"{str(e).strip().splitlines()[0][:160] if str(e).strip() else ''}); writing with version "
                         f"{self.version} until it does")
            return
        if self._away_since is not None:
            self.log(f"stream: the registry answers again after {time.monotonic() - self._away_since:.0f}s; "
                     f"following {self.id.ref}")
            self._away_since = None
        if model is not None:
            with self._lock:
                self._pending = (model, version)
