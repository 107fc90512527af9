"""Table-level imputer: TableEncoder(minmax, nan) + the GAIN-style core in trainers/tabular/gain.py.

The encoder turns a mixed table into a [0, 1] matrix whose holes are NaN (a missing categorical leaves
its whole one-hot span NaN); the core fills the holes; the encoder decodes. Observed cells are never
taken from the decoded table: the output is built with `Series.where(notna, decoded)`, so every observed
value comes back bit for bit (no min-max round trip, no float32 cast) and with its column's dtype.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict

import numpy as np
import pandas as pd
import torch

from ganstream.trainers.encoding import TableEncoder
from ganstream.trainers.errors import ModelError
from ganstream.trainers.tabular.gain import GainConfig, GainImputer
from ganstream.trainers.persistence import load_network, read_meta, save_model_dir
from ganstream.trainers.progress import ProgressFn
from ganstream.trainers.schema import TableSchema, check_compatible, infer_schema

__all__ = ["GainConfig", "TabularImputer"]


class TabularImputer:
    """fit(df) once; transform(df, draws=K) gives K completed tables (multiple imputation)."""

    kind = "imputer"

    def __init__(self, config: GainConfig | None = None, **overrides):
        config = config or GainConfig()
        if overrides:
            config = GainConfig(**{**asdict(config), **overrides})
        self.config = config.validate()
        self.encoder: TableEncoder | None = None
        self.core: GainImputer | None = None
        self.training: dict = {}

    @property
    def schema(self) -> TableSchema:
        self._require_fitted()
        return self.encoder.schema

    # ---------------------------------------------------------------- fit
    def fit(self, df: pd.DataFrame, schema: TableSchema | None = None,
            progress: ProgressFn | None = None) -> "TabularImputer":
        t0 = time.perf_counter()
        schema = schema or infer_schema(df)
        self.encoder = TableEncoder(numeric="minmax", missing="nan").fit(df, schema)
        X = self.encoder.transform(df)
        spans = [(s.start, s.stop) for s in self.encoder.spans if s.kind == "softmax"]
        self.core = GainImputer(self.config).fit(X, spans, progress=progress)
        self.training = {"rows": len(df), "columns": df.shape[1], "missing_cells": int(df.isna().to_numpy().sum()),
                         "seconds": time.perf_counter() - t0}
        return self

    # ---------------------------------------------------------- transform
    def _encode(self, df: pd.DataFrame) -> np.ndarray:
        self._require_fitted()
        check_compatible(self.encoder.schema, df, what="table to impute")
        return self.encoder.transform(df)  # raises DataError for categories never seen in training

    def _merge(self, df: pd.DataFrame, matrix: np.ndarray) -> pd.DataFrame:
        """Decoded values only where df has holes; observed cells, extra columns and the column order
        of `df` are kept as they are."""
        decoded = self.encoder.inverse_transform(matrix, missing="fill")
        out = df.copy()
        for name in self.encoder.schema.names:
            col = df[name]
            if col.isna().any():  # positional (.array), so a duplicated index cannot misalign rows
                out[name] = col.where(col.notna(), decoded[name].array)
        return out

    def transform(self, df: pd.DataFrame, draws: int = 1, seed: int = 0, calibrated: bool = True) -> list[pd.DataFrame]:
        """K completed copies of `df`. Each draw fills the holes with fresh generator noise and samples
        categories from the generator's softmax, so draws differ where (and only where) df has holes; numeric
        holes get the calibrated spread (tabular/imputer_calibration.py) unless `calibrated` is False.
        Same seed -> identical tables."""
        X = self._encode(df)
        mats = self.core.transform(X, draws=draws, seed=seed, categorical="sample", calibrated=calibrated)
        return [self._merge(df, m) for m in mats]

    def impute_mean(self, df: pd.DataFrame, draws: int = 10, seed: int = 0) -> pd.DataFrame:
        """One completed table for point estimates: numeric holes get the mean of `draws` imputations
        (≈ the conditional mean, the RMSE-optimal guess), categorical holes the most probable category."""
        X = self._encode(df)
        return self._merge(df, self.core.impute_mean(X, draws=draws, seed=seed))

    # -------------------------------------------------------- persistence
    def _require_fitted(self):
        if self.core is None:
            raise ModelError("imputer is not fitted")

    def state(self) -> tuple[dict, dict[str, dict[str, torch.Tensor]]]:
        """(JSON-able meta, state_dicts): everything needed to rebuild the imputer, no pickle."""
        self._require_fitted()
        core_meta, networks = self.core.state()
        meta = {"kind": self.kind, "config": self.config.to_json(), "encoder": self.encoder.to_json(),
                "core": core_meta, "training": self.training}
        return meta, networks

    @classmethod
    def from_state(cls, meta: dict, networks: dict[str, dict[str, torch.Tensor]]) -> "TabularImputer":
        if meta.get("kind", cls.kind) != cls.kind:
            raise ModelError(f"model is a '{meta['kind']}' model, not an imputer")
        try:
            self = cls(GainConfig.from_json(meta["config"]))
            self.encoder = TableEncoder.from_json(meta["encoder"])
        except (KeyError, TypeError, ValueError) as e:
            raise ModelError(f"imputer metadata is incomplete ({type(e).__name__}: {e})") from None
        self.core = GainImputer.from_state(meta["core"], networks)
        if self.core.layout.dim != self.encoder.output_dim:
            raise ModelError("imputer networks do not match its encoder")
        self.training = meta.get("training", {})
        return self

    def save(self, path: str | os.PathLike) -> None:
        """Privacy: with the neighbour read-out on (GainConfig.pool > 0, the standalone default) the saved
        imputer holds a bank of up to `bank_size` training rows: it is meant to stay with the data it imputes.
        `ganstream impute` never saves it; the imputer inside a generator (which is registered and shared) is
        fitted with pool=0 and holds no rows (a test in tests/test_tabular_gan.py checks this)."""
        meta, networks = self.state()
        save_model_dir(path, meta, networks)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "TabularImputer":
        meta = read_meta(path, kind=cls.kind)
        names = meta.get("networks", ["generator", "discriminator"])
        return cls.from_state(meta, {name: load_network(path, name) for name in names})
