"""What each column is. Inference is done once, at fit time, and stored as JSON with the model so that
sampling restores the exact column order, kinds and dtypes of the training table."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from ganstream.trainers import datetimes
from ganstream.trainers.column_checks import check_unique_names
from ganstream.trainers.column_rules import unlearnable_reason
from ganstream.trainers.errors import ConfigError, DataError

KINDS = ("numeric", "integer", "categorical", "boolean", "datetime")
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
    time: dict | None = None  # datetime: unit, time zone and text layout (trainers/datetimes.py)

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

    @property
    def is_integral(self) -> bool:
        """Decoded values are whole numbers: integers, and datetimes (whole counts of their unit)."""
        return self.kind in ("integer", "datetime")

    @property
    def label(self) -> str:
        """The kind as `train` shows it: a date column says date, not datetime."""
        if self.kind == "datetime":
            return "date" if self.time["unit"] == "D" else "datetime"
        return self.kind

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> "ColumnSpec":
        return cls(**d)


@dataclass
class TableSchema:
    columns: list[ColumnSpec] = field(default_factory=list)
    dropped: dict[str, str] = field(default_factory=dict)  # column -> why it is not learned (column_rules.py)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def __getitem__(self, name: str) -> ColumnSpec:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)

    def to_json(self) -> dict:
        return {"columns": [c.to_json() for c in self.columns], "dropped": dict(self.dropped)}

    @classmethod
    def from_json(cls, d: dict) -> "TableSchema":
        return cls([ColumnSpec.from_json(c) for c in d["columns"]], dict(d.get("dropped", {})))

    def describe(self) -> list[str]:
        """One line per column: name, kind, missing rate; then the dropped columns and why."""
        width = max([len(n) for n in [*self.names, *self.dropped]] + [6])
        lines = [f"  {c.name:<{width}}  {c.label:<11}  {c.missing_rate:6.1%} missing" for c in self.columns]
        lines += [f"  {name:<{width}}  dropped: {why}" for name, why in self.dropped.items()]
        return lines


def _python_value(v):
    """Category values must survive a JSON round trip exactly."""
    if isinstance(v, (np.bool_,)):
        return bool(v)
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    return v


_DETECT = object()


def infer_column(name: str, s: pd.Series, categorical: bool = False, time=_DETECT) -> ColumnSpec:
    """The spec of one column. categorical=True: a category whatever its values look like (dates included).
    `time`: the column's datetimes.detect result when the caller has it already."""
    missing = s.isna().to_numpy()
    n_missing = int(missing.sum())
    if n_missing == len(s):
        raise DataError(f"column '{name}' is entirely missing: drop it or provide values")
    dtype = str(s.dtype)
    observed = s[~missing]
    time = None if categorical else (datetimes.detect(s) if time is _DETECT else time)
    if time is not None:
        return ColumnSpec(name=name, kind="datetime", dtype=dtype, missing_rate=n_missing / len(s), time=time)
    if categorical:
        kind = "categorical"
    elif pd.api.types.is_bool_dtype(s.dtype) or (s.dtype == object and observed.map(type).eq(bool).all()):
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


def infer_schema(df: pd.DataFrame, categorical: tuple[str, ...] | list[str] = ()) -> TableSchema:
    """Infer and validate a schema; raises DataError for tables a GAN cannot learn from. Identifier and
    free-text columns are left out (`schema.dropped` says why), except those named in `categorical`."""
    if len(df) == 0 or df.shape[1] == 0:
        raise DataError("table is empty")
    check_unique_names(df.columns, "table")
    check_named_columns(categorical, [str(c) for c in df.columns])
    specs, dropped = [], {}
    for c in df.columns:
        name, forced = str(c), str(c) in categorical
        time = None if forced else datetimes.detect(df[c])
        reason = None if forced or time is not None else unlearnable_reason(name, df[c])
        if reason is not None:
            dropped[name] = reason
        else:
            specs.append(infer_column(name, df[c], categorical=forced, time=time))
    if not specs:
        raise DataError(f"no column is left to learn from: {', '.join(f'{n} ({w})' for n, w in dropped.items())}; "
                        f"keep one with --categorical COL")
    return TableSchema(specs, dropped)


def check_named_columns(names, columns: list[str], option: str = "--categorical") -> None:
    unknown = [n for n in names if n not in columns]
    if unknown:
        raise ConfigError(f"{option}: no column named {', '.join(repr(n) for n in unknown)} "
                          f"(columns: {', '.join(columns)})")


def check_compatible(schema: TableSchema, df: pd.DataFrame, what: str = "table") -> None:
    """New data (for imputation or evaluation) must have the model's columns, with compatible kinds."""
    missing_cols = [c for c in schema.names if c not in df.columns]
    if missing_cols:
        raise DataError(f"{what} lacks column(s) the model was fit on: {', '.join(missing_cols)}")
    for spec in schema.columns:
        s = df[spec.name]
        if spec.kind in ("numeric", "integer") and not pd.api.types.is_numeric_dtype(s.dtype):
            raise DataError(f"{what}: column '{spec.name}' should be numeric but has dtype {s.dtype}")
