"""Partitioned input: discovery and validation from file footers (every bad case names its file), and the
one-pass statistics: merged per-batch summaries must give the schema a whole-table inference gives, and
the bounded sample must not depend on how the rows were split into batches. One test reads a real hive
directory through Ray Data."""

import os

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ganstream.trainers.errors import DataError
from ganstream.trainers.backends.partitioned import discover, merge_summaries, schema_from_stats, summarize
from ganstream.trainers.schema import infer_schema



def table(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"x": rng.normal(size=n), "k": rng.integers(0, 6, n),
                       "c": rng.choice(["a", "b", "rare"], n, p=[0.6, 0.39, 0.01]),
                       "big": rng.integers(0, 10_000, n)})
    df.loc[rng.random(n) < 0.1, "x"] = np.nan
    df["c"] = df["c"].astype(object)
    df.loc[rng.random(n) < 0.05, "c"] = None
    return df


def write_hive(root, parts: dict[tuple[str, str], pd.DataFrame]):
    for (region, day), df in parts.items():
        d = root / f"region={region}" / f"day={day}"
        d.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pandas(df, preserve_index=False), d / "part-0.parquet")
    return root


@pytest.fixture
def hive(tmp_path):
    return write_hive(tmp_path / "data", {("eu", "d1"): table(300, 1), ("eu", "d2"): table(200, 2),
                                          ("us", "d1"): table(250, 3)})


def test_discover_hive_directory(hive):
    src = discover(hive)
    assert src.columns == ["x", "k", "c", "big", "region", "day"]
    assert src.partition_keys == ["region", "day"] and src.rows == 750 and len(src.files) == 3
    assert src.partition_values("region") == ["eu", "us"]
    assert src.restrict("region", "eu").rows == 500
    with pytest.raises(DataError, match="'k' is not a partition column"):
        src.partition_values("k")


def test_empty_partition_is_skipped_and_reported(hive):
    write_hive(hive, {("us", "d2"): table(0)})
    src = discover(hive)
    assert src.rows == 750 and len(src.skipped) == 1 and "region=us/day=d2" in src.skipped[0]
    assert all("d2" not in f or "eu" in f for f in src.files)


def test_all_partitions_empty(tmp_path):
    write_hive(tmp_path, {("eu", "d1"): table(0)})
    with pytest.raises(DataError, match="every Parquet file is empty"):
        discover(tmp_path)


@pytest.mark.parametrize("change, message", [
    (lambda df: df.assign(k=df["k"].astype(str)), "column 'k' is string, but int64"),
    (lambda df: df.drop(columns=["big"]), "lacks column(s) big"),
    (lambda df: df.assign(extra=1.0), "has column(s) extra"),
])
def test_disagreeing_partition_schema_names_the_file(hive, change, message):
    write_hive(hive, {("us", "d2"): change(table(50, 4))})
    with pytest.raises(DataError) as e:
        discover(hive)
    assert "region=us/day=d2/part-0.parquet" in str(e.value) and message in str(e.value)


def test_corrupt_parquet_names_the_file(hive):
    bad = hive / "region=us" / "day=d3"
    bad.mkdir(parents=True)
    (bad / "part-0.parquet").write_bytes(b"PAR1 not really parquet")
    with pytest.raises(DataError, match=r"region=us/day=d3/part-0.parquet: cannot read Parquet file"):
        discover(hive)


def test_mixed_partition_keys_name_the_file(hive):
    d = hive / "region=us" / "part-9.parquet"
    pq.write_table(pa.Table.from_pandas(table(10), preserve_index=False), d)
    with pytest.raises(DataError, match="part-9.parquet: partition keys"):
        discover(hive)


def test_list_of_files(hive):
    files = sorted(str(p) for p in hive.rglob("*.parquet"))
    src = discover(files)
    assert src.rows == 750 and src.partition_keys == [] and len(src.files) == 3
    with pytest.raises(DataError, match="no such file"):
        discover([*files, str(hive / "nope.parquet")])


def test_merged_summaries_give_the_whole_table_schema():
    df = table(5000, 7)
    chunks = np.array_split(np.arange(len(df)), 7)
    stats = merge_summaries([summarize(df.iloc[c].reset_index(drop=True), seed=0, sample_rows=800) for c in chunks],
                            list(df.columns), sample_rows=800)
    merged, whole = schema_from_stats(stats), infer_schema(df)
    for name in df.columns:
        a, b = merged[name], whole[name]
        assert (a.kind, a.categories) == (b.kind, b.categories), name
        assert a.missing_rate == pytest.approx(b.missing_rate)
        if b.frequencies:
            assert a.frequencies == pytest.approx(b.frequencies)
    assert merged["c"].categories[-1] == "rare"  # exact counts: a 1% category is never lost to sampling
    assert len(stats.sample) == 800


