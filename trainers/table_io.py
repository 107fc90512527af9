"""Reading and writing tables at the edges. Inside ganstream a table is a pandas DataFrame; this module is
the only place that knows about CSV/Parquet files, missing-value tokens and atomic output."""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path
from typing import Iterable

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ganstream.trainers.column_checks import check_csv_header, check_parquet_schema
from ganstream.trainers.errors import ConfigError, DataError

TABLE_SUFFIXES = (".csv", ".parquet")


def read_table(path: str | os.PathLike, missing_tokens: Iterable[str] = ()) -> pd.DataFrame:
    """Read a CSV file, a Parquet file or a directory of Parquet files into a DataFrame.

    Empty strings and `missing_tokens` (compared after stripping whitespace, so ' ?' matches '?')
    become missing values. Raises DataError with the path in the message on anything unreadable or empty.
    """
    p = Path(path)
    if not p.exists():
        raise DataError(f"{p}: no such file or directory")
    try:
        table = None
        if p.is_dir():
            files = sorted(f for f in p.rglob("*.parquet") if f.is_file())
            if not files:
                raise DataError(f"{p}: directory contains no .parquet files")
            table = pq.read_table(str(p))
        elif p.suffix.lower() == ".csv":
            check_csv_header(p)
            df = pd.read_csv(p, skipinitialspace=False)
        elif p.suffix.lower() == ".parquet":
            table = pq.read_table(str(p))
        else:
            raise DataError(f"{p}: unsupported file type '{p.suffix}' (expected .csv, .parquet or a directory of .parquet files)")
        if table is not None:
            check_parquet_schema(table.schema, str(p))
            df = table.to_pandas()
    except DataError:
        raise
    except pd.errors.EmptyDataError:
        raise DataError(f"{p}: file is empty") from None
    except (pa.ArrowInvalid, pa.ArrowException, OSError, ValueError, UnicodeDecodeError) as e:
        raise DataError(f"{p}: cannot read table ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from None
    if df.shape[1] == 0:
        raise DataError(f"{p}: table has no columns")
    if len(df) == 0:
        raise DataError(f"{p}: table has no rows")
    return normalize_missing(df, missing_tokens)


def normalize_missing(df: pd.DataFrame, missing_tokens: Iterable[str] = ()) -> pd.DataFrame:
    """Turn empty strings and user tokens in text columns into proper missing values (vectorized)."""
    tokens = {"", *[str(t).strip() for t in missing_tokens]}
    out = df.copy()
    for col in out.columns:
        s = out[col]
        if s.dtype == object or pd.api.types.is_string_dtype(s.dtype):
            stripped = s.astype("string").str.strip()
            hit = stripped.isin(tokens).fillna(False).to_numpy(dtype=bool)
            if hit.any():
                out[col] = s.mask(hit)
    return out


def check_output_path(path: str | os.PathLike) -> Path:
    """Validate an output table path before any work is done (so a bad path fails fast)."""
    p = Path(path)
    if p.suffix.lower() not in TABLE_SUFFIXES:
        raise ConfigError(f"{p}: output must end in .csv or .parquet")
    if p.exists() and p.is_dir():
        raise ConfigError(f"{p}: is a directory, expected a file path")
    parent = p.parent if str(p.parent) else Path(".")
    if parent.exists() and not os.access(parent, os.W_OK):
        raise ConfigError(f"{parent}: directory is not writable")
    return p


def arrow_table(df: pd.DataFrame, schema: pa.Schema | None = None) -> pa.Table:
    """`pa.Table.from_pandas` without the index. pyarrow reads a zoned timestamp column through `Series.values`,
    which pandas 3.1 deprecates with a warning on every write: the values are right, the warning is theirs."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Series.values returning an ndarray that drops timezone")
        return pa.Table.from_pandas(df, schema=schema, preserve_index=False)


def write_table(df: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write atomically (temp file + rename) so a reader or a crash never sees a partial file."""
    p = check_output_path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    os.close(fd)
    try:
        if p.suffix.lower() == ".csv":
            df.to_csv(tmp, index=False)
        else:
            pq.write_table(arrow_table(df), tmp)
        os.replace(tmp, p)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return p
