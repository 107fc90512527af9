"""The result of a per-partition fit (--per-partition COL): one fitted model per partition value, saved as
MODEL_DIR/COL=VALUE/ (each an ordinary model directory) plus a model.json of kind 'partitioned' listing them,
written atomically as one directory."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from ganstream.trainers.persistence import save_model_dir


class PerPartitionModels:
    """{partition value: fitted model}. With tracking, each is its own MLflow run and, with --register NAME,
    its own registered model NAME-VALUE."""

    kind = "partitioned"

    def __init__(self, column: str, models: dict):
        self.column, self.models = column, models
        self.training = {"seconds": max((m.training.get("seconds", 0.0) for m in models.values()), default=0.0),
                         "partitions": sorted(models)}

    def save(self, path: str | os.PathLike) -> None:
        p = Path(path)
        staging = Path(tempfile.mkdtemp(prefix=f".{p.name}.parts.", dir=p.resolve().parent))
        try:
            for value, m in self.models.items():
                m.save(staging / f"{self.column}={value}")
            meta = {"kind": self.kind, "column": self.column,
                    "models": {v: f"{self.column}={v}" for v in sorted(self.models)}}
            save_model_dir(staging / "_index", meta, {})
            index = staging / "_index"
            for f in index.iterdir():
                os.replace(f, staging / f.name)
            index.rmdir()
            if p.exists():
                old = p.with_name(f".{p.name}.old")
                shutil.rmtree(old, ignore_errors=True)
                os.replace(p, old)
                os.replace(staging, p)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(staging, p)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
