"""How a fit runs: in this process (`local`) or on Ray Train (`ray`), and the options of each. Importing this
module imports neither torch nor Ray: the command line builds these before anything heavy is loaded.

`auto` (the default) picks `local` for one worker with no Ray address and no per-partition fit: the same
training step as on Ray, without a cluster's start-up (a 2-epoch fit of a 200-row CSV took 72 s wall through
Ray Train for 6 s of CPU, 1.3 s in-process). It picks `ray` for more workers, a Ray address, `per_partition`,
or a Ray-only option (object store, worker cache): what only Ray can serve.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from ganstream.trainers.backends.storage import is_remote
from ganstream.trainers.errors import ConfigError

MIN_OBJECT_STORE_MB = 75  # Ray refuses a smaller object store (ray_constants.OBJECT_STORE_MINIMUM_MEMORY_BYTES)
CACHE_MB = 256.0  # default memory budget per Ray worker for its encoded shard (ray_tabular_worker.shard_cache_rows)
MAX_FAILURES = 2  # Ray worker-group restarts from the last checkpoint before the fit fails
MATERIALIZE_MB = 64.0  # Ray: DATA up to this size on disk is read once into the object store (see FitOptions)


class Backend(StrEnum):
    AUTO = "auto"
    LOCAL = "local"
    RAY = "ray"


@dataclass
class FitOptions:
    """Where and how a fit runs (not what is learnt: that is the model's config).

    backend ("auto"): "local" (this process), "ray" (Ray Train) or "auto" (see the module docstring).
    workers (1): Ray Train workers (data-parallel, one torch thread each).
    ray_address (None): join this Ray cluster; None starts a local one for the fit and stops it after.
    checkpoint_dir (None): where checkpoints go; None: MODEL_DIR.checkpoints beside the model. On Ray also
        s3://BUCKET/PREFIX (backends/storage.py).
    resume (False): continue the fit whose checkpoints are in checkpoint_dir.
    keep_checkpoints (False): leave this fit's checkpoints in place after it succeeded and its model was written
        (for a later --resume that extends it); by default they are removed then: they are only a way back into
        an interrupted fit, and a small table's fit left ~140 MB of them behind.
    per_partition (None): fit one model per value of this partition column (Ray only).
    worker_cache_mb (None -> 256): memory per Ray worker to keep its encoded shard after the first epoch.
    object_store_mb (None): size of the local Ray cluster's object store (None: Ray's own sizing).
    materialize_mb (64): Ray, tabular: DATA of at most this many MB on disk is read once into Ray's object store
        and the workers train from there; larger DATA streams from its files at every epoch, never whole in one
        process (0: always stream). Why: each streamed epoch restarts Ray Data's read tasks (~15 s on a 2-core
        machine for any size) and the statistics pass reads DATA once more (~8 s); for small DATA that was most
        of the fit.
    run_name ("ganstream"): the checkpoint sub-directory of this fit.
    max_failures (2), max_steps_per_epoch (None), pid_dir (None): Ray recovery, benchmarks, fault tests.
    """

    backend: Backend = Backend.AUTO
    workers: int = 1
    ray_address: str | None = None
    checkpoint_dir: str | None = None
    resume: bool = False
    keep_checkpoints: bool = False
    per_partition: str | None = None
    worker_cache_mb: float | None = None
    object_store_mb: float | None = None
    materialize_mb: float = MATERIALIZE_MB
    run_name: str = "ganstream"
    max_failures: int = MAX_FAILURES
    max_steps_per_epoch: int | None = None
    pid_dir: str | None = None

    @property
    def cache_mb(self) -> float:
        return CACHE_MB if self.worker_cache_mb is None else float(self.worker_cache_mb)

    def validate(self, kind: str = "tabular") -> "FitOptions":
        """Option combinations that cannot work, as one-line ConfigErrors, before anything is read or written."""
        try:
            self.backend = Backend(self.backend)
        except ValueError:
            raise ConfigError(f"--backend must be one of {', '.join(b.value for b in Backend)} "
                              f"(got {self.backend!r})") from None
        if self.workers < 1:
            raise ConfigError(f"--workers must be >= 1 (got {self.workers})")
        if self.backend == Backend.LOCAL:
            given = [flag for flag, on in (("--workers > 1", self.workers > 1), ("--ray-address", self.ray_address),
                                           ("--per-partition", self.per_partition),
                                           ("--object-store-mb", self.object_store_mb is not None),
                                           ("--worker-cache-mb", self.worker_cache_mb is not None)) if on]
            if given:
                raise ConfigError(f"{', '.join(given)} need(s) the Ray backend; drop --backend local")
        if is_remote(self.checkpoint_dir) and self._runs_locally():
            raise ConfigError("an s3:// --checkpoint-dir is Ray Train's storage: add --backend ray (the local "
                              "backend writes its checkpoints to a directory)")
        if self.worker_cache_mb is not None and kind != "tabular":
            raise ConfigError("--worker-cache-mb applies to tabular fits (a time-series worker always keeps its "
                              "shard of the windows in memory)")
        if not self.materialize_mb >= 0:
            raise ConfigError(f"--materialize-mb must be >= 0 (got {self.materialize_mb:g})")
        if self.worker_cache_mb is not None and self.worker_cache_mb < 0:
            raise ConfigError(f"--worker-cache-mb must be >= 0 (got {self.worker_cache_mb:g})")
        mb = self.object_store_mb
        if mb is not None:
            if self.ray_address:
                raise ConfigError("--object-store-mb sizes the local cluster ganstream starts; the object store of a "
                                  "--ray-address cluster is set by whoever started it")
            if not MIN_OBJECT_STORE_MB <= mb < float("inf"):
                raise ConfigError(f"--object-store-mb must be >= {MIN_OBJECT_STORE_MB:g} (Ray's minimum) (got {mb:g})")
        return self

    def _runs_locally(self) -> bool:
        return self.backend == Backend.LOCAL or (self.backend == Backend.AUTO and not (
            self.workers > 1 or self.ray_address or self.per_partition or self.object_store_mb is not None
            or self.worker_cache_mb is not None))

    def choose(self) -> tuple[Backend, str]:
        """(the backend this fit runs on, why), for the fit's first log line."""
        self.validate()
        if self.backend == Backend.LOCAL:
            return Backend.LOCAL, "asked for with --backend local"
        reasons = [why for why, on in ((f"{self.workers} workers", self.workers > 1),
                                       (f"--ray-address {self.ray_address}", self.ray_address),
                                       (f"--per-partition {self.per_partition}", self.per_partition),
                                       ("--object-store-mb", self.object_store_mb is not None),
                                       ("--worker-cache-mb", self.worker_cache_mb is not None)) if on]
        if self.backend == Backend.RAY:
            return Backend.RAY, "asked for with --backend ray"
        if reasons:
            return Backend.RAY, "auto: " + ", ".join(reasons)
        return Backend.LOCAL, "auto: one worker and no --ray-address (--backend ray to use Ray Train)"
