"""The sink directory of a stream: one Parquet file per shard (bounded) or per window (unbounded).

* A file is written to a hidden temp name (`.NAME.PID.tmp`) in the sink and renamed when complete, so a
  consumer polling the directory never sees a partial file (readers such as pyarrow also skip names
  starting with '.' or '_'). Temp files left by a killed run are removed when the next run starts.
* Every file carries the model name and version twice: a `model_version` column and Parquet key-value
  metadata (`ganstream.model_name`, `ganstream.model_version`, ...). No timestamps go into a bounded
  shard, so the same job writes the same bytes.
* `_ganstream_stream.json` (the manifest) records the job a sink belongs to. A bounded re-run with the
  same job skips the shards that are already complete; a different job is refused (its shards would mix).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ganstream.trainers.errors import ConfigError
from ganstream.trainers.table_io import arrow_table

MANIFEST = "_ganstream_stream.json"
TEMP_SUFFIX = ".tmp"
VERSION_COLUMN = "model_version"
SYNTHETIC_COLUMN = "is_synthetic"


# ---------------------------------------------------------------------------------------- checks
def check_sink(path: str | os.PathLike) -> Path:
    """Fail before any work when the sink cannot be written (it is created later, only if all is well)."""
    p = Path(path)
    if p.exists():
        if not p.is_dir():
            raise ConfigError(f"--sink {p}: exists and is not a directory")
        if not os.access(p, os.W_OK | os.X_OK):
            raise ConfigError(f"--sink {p}: directory is not writable")
        return p
    parent = p.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"--sink {p}: cannot be created ({parent} is not a writable directory)")
    return p


def check_manifest(sink: Path, job: dict) -> None:
    """A sink holds one job: refuse a different job's sink (bounded) or a bounded sink for a stream."""
    m = sink / MANIFEST
    if not m.is_file():
        stray = sorted(f.name for f in sink.glob("*.parquet")) if sink.is_dir() else []
        if stray:
            raise ConfigError(f"--sink {sink}: holds Parquet files of something else ({stray[0]}, ...); "
                              f"use an empty or new directory")
        return
    try:
        old = json.loads(m.read_text())
    except (OSError, ValueError):
        raise ConfigError(f"--sink {sink}: unreadable {MANIFEST}; use an empty or new directory") from None
    if old.get("mode") == job["mode"] == "unbounded":
        return  # windows are named by their start time: a new stream adds files, never replaces any
    if old != job:
        diff = ", ".join(f"{k}: {old.get(k)!r} -> {job.get(k)!r}" for k in sorted(set(old) | set(job))
                         if old.get(k) != job.get(k))
        raise ConfigError(f"--sink {sink}: holds the output of another job ({diff}); use a new directory")


def prepare_sink(sink: Path, job: dict) -> None:
    sink.mkdir(parents=True, exist_ok=True)
    for tmp in sink.glob(f".*{TEMP_SUFFIX}"):  # partial files of a killed run
        tmp.unlink(missing_ok=True)
    if not (sink / MANIFEST).is_file():
        write_bytes_atomic(sink / MANIFEST, (json.dumps(job, indent=1, sort_keys=True) + "\n").encode())


# ----------------------------------------------------------------------------------------- arrow
def _arrow_type(dtype: str) -> pa.DataType | None:
    d = str(dtype).lower()
    if d in ("bool", "boolean"):
        return pa.bool_()
    if d.startswith(("int", "uint")):
        return pa.from_numpy_dtype(np.dtype(d))
    if d.startswith("float"):
        return pa.from_numpy_dtype(np.dtype(d))
    if d in ("object", "str", "string", "category") or d.startswith("string"):
        return pa.string()
    return None


def table_schema(model) -> pa.Schema | None:
    """One fixed Arrow schema for all files of a tabular model, so that a directory of shards reads as one
    table even when a shard happens to have a column with only missing values (None for other kinds)."""
    encoder = getattr(model, "encoder", None)
    if encoder is None:
        return None
    fields = []
    for spec in encoder.schema.columns:
        t = _time_type(spec) if spec.kind == "datetime" and spec.time["source"] != "text" else _arrow_type(spec.dtype)
        if t is None:
            return None
        fields.append(pa.field(spec.name, t))
    return pa.schema(fields)


def to_arrow(df: pd.DataFrame, schema: pa.Schema | None, metadata: dict[str, str]) -> pa.Table:
    if schema is not None:
        extra = list(pa.Schema.from_pandas(df[[c for c in df.columns if c not in schema.names]],
                                           preserve_index=False))
        order = [*schema.names, *[f.name for f in extra]]
        table = arrow_table(df[order], schema=pa.schema([*schema, *extra]))
    else:
        table = arrow_table(df)
    return table.replace_schema_metadata({f"ganstream.{k}": str(v) for k, v in metadata.items()})


def _time_type(spec) -> pa.DataType | None:
    """Dates stay Parquet dates; timestamps keep their unit and time zone."""
    if spec.time["source"] == "date":
        return pa.date32()
    try:
        dtype = pd.api.types.pandas_dtype(spec.dtype)
    except TypeError:
        return None
    if isinstance(dtype, pd.DatetimeTZDtype):
        return pa.timestamp(dtype.unit, tz=str(dtype.tz))
    return pa.timestamp(np.datetime_data(dtype)[0])


# ---------------------------------------------------------------------------------------- writing
def _temp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}{TEMP_SUFFIX}")


def write_bytes_atomic(path: Path, data: bytes) -> None:
    tmp = _temp_name(path)
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_parquet_atomic(table: pa.Table, path: Path) -> None:
    tmp = _temp_name(path)
    try:
        pq.write_table(table, tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def output_files(sink: Path) -> list[Path]:
    return sorted(f for f in sink.glob("*.parquet") if not f.name.startswith((".", "_")))


def count_rows(files: list[Path]) -> int:
    return sum(pq.ParquetFile(f).metadata.num_rows for f in files)
