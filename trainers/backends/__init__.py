"""Where a fit runs. `fit(model, data, options)` is the one entry: it picks the backend (options.py), says which
and why in its first line, and runs the model's training step in this process (local.py) or on Ray Train
(ray_tabular.py, ray_timeseries.py): the same step either way, like nanoGPT's single-process/DDP switch."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from ganstream.trainers.backends.options import Backend, FitOptions
from ganstream.trainers.progress import ProgressFn

__all__ = ["Backend", "FitOptions", "fit", "remove_checkpoints"]


def fit(model, data, options: FitOptions | None = None, out: str | os.PathLike | None = None, missing_tokens=(),
        progress: ProgressFn | None = None, info=None):
    """Fit `model` on DATA (a path, or a DataFrame) and return the fitted model (a PerPartitionModels with
    `options.per_partition`). Tabular DATA on Ray is streamed by Ray Data; a time-series table is read whole
    (windows need whole series)."""
    info = info or (lambda msg: None)
    options = (options or FitOptions()).validate(model.kind)
    model.config.validate()
    backend, why = options.choose()
    what = str(data) if isinstance(data, (str, os.PathLike)) else f"a table of {len(data):,} rows"
    info(f"backend: {backend} ({why}); fitting a {model.kind} GAN on {what}, epochs={model.config.epochs or 'auto'}, "
         f"seed={model.config.seed}")
    storage = _storage(options, out)
    existed = storage is not None and storage.exists()
    try:
        return _fit(model, data, options, backend, out, missing_tokens, progress, info)
    except BaseException:
        if storage is not None and not existed:
            _remove_unless_resumable(storage)
        raise


def _fit(model, data, options: FitOptions, backend: Backend, out, missing_tokens, progress, info):
    if backend == Backend.LOCAL:
        from ganstream.trainers.backends.local import fit_local
        return fit_local(model, data, options, out, missing_tokens, progress, info)
    from ganstream.trainers.backends.ray_address import check_ray_address
    check_ray_address(options.ray_address)  # Ray alone retries a dead address for minutes
    kw = dict(opts=options, out=out, progress=progress, info=info)
    if model.kind == "timeseries":
        import pandas as pd

        from ganstream.trainers.backends.ray_timeseries import fit_timeseries_on_ray, fit_timeseries_per_partition
        from ganstream.trainers.table_io import read_table
        table = data if isinstance(data, pd.DataFrame) else read_table(data, missing_tokens)
        if options.per_partition:
            return _per_partition(options.per_partition,
                                  fit_timeseries_per_partition(model, table, options.per_partition, **kw))
        fitted = fit_timeseries_on_ray(model, table, **kw)
        fitted.stats_sample = table  # what quality reports compare samples with
        return fitted
    from ganstream.trainers.backends.ray_tabular import fit_on_ray, fit_per_partition
    if options.per_partition:
        return _per_partition(options.per_partition, fit_per_partition(model, data, options.per_partition,
                                                                       missing_tokens, **kw))
    return fit_on_ray(model, data, missing_tokens, **kw)


def _storage(options: FitOptions, out) -> Path | None:
    """The local checkpoint directory of a fit (None: none, or an s3:// one, which Ray Train and storage.py keep)."""
    from ganstream.trainers.backends.checkpoint import default_storage
    from ganstream.trainers.backends.storage import is_remote
    if is_remote(options.checkpoint_dir):
        return None
    if options.checkpoint_dir:
        return Path(options.checkpoint_dir).resolve()
    return default_storage(out) if out is not None else None


def _remove_unless_resumable(storage: Path) -> None:
    """A failed fit leaves no empty checkpoint directory behind; one that wrote a checkpoint keeps it, so
    --resume can continue from it."""
    from ganstream.trainers.backends.checkpoint import STATE_FILE
    if storage.is_dir() and not any(storage.rglob(STATE_FILE)):
        shutil.rmtree(storage, ignore_errors=True)


def _per_partition(column: str, models: dict):
    from ganstream.trainers.backends.per_partition import PerPartitionModels
    return PerPartitionModels(column, models)


def remove_checkpoints(options: FitOptions, out) -> None:
    """After a fit succeeded and its model was written: remove its checkpoints (every run directory of this
    fit, one per partition with --per-partition), and the checkpoint directory when nothing else is left in it.
    Kept with `options.keep_checkpoints`."""
    import shutil

    from ganstream.trainers.backends.storage import S3Checkpoints, is_remote
    if is_remote(options.checkpoint_dir) and not options.keep_checkpoints:
        S3Checkpoints(options.checkpoint_dir).remove_runs(options.run_name)
        return
    storage = _storage(options, out)
    if options.keep_checkpoints or storage is None or not storage.is_dir():
        return
    for run_dir in storage.iterdir():
        if run_dir.is_dir() and (run_dir.name == options.run_name or run_dir.name.startswith(f"{options.run_name}-")):
            shutil.rmtree(run_dir, ignore_errors=True)
    if not [p for p in storage.iterdir() if not p.name.startswith(".")]:  # Ray leaves a hidden marker file
        shutil.rmtree(storage, ignore_errors=True)
