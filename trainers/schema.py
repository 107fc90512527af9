"""What each column is. Inference is done once, at fit time, and stored as JSON with the model so that
sampling restores the exact column order, kinds and dtypes of the training table."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from ganstream.trainers.column_checks import check_unique_names
from ganstream.trainers.errors import DataError

KINDS = ("numeric", "integer", "categorical", "boolean")
MAX_CATEGORIES = 5000
SMALL_INTEGER_LEVELS = 20  # integer columns with at most this many distinct values also record their levels


@dataclass
class ColumnSpec:
    name: str
    kind: str  # one of KINDS
    dtype: str  # pandas dtype of the training column, restored on output
    missing_rate: float = 0.0
    categories: list | None = None  # categorical/boolean (and small integer): observed values, most frequent first
    frequencies: list[float] | None = None  # share of each category among observed values

    @property
    def has_missing(self) -> bool:
        return self.missing_rate > 0.0

    @property
    def is_discrete(self) -> bool:
        return self.kind in ("categorical", "boolean")

    @property
    def is_small_integer(self) -> bool:
        """An integer column with few levels (e.g. education-num): encoders may treat it as categorical."""
        return self.kind == "integer" and self.categories is not None

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> "ColumnSpec":
        return cls(**d)


@dataclass
class TableSchema:
    columns: list[ColumnSpec] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def __getitem__(self, name: str) -> ColumnSpec:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)

    def to_json(self) -> dict:
        return {"columns": [c.to_json() for c in self.columns]}

    @classmethod
    def from_json(cls, d: dict) -> "TableSchema":
        return cls([ColumnSpec.from_json(c) for c in d["columns"]])


def _python_value(v):
    """Category values must survive a JSON round trip exactly."""
    if isinstance(v, (np.bool_,)):
        return bool(v)
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    return v


def infer_column(name: str, s: pd.Series) -> ColumnSpec:
    missing = s.isna().to_numpy()
    n_missing = int(missing.sum())
    if n_missing == len(s):
        raise DataError(f"column '{name}' is entirely missing: drop it or provide values")
    dtype = str(s.dtype)
    observed = s[~missing]
    if pd.api.types.is_bool_dtype(s.dtype) or (s.dtype == object and observed.map(type).eq(bool).all()):
        kind = "boolean"
    elif pd.api.types.is_numeric_dtype(s.dtype):
        values = observed.to_numpy(dtype=np.float64)
        if not np.isfinite(values).all():
            bad = int((~np.isfinite(values)).sum())
            raise DataError(f"column '{name}' has {bad} infinite value(s): replace them with a number or a missing value")
        kind = "integer" if (pd.api.types.is_integer_dtype(s.dtype) or np.all(values == np.round(values))) else "numeric"
    else:
        kind = "categorical"
    spec = ColumnSpec(name=name, kind=kind, dtype=dtype, missing_rate=n_missing / len(s))
    counts = observed.value_counts(sort=True) if kind != "numeric" else None
    if spec.is_discrete or (kind == "integer" and len(counts) <= SMALL_INTEGER_LEVELS):
        if len(counts) > MAX_CATEGORIES:
            raise DataError(f"column '{name}' has {len(counts)} distinct values (max {MAX_CATEGORIES} for a categorical column)")
        # Sort by (-count, str(value)) so the order is deterministic when counts tie.
        order = sorted(zip(counts.index, counts.to_numpy()), key=lambda kv: (-kv[1], str(kv[0])))
        spec.categories = [_python_value(k) for k, _ in order]
        total = float(counts.sum())
        spec.frequencies = [float(c) / total for _, c in order]
    return spec


def infer_schema(df: pd.DataFrame) -> TableSchema:
    """Infer and validate a schema; raises DataError for tables a GAN cannot learn from."""
    if len(df) == 0 or df.shape[1] == 0:
        raise DataError("table is empty")
    check_unique_names(df.columns, "table")
    return TableSchema([infer_column(str(c), df[c]) for c in df.columns])


def check_compatible(schema: TableSchema, df: pd.DataFrame, what: str = "table") -> None:
    """New data (for imputation or evaluation) must have the model's columns, with compatible kinds."""
    missing_cols = [c for c in schema.names if c not in df.columns]
    if missing_cols:
        raise DataError(f"{what} lacks column(s) the model was fit on: {', '.join(missing_cols)}")
    for spec in schema.columns:
        s = df[spec.name]
        if spec.kind in ("numeric", "integer") and not pd.api.types.is_numeric_dtype(s.dtype):
            raise DataError(f"{what}: column '{spec.name}' should be numeric but has dtype {s.dtype}")
