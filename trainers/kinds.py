"""Model kinds by name: the table `ganstream.load` and the command line use to turn a `kind` (from a
model directory's model.json or `train --kind`) into a class. Adding a kind is one line here; no module
registers itself on import (the base class stays free of the models, so there is no import circle)."""

from __future__ import annotations

import importlib
import os

from ganstream.trainers.errors import ModelError
from ganstream.trainers.persistence import read_meta

# kind -> (module, class). Imported on demand: reading a tabular model never imports the time-series code.
MODEL_KINDS: dict[str, tuple[str, str]] = {
    "tabular": ("ganstream.trainers.tabular.model", "TabularGAN"),
    "timeseries": ("ganstream.trainers.timeseries.model", "TimeSeriesGAN"),
    "imputer": ("ganstream.trainers.tabular.imputer", "TabularImputer"),
}


def model_class(kind: str) -> type:
    entry = MODEL_KINDS.get(kind)
    if entry is None:
        raise ModelError(f"unknown model kind '{kind}' (known: {', '.join(sorted(MODEL_KINDS))})")
    module, name = entry
    return getattr(importlib.import_module(module), name)


def load_model(path: str | os.PathLike):
    """Load any model directory by the kind recorded in its model.json."""
    meta = read_meta(path)
    try:
        cls = model_class(meta["kind"])
    except ModelError as e:
        raise ModelError(f"{path}: {e}") from None
    return cls.load(path)
