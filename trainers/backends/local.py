"""The in-process backend: the model's own `fit` in this process, with checkpoints and --resume.

Why a fit does not always go through Ray Train: a one-worker fit on a laptop pays Ray's start-up (~15-18 s of
actor start-up per fit on a 2-core machine) for nothing; in-process, the same training step (`run_epoch`)
runs directly. The table is read whole into memory: tables larger than memory belong on the Ray backend,
which streams them.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from ganstream.trainers.backends.checkpoint import LocalCheckpoints, default_storage
from ganstream.trainers.backends.options import FitOptions
from ganstream.trainers.backends.partitioned import discover, read_whole
from ganstream.trainers.progress import ProgressFn


def fit_local(model, data, options: FitOptions, out: str | os.PathLike | None = None, missing_tokens=(),
              progress: ProgressFn | None = None, info=None):
    """Fit `model` on DATA (a path or a DataFrame) in this process and return it. Checkpoints go to
    `options.checkpoint_dir`, else beside `out`; with neither (a notebook fit) none are written."""
    table = read_data(data, missing_tokens, info)
    checkpoints = None
    if options.checkpoint_dir or out is not None:
        storage = Path(options.checkpoint_dir).resolve() if options.checkpoint_dir else default_storage(out)
        checkpoints = LocalCheckpoints(storage, options.run_name, options.resume)
        if info:
            info(f"checkpoints in {checkpoints.dir}" + (" (resuming)" if options.resume else ""))
    model.fit(table, progress=progress, checkpoints=checkpoints, info=info)
    model.training.update(backend="local", workers=1)
    model.stats_sample = table  # what quality reports compare samples with
    return model


def read_data(data, missing_tokens=(), info=None) -> pd.DataFrame:
    """DATA as one table, validated as the Ray backend validates it (every Parquet file's columns and types
    agree, a corrupt file is named, empty files are skipped with a note; hive partition keys become text
    columns), so a table that fails on one backend fails the same way on the other."""
    if isinstance(data, pd.DataFrame):
        return discover(data, missing_tokens).table
    src = discover(data, missing_tokens)
    if src.skipped and info:
        info(f"skipping {len(src.skipped)} empty Parquet file(s): {', '.join(src.skipped[:3])}"
             + (" ..." if len(src.skipped) > 3 else ""))
    return read_whole(src, missing_tokens)
