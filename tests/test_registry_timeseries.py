"""A time-series fit as an MLflow run and a registered version (embedded sqlite store, real MLflow): the
TimeGAN-protocol figures are logged and gated, and the pyfunc model samples sequences and continues a
history given as data."""

from types import SimpleNamespace

import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient

from ganstream.pipeline.cli import main
from test_timeseries import sines
from mlflow_db import sqlite_uri

LOOSE = ["--gate", "discriminative_score<=1", "--gate", "predictive_ratio<=100", "--gate", "marginal_mean_distance<=1"]


@pytest.fixture(scope="module")
def registered(tmp_path_factory):
    d = tmp_path_factory.mktemp("ts_registry")
    data = d / "sines.csv"
    sines(n_series=20, length=16, gap_share=0.1, seed=3).drop(columns="group").to_csv(data, index=False)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(d)
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        mp.setenv("GANSTREAM_CACHE_DIR", str(d / "cache"))
        code = main(["--quiet", "train", str(data), "--kind", "timeseries", "--seq-len", "6", "--id-col", "id",
                     "--time-col", "t", "--epochs", "2", "--batch-size", "32", "--out", str(d / "model"),
                     "--register", "sines", *LOOSE])
    assert code == 0
    return SimpleNamespace(dir=d, data=data, uri=sqlite_uri(d / 'mlflow.db'))


def test_timeseries_run_logs_timegan_figures_and_registers(registered, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", registered.uri)
    monkeypatch.setenv("GANSTREAM_CACHE_DIR", str(registered.dir / "cache2"))
    client = MlflowClient(registered.uri, registered.uri)
    mv = client.get_model_version_by_alias("sines", "champion")
    run = client.get_run(mv.run_id)
    for key in ("discriminative_score", "predictive_score", "predictive_ratio", "marginal_mean_distance"):
        assert 0 <= run.data.metrics[key] < 100, key
    assert run.data.tags["gate"] == "passed" and run.data.tags["ganstream.kind"] == "timeseries"
    plots = {a.path for a in client.list_artifacts(mv.run_id, "plots")}
    assert {"plots/loss_curves.png", "plots/series.png"} <= plots

    gen = mlflow.pyfunc.load_model("models:/sines@champion")
    seqs = gen.predict(pd.DataFrame({"rows": [3, 2], "seed": [0, 1]}))
    assert list(seqs.columns) == ["series_id", "step", "f0", "f1", "f2"] and len(seqs) == 5 * 6
    assert sorted(seqs["series_id"].unique()) == [0, 1, 2, 3, 4]  # unique across the two requests
    history = pd.read_csv(registered.data)
    history = history[history["id"].isin(["s1", "s2"])]
    futures = gen.predict(history, params={"horizon": 4, "draws": 3, "seed": 2})
    assert list(futures.columns) == ["series_id", "draw", "step", "f0", "f1", "f2"] and len(futures) == 2 * 3 * 4
    again = gen.predict(history, params={"horizon": 4, "draws": 3, "seed": 2})
    pd.testing.assert_frame_equal(futures, again)  # seeded
    with pytest.raises(Exception, match="horizon"):
        gen.predict(history)


def test_timeseries_gate_refusal_registers_nothing(registered, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", registered.uri)
    code = main(["--quiet", "train", str(registered.data), "--kind", "timeseries", "--seq-len", "6", "--id-col", "id",
                 "--time-col", "t", "--epochs", "1", "--batch-size", "32", "--out", str(tmp_path / "m"),
                 "--register", "sines", "--gate", "predictive_ratio<=0"])
    err = capsys.readouterr().err
    assert code == 3 and "predictive_ratio" in err and len(err.strip().splitlines()) == 1
    client = MlflowClient(registered.uri, registered.uri)
    assert [str(v.version) for v in client.search_model_versions("name='sines'")] == ["1"]
    assert str(client.get_model_version_by_alias("sines", "champion").version) == "1"
