"""The one contract every ganstream model implements (in the spirit of synthcity's plugins and
scikit-learn's estimators): hyper-parameters in __init__ (a dataclass config), `fit(table)`,
`sample(n, seed=...)`, `save(dir)` / `load(dir)`. New model kinds register themselves by `kind`."""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from typing import ClassVar

import pandas as pd

from .errors import ModelError
from .persistence import read_meta

MODEL_KINDS: dict[str, type["GenerativeModel"]] = {}


class GenerativeModel(ABC):
    kind: ClassVar[str]

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        if getattr(cls, "kind", None):
            MODEL_KINDS[cls.kind] = cls

    @abstractmethod
    def fit(self, table: pd.DataFrame) -> "GenerativeModel": ...

    @abstractmethod
    def sample(self, n: int, seed: int = 0, **options) -> pd.DataFrame: ...

    @abstractmethod
    def save(self, path: str | os.PathLike) -> None: ...

    @classmethod
    @abstractmethod
    def load(cls, path: str | os.PathLike) -> "GenerativeModel": ...


def load_model(path: str | os.PathLike) -> GenerativeModel:
    """Load any model directory by the kind recorded in its metadata."""
    meta = read_meta(path)
    from . import tabular_gan  # noqa: F401  (importing a model module registers its kind)
    from . import timeseries_gan  # noqa: F401
    cls = MODEL_KINDS.get(meta["kind"])
    if cls is None:
        raise ModelError(f"{path}: unknown model kind '{meta['kind']}' (known: {', '.join(sorted(MODEL_KINDS))})")
    return cls.load(path)