def test_bounded_sample_does_not_depend_on_batching():
    df = table(3000, 8)

    def sample(n_chunks):
        chunks = np.array_split(np.arange(len(df)), n_chunks)
        return merge_summaries([summarize(df.iloc[c].reset_index(drop=True), seed=3, sample_rows=500) for c in chunks],
                               list(df.columns), sample_rows=500).sample

    a, b = sample(1), sample(9)
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(df.iloc[:500].reset_index(drop=True))  # a random sample, not the first rows


def test_infinite_values_are_reported():
    df = table(100).assign(x=lambda d: d["x"].where(d.index != 5, np.inf))
    with pytest.raises(DataError, match="'x' has 1 infinite"):
        merge_summaries([summarize(df, seed=0)], list(df.columns))


@pytest.mark.xdist_group("ray")
@pytest.mark.usefixtures("ray_first_fit")  # the session's Ray cluster
def test_ray_data_pass_over_a_hive_directory(hive):
    """Through Ray Data: partition keys arrive as text categories, counts are exact across files."""
    from ganstream.trainers.backends.partitioned import gather_stats, read_dataset
    from ganstream.trainers.backends.ray_cluster import ray_cluster

    src = discover(hive)
    with ray_cluster():
        stats = gather_stats(src, read_dataset(src), missing_tokens=(), seed=0)
    schema = schema_from_stats(stats)
    assert stats.rows == 750 and schema["region"].kind == "categorical"
    assert schema["region"].categories == ["eu", "us"] and schema["region"].frequencies == pytest.approx([500 / 750, 250 / 750])
    assert schema["day"].categories == ["d1", "d2"]
    assert stats.nulls["x"] == sum(int(table(n, s)["x"].isna().sum()) for n, s in ((300, 1), (200, 2), (250, 3)))


def test_hash_bound_keeps_the_same_sample():
    """Batches that ship only rows under `sample_key_bound` merge to exactly the sample of the unbounded pass,
    while shipping a small fraction of the rows (what kept the statistics pass from spilling the store)."""
    from ganstream.trainers.backends.partitioned import sample_key_bound

    df = table(20_000, 9)
    chunks = np.array_split(np.arange(len(df)), 10)
    bound = sample_key_bound(len(df), 300)
    parts = {b: [summarize(df.iloc[c].reset_index(drop=True), seed=4, sample_rows=300, key_bound=b) for c in chunks]
             for b in (None, bound)}
    shipped = {b: sum(len(p["sample"]) for p in ps) for b, ps in parts.items()}
    assert shipped[None] == 3000 and shipped[bound] < 1000, shipped
    a, b = (merge_summaries(parts[k], list(df.columns), sample_rows=300).sample for k in (None, bound))
    pd.testing.assert_frame_equal(a, b)
    assert sample_key_bound(500, 300) is None  # small data: every row is a candidate


@pytest.mark.xdist_group("ray")
@pytest.mark.usefixtures("ray_first_fit")
def test_ray_data_pass_falls_back_when_too_few_rows_fall_under_the_bound(tmp_path, monkeypatch):
    """Equal rows hash alike, so a table of repeated rows can have (nearly) none under the bound; a tiny
    overshoot makes that certain here. The pass then runs again without the bound: a full sample."""
    import ganstream.trainers.backends.partitioned as partitioned
    from ganstream.trainers.backends.ray_cluster import ray_cluster

    same = pd.DataFrame({"x": [1.5] * 400, "c": ["a"] * 400})
    src = discover(write_hive(tmp_path / "dup", {("eu", "d1"): same, ("us", "d1"): same}))
    monkeypatch.setattr(partitioned, "SAMPLE_OVERSHOOT", 1e-9)
    passes = []
    merge = partitioned.merge_summaries
    monkeypatch.setattr(partitioned, "merge_summaries", lambda parts, *a: passes.append(len(parts)) or merge(parts, *a))
    with ray_cluster():
        stats = partitioned.gather_stats(src, partitioned.read_dataset(src), missing_tokens=(), seed=0, sample_rows=100)
    assert len(passes) == 2, "the bounded pass came up short and the exact pass ran"
    assert len(stats.sample) == 100 and stats.rows == 800
