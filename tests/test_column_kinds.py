"""Column kinds on real files: dates and timestamps are learned as numbers and written back in the input's type
and format; identifiers and free text are not learned (so never copied into samples) unless `--categorical`
keeps them; `train` prints each column's kind and missing rate."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ganstream import TabularGAN, evaluate
from ganstream.pipeline.cli import main
from ganstream.trainers.backends.partitioned import merge_summaries, schema_from_stats, summarize
from ganstream.trainers.errors import ConfigError
from ganstream.trainers.table_io import read_table, write_table
from helpers import run

ROWS = 600


def _table(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2024-03-01 00:00:00")
    seconds = rng.integers(0, 200 * 86_400, ROWS)
    x = rng.normal(size=ROWS)
    return pd.DataFrame({
        "order_id": rng.permutation(np.arange(50_000, 50_000 + ROWS)),
        "placed": (start + pd.to_timedelta(seconds, unit="s")).strftime("%Y-%m-%d %H:%M:%S"),
        "amount": np.round(20 + 5 * x + seconds / 86_400 / 20, 2),
        "channel": rng.choice(["web", "shop", "phone"], ROWS),
    })


@pytest.fixture(scope="module")
def csv_fit(tmp_path_factory):
    path = tmp_path_factory.mktemp("kinds") / "orders.csv"
    _table().to_csv(path, index=False)
    table = read_table(path)
    model = TabularGAN(epochs=4, batch_size=200).fit(table)
    return path, table, model


def test_timestamps_are_new_values_in_range_and_ids_are_not_learned(csv_fit):
    _, table, model = csv_fit
    assert model.encoder.schema["placed"].kind == "datetime"
    assert "order_id" in model.encoder.schema.dropped
    out = model.sample(2_000, seed=3)
    assert "order_id" not in out.columns  # no sampled row can hold a training id
    parsed = pd.to_datetime(out["placed"], format="%Y-%m-%d %H:%M:%S")  # the input's own text layout
    real = pd.to_datetime(table["placed"])
    assert parsed.min() >= real.min() and parsed.max() <= real.max()
    assert out["placed"].isin(set(table["placed"])).mean() < 0.01
    assert out["placed"].str.len().eq(19).all()


def test_same_seed_same_timestamps_and_evaluate_runs(csv_fit):
    _, table, model = csv_fit
    a, b = model.sample(300, seed=5), model.sample(300, seed=5)
    pd.testing.assert_frame_equal(a, b)
    report = evaluate(model, table, seed=0)
    assert "placed" in report.data["marginals"]  # compared as a number, not as 600 one-row categories


def test_imputing_a_timestamp_fills_holes_only(csv_fit):
    _, table, model = csv_fit
    holed = table.copy()
    holed.loc[::7, "placed"] = None
    holed.loc[::5, "amount"] = np.nan
    gan = TabularGAN(epochs=2, batch_size=200).fit(holed)
    filled = gan.impute(holed, draws=2, seed=1)
    for f in filled:
        observed = holed["placed"].notna()
        assert f.loc[observed, "placed"].tolist() == holed.loc[observed, "placed"].tolist()
        assert f["placed"].notna().all()
        pd.to_datetime(f["placed"], format="%Y-%m-%d %H:%M:%S")
        assert f["order_id"].tolist() == holed["order_id"].tolist()  # not learned, left as it was


def test_parquet_dates_and_zoned_timestamps_keep_their_types(tmp_path, capsys):
    rng = np.random.default_rng(1)
    days = rng.integers(0, 900, ROWS)
    table = pd.DataFrame({
        "day": [dt.date(2023, 1, 1) + dt.timedelta(days=int(d)) for d in days],
        "at": pd.DatetimeIndex(pd.Timestamp("2024-06-01", tz="Europe/Paris")
                               + pd.to_timedelta(rng.integers(0, 10**7, ROWS), unit="s")).as_unit("us"),
        "v": rng.normal(size=ROWS),
    })
    src = tmp_path / "t.parquet"
    write_table(table, src)
    model = TabularGAN(epochs=2, batch_size=200).fit(read_table(src))
    assert model.encoder.schema["day"].label == "date"
    out = model.sample(500, seed=0)
    write_table(out, tmp_path / "s.parquet")
    back = pq.read_schema(tmp_path / "s.parquet")
    assert back.field("day").type == pa.date32()
    assert back.field("at").type == pa.timestamp("us", tz="Europe/Paris")
    assert out["day"].map(type).eq(dt.date).all()
    model.save(tmp_path / "model")
    code, _, err = run(["stream", tmp_path / "model", "--rows", 700, "--shard-rows", 300, "--sink", tmp_path / "shards"],
                       capsys)
    assert code == 0, err
    shards = pq.read_table(tmp_path / "shards")
    assert shards.num_rows == 700 and shards.schema.field("day").type == pa.date32()
    assert shards.schema.field("at").type == pa.timestamp("us", tz="Europe/Paris")


def test_long_text_is_dropped_and_never_copied():
    rng = np.random.default_rng(2)
    table = pd.DataFrame({"x": rng.normal(size=200), "comment": rng.choice(["ok", "late", "broken"], 200)})
    table.loc[7, "comment"] = "y" * 1_000_000  # one 1 MB cell
    model = TabularGAN(epochs=1, batch_size=100).fit(table)
    assert model.encoder.schema.dropped["comment"].startswith("free text")
    assert "comment" not in model.sample(100).columns


def test_categorical_option_keeps_an_identifier_as_a_category():
    table = _table()
    model = TabularGAN(epochs=1, batch_size=200, categorical=["order_id"]).fit(table)
    assert model.encoder.schema["order_id"].kind == "categorical"
    out = model.sample(50, seed=0)
    assert out["order_id"].isin(set(table["order_id"])).all()  # what the user asked for: training values
    with pytest.raises(ConfigError, match="no column named 'nope'"):
        TabularGAN(epochs=1, categorical=["nope"]).fit(table)


def test_the_distributed_schema_drops_the_same_columns():
    table = _table()
    stats = merge_summaries([summarize(table, seed=0)], list(table.columns))
    schema = schema_from_stats(stats)
    assert list(schema.dropped) == ["order_id"] and schema["placed"].kind == "datetime"


def test_train_prints_the_schema_and_refuses_unknown_columns(csv_fit, tmp_path, capsys):
    path, _, _ = csv_fit
    code = main(["train", str(path), "--out", str(tmp_path / "m"), "--epochs", "1", "--batch-size", "200"])
    out, err = capsys.readouterr()
    assert code == 0, err
    text = out + err
    assert "placed" in text and "datetime" in text and "order_id" in text and "dropped: identifier" in text
    code, out, err = run(["train", path, "--out", tmp_path / "bad", "--epochs", "1", "--categorical", "nope"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "nope" in err
    assert not (tmp_path / "bad").exists()
