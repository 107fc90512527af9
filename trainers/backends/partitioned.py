"""Partitioned training data for distributed fits: discover and validate the files, read them with Ray Data,
and learn the table's schema and encoder statistics in ONE parallel pass that never gathers the rows.

DATA is a hive-partitioned directory of Parquet files (`region=eu/day=2026-11-01/part-0.parquet`), a single
Parquet file, a list of Parquet files, or a CSV file (read whole: one CSV is one process's file anyway).
Partition keys become ordinary text (categorical) columns after the file columns, as `pyarrow` would give them.

Validation happens on file footers only (cheap, before any cluster work), and every problem names its file:
a corrupt Parquet file or one whose columns / types disagree with the first file is an error; a file with
zero rows is SKIPPED (documented: an empty partition carries no rows to learn from, so it cannot mislead the
fit) and reported back so the CLI can say so.

Statistics: each Ray Data batch is summarised in parallel (`map_batches`) into null counts, exact value
counts of discrete columns (bounded: numeric columns stop counting after a few levels), an "all integral"
flag, and the rows with the smallest seeded row hashes. Merging keeps the smallest hashes overall, which is
a uniform random sample of fixed size that does not depend on how the data was split into batches. So the
driver holds O(columns x categories + SAMPLE_ROWS) no matter how large DATA is: categories and missing
rates are exact, numeric quantiles come from the sample. A batch ships only its rows whose hash is under a
bound expected to leave SAMPLE_OVERSHOOT x SAMPLE_ROWS rows overall (`sample_key_bound`; the row count is
known from the footers): the same sample, without every batch shipping up to SAMPLE_ROWS rows through the
object store (that was ~3.8M rows at 5M, and spilled a bounded store to disk). Should fewer rows than the
sample fall under the bound (many duplicate rows: equal rows hash alike), the pass runs again without it.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ganstream.trainers.column_checks import check_parquet_schema, check_unique_names
from ganstream.trainers.errors import DataError
from ganstream.trainers.column_rules import unlearnable_reason
from ganstream.trainers.datetimes import detect as detect_time
from ganstream.trainers.schema import (MAX_CATEGORIES, SMALL_INTEGER_LEVELS, TableSchema, _python_value,
                                       check_named_columns, infer_column)
from ganstream.trainers.table_io import normalize_missing, read_table

SAMPLE_ROWS = 50_000  # rows the encoder's quantiles and the hole-filling imputer are fitted on
SAMPLE_OVERSHOOT = 2.0  # rows under the batches' hash bound, expected, per sample row (`sample_key_bound`)
READ_BLOCK_BYTES = 4 * 2**20  # Ray Data block size cap (see read_dataset)


@dataclass
class PartitionedSource:
    """What DATA is made of, validated: readable non-empty files (or one in-memory table for a CSV)."""

    name: str  # DATA as the user gave it, for messages
    files: list[str] = field(default_factory=list)
    root: str | None = None  # base dir of hive partitions
    columns: list[str] = field(default_factory=list)  # file columns, then partition keys
    partition_keys: list[str] = field(default_factory=list)
    partitions: dict[str, dict[str, str]] = field(default_factory=dict)  # file -> {key: value}
    rows: int = 0
    skipped: list[str] = field(default_factory=list)  # empty files, not read
    table: pd.DataFrame | None = None  # only for a CSV input

    def restrict(self, key: str, value: str) -> "PartitionedSource":
        """The files of one partition value (for --per-partition)."""
        files = [f for f in self.files if self.partitions[f].get(key) == value]
        return PartitionedSource(f"{self.name} [{key}={value}]", files, self.root, list(self.columns),
                                 list(self.partition_keys), {f: self.partitions[f] for f in files},
                                 sum(_rows(f) for f in files), [], None)

    def partition_values(self, key: str) -> list[str]:
        if key not in self.partition_keys:
            keys = ", ".join(self.partition_keys) or "none"
            raise DataError(f"{self.name}: '{key}' is not a partition column (partition columns: {keys})")
        return sorted({p[key] for p in self.partitions.values()})


# ------------------------------------------------------------------------------------------ discovery
def discover(data: str | os.PathLike | Sequence[str | os.PathLike], missing_tokens: Iterable[str] = ()) -> PartitionedSource:
    """Validate DATA from file footers (no rows read, except a CSV). Raises DataError naming the file. DATA may
    also be a DataFrame already in memory (a notebook's `ganstream.train(df, backend="ray")`)."""
    if isinstance(data, pd.DataFrame):
        if data.shape[1] == 0 or len(data) == 0:
            raise DataError("the table is empty (no rows or no columns)")
        check_unique_names(data.columns, "the table")
        table = normalize_missing(data, missing_tokens)
        return PartitionedSource("the table", columns=list(map(str, table.columns)), rows=len(table), table=table)
    if isinstance(data, (list, tuple)):
        paths = [Path(p) for p in data]
        if not paths:
            raise DataError("no input files given")
        for p in paths:
            if not p.is_file():
                raise DataError(f"{p}: no such file")
        name, root, files = f"{len(paths)} files", None, paths
    else:
        p = Path(data)
        name = str(p)
        if not p.exists():
            raise DataError(f"{p}: no such file or directory")
        if p.is_file() and p.suffix.lower() == ".csv":
            table = read_table(p, missing_tokens)
            return PartitionedSource(name, columns=list(map(str, table.columns)), rows=len(table), table=table)
        if p.is_dir():
            files = sorted(f for f in p.rglob("*.parquet") if f.is_file() and not _hidden(f.relative_to(p)))
            if not files:
                raise DataError(f"{p}: directory contains no .parquet files")
            root = p
        elif p.suffix.lower() == ".parquet":
            root, files = None, [p]
        else:
            raise DataError(f"{p}: unsupported file type '{p.suffix}' (expected .csv, .parquet or a directory of .parquet files)")
    src = PartitionedSource(name, root=str(root) if root else None)
    reference: tuple[str, dict[str, pa.DataType]] | None = None
    for f in files:
        schema, rows = _footer(f)
        keys = _partition_keys(f, root)
        if reference is None:
            reference = (str(f), schema)
            src.partition_keys = list(keys)
            clash = [k for k in keys if k in schema]
            if clash:
                raise DataError(f"{f}: partition key(s) {', '.join(clash)} are also columns of the file")
            src.columns = list(schema) + list(keys)
        else:
            _check_same_schema(f, schema, *reference)
            if list(keys) != src.partition_keys:
                raise DataError(f"{f}: partition keys {list(keys) or 'none'} differ from "
                                f"{src.partition_keys or 'none'} of {reference[0]}")
        if rows == 0:
            src.skipped.append(str(f))
            continue
        src.files.append(str(f))
        src.partitions[str(f)] = keys
        src.rows += rows
    if not src.files:
        raise DataError(f"{name}: every Parquet file is empty (no rows to fit on)")
    return src


def _hidden(rel: Path) -> bool:
    return any(part.startswith((".", "_")) for part in rel.parts)


def _footer(f: Path) -> tuple[dict[str, pa.DataType], int]:
    try:
        meta = pq.ParquetFile(str(f))
        schema = meta.schema_arrow
        rows = meta.metadata.num_rows
    except (pa.ArrowException, OSError, ValueError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise DataError(f"{f}: cannot read Parquet file ({first})") from None
    check_parquet_schema(schema, str(f))
    return {n: _normal_type(schema.field(n).type) for n in schema.names}, rows


def _normal_type(t: pa.DataType) -> pa.DataType:
    """Types that read into the same pandas column are the same type here."""
    if pa.types.is_dictionary(t):
        t = t.value_type
    if pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return pa.string()
    return t


def _check_same_schema(f: Path, schema: dict, ref_file: str, ref: dict) -> None:
    missing = [c for c in ref if c not in schema]
    if missing:
        raise DataError(f"{f}: lacks column(s) {', '.join(missing)} that {ref_file} has (partitions must share one schema)")
    extra = [c for c in schema if c not in ref]
    if extra:
        raise DataError(f"{f}: has column(s) {', '.join(extra)} that {ref_file} lacks (partitions must share one schema)")
    for c, t in ref.items():
        if schema[c] != t and not (pa.types.is_null(schema[c]) or pa.types.is_null(t)):
            raise DataError(f"{f}: column '{c}' is {schema[c]}, but {t} in {ref_file} (partitions must share one schema)")


def _partition_keys(f: Path, root: Path | None) -> dict[str, str]:
    if root is None:
        return {}
    keys = {}
    for part in f.relative_to(root).parts[:-1]:
        if "=" in part:
            k, v = part.split("=", 1)
            keys[k] = v
    return keys


def _rows(f: str) -> int:
    return pq.ParquetFile(f).metadata.num_rows


# -------------------------------------------------------------------------------------------- reading
def read_dataset(src: PartitionedSource, seed: int | None = None):
    """A lazy Ray Dataset over the source (blocks stream; nothing is gathered in the driver). With a seed the
    files are read in a seeded random order, so consecutive batches do not walk one partition after another
    (an all-to-all block shuffle would instead hold back every block until all are read: no streaming).

    Blocks are capped at READ_BLOCK_BYTES. Ray Data's default cap (128 MiB) let a read task merge files into
    blocks that grew with the data up to the cap (measured: 26 MB per block at 1M rows, 130 MB at 5M), and a
    training worker holds the whole block its current batch is sliced from: that was the growth of a
    worker's private memory with the data (benchmarks/RESULTS.md, "Ray Train scaling"). 4 MiB rather than
    16: with a bounded object store (`train --object-store-mb`), 16 MiB blocks (they came out at ~20 MB)
    overshot Ray Data's per-task back-pressure and spilled the store to disk; 4 MiB blocks fit it, and the
    worker's private memory stays flat from 1M to 5M rows at the same CPU cost per epoch."""
    import ray.data
    from ray.data.datasource import Partitioning

    if src.table is not None:
        return ray.data.from_pandas(src.table)
    files = list(src.files)
    if seed is not None:
        files = [files[i] for i in np.random.default_rng(seed).permutation(len(files))]
    partitioning = Partitioning("hive", base_dir=src.root) if src.partition_keys else None
    ds = ray.data.read_parquet(files, partitioning=partitioning)
    ds.context.target_max_block_size = READ_BLOCK_BYTES
    return ds


def to_frame(batch: pa.Table | pd.DataFrame, columns: list[str], partition_keys: list[str],
             missing_tokens: Iterable[str] = ()) -> pd.DataFrame:
    """One Ray Data batch as the internal pandas table: column order fixed, partition keys as text,
    numpy-backed dtypes (Ray's own pandas batches are Arrow-backed), missing tokens turned into NaN."""
    if isinstance(batch, pd.DataFrame):
        df = batch[columns]
    else:
        df = batch.select(columns).to_pandas()
    for k in partition_keys:
        df[k] = df[k].astype(str)
    return normalize_missing(df, missing_tokens)


def source_bytes(src: PartitionedSource) -> int:
    """Bytes on disk of a source's files (0 for a table already in memory)."""
    return sum(os.path.getsize(f) for f in src.files)


def read_whole(src: PartitionedSource, missing_tokens: Iterable[str] = ()) -> pd.DataFrame:
    """Every row of a validated source in one DataFrame (the in-process backend), in the layout a Ray worker
    sees: file columns, then the partition keys as text."""
    if src.table is not None:
        return src.table
    frames = []
    for f in src.files:
        df = pq.read_table(f).to_pandas()
        for k, v in src.partitions[f].items():
            df[k] = v
        frames.append(df)
    df = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    return to_frame(df, src.columns, src.partition_keys, missing_tokens)


# ------------------------------------------------------------------------------------------ statistics
def row_keys(df: pd.DataFrame, seed: int) -> np.ndarray:
    """A seeded pseudo-random key per row that depends only on the row's content (and the seed)."""
    key = f"ganstream{seed:07d}"[:16]
    return pd.util.hash_pandas_object(df, index=False, hash_key=key).to_numpy()


def sample_key_bound(total_rows: int, sample_rows: int = SAMPLE_ROWS) -> int | None:
    """The row-hash bound under which SAMPLE_OVERSHOOT x `sample_rows` of `total_rows` rows fall, expected
    (hashes are uniform over uint64); None when that is every row."""
    fraction = SAMPLE_OVERSHOOT * sample_rows / max(total_rows, 1)
    return None if fraction >= 1 else int(fraction * float(2**64 - 1))


def summarize(df: pd.DataFrame, seed: int, sample_rows: int = SAMPLE_ROWS, key_bound: int | None = None) -> dict:
    """The mergeable summary of one batch (see the module docstring); only rows hashed <= `key_bound` are
    sample candidates."""
    nulls, counts, integral, infinite = {}, {}, {}, {}
    for c in df.columns:
        s = df[c]
        observed = s.dropna()
        nulls[c] = int(len(s) - len(observed))
        if pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype):
            v = observed.to_numpy(dtype=np.float64)
            infinite[c] = int((~np.isfinite(v)).sum())
            integral[c] = bool(np.all(v[np.isfinite(v)] == np.round(v[np.isfinite(v)])))
            vc = observed.value_counts() if integral[c] else None
            counts[c] = None if vc is None or len(vc) > SMALL_INTEGER_LEVELS else {_python_value(k): int(n) for k, n in vc.items()}
        else:
            vc = observed.value_counts()
            counts[c] = None if len(vc) > MAX_CATEGORIES else {_python_value(k): int(n) for k, n in vc.items()}
    keys = row_keys(df, seed)
    candidates = np.arange(len(keys)) if key_bound is None else np.flatnonzero(keys <= np.uint64(key_bound))
    take = candidates[np.argsort(keys[candidates], kind="stable")[:sample_rows]]
    return {"rows": len(df), "nulls": nulls, "counts": counts, "integral": integral, "infinite": infinite,
            "keys": keys[take], "sample": df.iloc[take].reset_index(drop=True)}


@dataclass
class TableStats:
    rows: int
    nulls: dict[str, int]
    counts: dict[str, dict | None]
    integral: dict[str, bool]
    sample: pd.DataFrame

    @property
    def has_missing(self) -> bool:
        return any(self.nulls.values())


def merge_summaries(parts: list[dict], columns: list[str], sample_rows: int = SAMPLE_ROWS) -> TableStats:
    rows = sum(p["rows"] for p in parts)
    nulls = {c: sum(p["nulls"][c] for p in parts) for c in columns}
    counts: dict[str, dict | None] = {}
    for c in columns:
        merged: Counter | None = Counter()
        for p in parts:
            if p["counts"][c] is None:
                merged = None
                break
            merged.update(p["counts"][c])
        counts[c] = dict(merged) if merged is not None else None
    integral = {c: all(p["integral"].get(c, True) for p in parts) for c in columns if any(c in p["integral"] for p in parts)}
    for c in columns:
        bad = sum(p["infinite"].get(c, 0) for p in parts)
        if bad:
            raise DataError(f"column '{c}' has {bad} infinite value(s): replace them with a number or a missing value")
    keys = np.concatenate([p["keys"] for p in parts])
    sample = pd.concat([p["sample"] for p in parts], ignore_index=True)
    order = np.lexsort((np.arange(len(keys)), keys))[:sample_rows]
    return TableStats(rows, nulls, counts, integral, sample.iloc[order].reset_index(drop=True))


def gather_stats(src: PartitionedSource, ds, missing_tokens: Iterable[str], seed: int,
                 sample_rows: int = SAMPLE_ROWS) -> TableStats:
    """One parallel pass over DATA: a summary per batch (Ray tasks), merged here."""
    tokens = list(missing_tokens)
    columns, keys = list(src.columns), list(src.partition_keys)
    if src.table is not None:  # a CSV is already in this process: summarising it here skips a Ray Data pass
        return merge_summaries([summarize(to_frame(src.table, columns, keys, tokens), seed, sample_rows)], columns, sample_rows)

    def one_pass(key_bound):
        def summarize_batch(batch):
            df = to_frame(batch, columns, keys, tokens)
            return {"summary": np.array([summarize(df, seed, sample_rows, key_bound)], dtype=object)}
        parts = [r["summary"] for r in ds.map_batches(summarize_batch, batch_format="pyarrow", batch_size=65536).take_all()]
        return merge_summaries(parts, columns, sample_rows)

    bound = sample_key_bound(src.rows, sample_rows)
    stats = one_pass(bound)
    if bound is not None and len(stats.sample) < min(sample_rows, stats.rows):
        stats = one_pass(None)  # too few rows under the bound (duplicate rows hash alike): the exact pass
    return stats


def schema_from_stats(stats: TableStats, categorical: tuple[str, ...] = ()) -> TableSchema:
    """The schema `infer_schema` would give on the whole table: kinds and dtypes from the sample, missing
    rates and categories (with frequencies) exact from the merged counts. Identifiers and free text are found
    on the sample (a uniform one, so "nearly unique per row" is judged on rows drawn from all of DATA)."""
    specs, dropped = [], {}
    check_named_columns(categorical, list(stats.sample.columns))
    for c in stats.sample.columns:
        if stats.nulls[c] == stats.rows:
            raise DataError(f"column '{c}' is entirely missing: drop it or provide values")
        s = stats.sample[c]
        if s.isna().all():  # rarely-observed column: infer its kind from the values the counts saw
            s = pd.Series(list(stats.counts[c] or {}), dtype=object) if stats.counts.get(c) else s.astype(float).fillna(0.0)
        forced = c in categorical
        time = None if forced else detect_time(s)
        reason = None if forced or time is not None else unlearnable_reason(c, s)
        if reason is not None:
            dropped[c] = reason
            continue
        spec = infer_column(c, s, categorical=forced, time=time)
        spec.missing_rate = stats.nulls[c] / stats.rows
        if spec.kind == "integer" and not stats.integral.get(c, True):  # fractions outside the sample
            spec.kind, spec.categories, spec.frequencies = "numeric", None, None
        counts = stats.counts.get(c)
        if spec.is_discrete and counts is None:
            raise DataError(f"column '{c}' has more than {MAX_CATEGORIES} distinct values (max for a categorical column)")
        if spec.is_discrete or (spec.kind == "integer" and counts is not None and len(counts) <= SMALL_INTEGER_LEVELS):
            if spec.kind == "integer":
                counts = _int_keys(counts)
            order = sorted(counts.items(), key=lambda kv: (-kv[1], str(kv[0])))
            total = float(sum(counts.values()))
            spec.categories = [k for k, _ in order]
            spec.frequencies = [n / total for _, n in order]
        elif spec.kind == "integer":
            spec.categories = spec.frequencies = None
        specs.append(spec)
    if not specs:
        raise DataError(f"no column is left to learn from: {', '.join(f'{n} ({w})' for n, w in dropped.items())}; "
                        f"keep one with --categorical COL")
    return TableSchema(specs, dropped)


def _int_keys(counts: dict) -> dict:
    out: Counter = Counter()
    for k, n in counts.items():
        out[int(k)] += n
    return dict(out)
