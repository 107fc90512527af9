"""`train --kind timeseries`, `sample` and `extend` end to end on tiny real files, and the bad inputs they
promise to refuse: one readable line on stderr, exit status 2, no output written."""

import numpy as np
import pandas as pd
import pytest

from ganstream.pipeline.cli import main
from helpers import run
from test_timeseries import sines



@pytest.fixture(scope="module")
def data_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("ts") / "sines.csv"
    sines(n_series=20, length=16, gap_share=0.1, seed=3).to_csv(path, index=False)  # gaps are empty cells
    return path


@pytest.fixture(scope="module")
def ts_dir(tmp_path_factory, data_csv):
    out = tmp_path_factory.mktemp("ts_model") / "model"
    assert main(["--quiet", "train", str(data_csv), "--kind", "timeseries", "--seq-len", "6", "--id-col", "id",
                 "--time-col", "t", "--static-col", "group", "--epochs", "2", "--batch-size", "32", "--seed", "0",
                 "--out", str(out)]) == 0
    return out


def test_train_sample_extend_end_to_end(ts_dir, data_csv, tmp_path, capsys):
    assert (ts_dir / "model.json").is_file() and (ts_dir / "generator.safetensors").is_file()
    code, _, _ = run(["sample", ts_dir, "--rows", 5, "--seed", 1, "--out", tmp_path / "s.parquet"], capsys)
    assert code == 0
    s = pd.read_parquet(tmp_path / "s.parquet")
    assert list(s.columns) == ["id", "t", "f0", "f1", "f2", "group"] and len(s) == 5 * 6  # the user's names
    assert s["id"].str.startswith("synthetic-").all() and s["t"].tolist()[:6] == list(range(6))

    real = pd.read_csv(data_csv)
    real[real["id"].isin(["s1", "s2"])].to_csv(tmp_path / "hist.csv", index=False)
    code, _, err = run(["extend", ts_dir, "--history", tmp_path / "hist.csv", "--horizon", 4, "--draws", 3,
                        "--seed", 2, "--out", tmp_path / "e.csv"], capsys)
    assert code == 0, err
    e = pd.read_csv(tmp_path / "e.csv")
    assert list(e.columns) == ["id", "draw", "t", "f0", "f1", "f2"] and len(e) == 2 * 3 * 4
    assert set(e["id"]) == {"s1", "s2"} and sorted(e["t"].unique()) == [16, 17, 18, 19]


def test_dates_and_integer_ids_continue_on_their_grid(tmp_path, capsys):
    """Weekly ISO dates and integer store ids: samples and continuations keep both, on the weekly grid."""
    frame = sines(n_series=12, length=20, seed=5).drop(columns="group")
    frame["id"] = frame["id"].str[1:].astype(int) + 100
    frame["t"] = (pd.Timestamp("2025-01-06") + pd.to_timedelta(frame["t"] * 7, unit="D")).dt.strftime("%Y-%m-%d")
    frame.to_csv(tmp_path / "weekly.csv", index=False)
    code, _, err = run(["train", tmp_path / "weekly.csv", "--kind", "timeseries", "--seq-len", 6, "--id-col", "id",
                        "--time-col", "t", "--epochs", 1, "--out", tmp_path / "m"], capsys)
    assert code == 0, err
    code, _, err = run(["sample", tmp_path / "m", "--rows", 3, "--steps", 10, "--out", tmp_path / "s.csv"], capsys)
    assert code == 0, err
    s = pd.read_csv(tmp_path / "s.csv")
    assert len(s) == 3 * 10 and s["id"].tolist()[:1] == [0] and s["t"].iloc[0] == "2025-01-06"
    assert (pd.to_datetime(s["t"]).diff().dt.days.iloc[1:10] == 7).all()
    hist = frame[frame["id"] == 103].iloc[:15]
    hist.to_csv(tmp_path / "h.csv", index=False)
    code, _, err = run(["extend", tmp_path / "m", "--history", tmp_path / "h.csv", "--horizon", 3, "--draws", 2,
                        "--out", tmp_path / "e.csv"], capsys)
    assert code == 0, err
    e = pd.read_csv(tmp_path / "e.csv")
    last = pd.Timestamp(hist["t"].iloc[-1])
    assert set(e["id"]) == {103}
    assert sorted(e["t"].unique()) == [(last + pd.Timedelta(days=7 * k)).strftime("%Y-%m-%d") for k in (1, 2, 3)]
    code, _, err = run(["sample", tmp_path / "m", "--rows", 3, "--missing", "fill", "--out", tmp_path / "x.csv"], capsys)
    assert code == 2 and "--missing applies to tabular models only" in err and not (tmp_path / "x.csv").exists()


def test_same_seed_same_files(ts_dir, data_csv, tmp_path, capsys):
    for name in ("a.csv", "b.csv"):
        assert run(["sample", ts_dir, "--rows", 4, "--seed", 7, "--out", tmp_path / name], capsys)[0] == 0
        assert run(["extend", ts_dir, "--history", data_csv, "--horizon", 2, "--draws", 2, "--seed", 7,
                    "--out", tmp_path / f"x{name}"], capsys)[0] == 0
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    assert (tmp_path / "xa.csv").read_bytes() == (tmp_path / "xb.csv").read_bytes()


def test_wide_single_series_without_id(tmp_path, capsys):
    t = np.arange(120)
    pd.DataFrame({"load": np.sin(0.2 * t), "temp": np.cos(0.2 * t)}).to_csv(tmp_path / "wide.csv", index=False)
    code, _, err = run(["train", tmp_path / "wide.csv", "--kind", "timeseries", "--seq-len", 10, "--epochs", 1,
                        "--out", tmp_path / "m"], capsys)
    assert code == 0, err
    pd.DataFrame({"load": [0.1, 0.3], "temp": [0.9, 0.8]}).to_csv(tmp_path / "h.csv", index=False)
    assert run(["extend", tmp_path / "m", "--history", tmp_path / "h.csv", "--horizon", 3, "--draws", 2,
                "--out", tmp_path / "e.csv"], capsys)[0] == 0
    e = pd.read_csv(tmp_path / "e.csv")
    assert list(e["series_id"].unique()) == [0] and list(e["step"][:3]) == [2, 3, 4]


def _bad_train(data_csv, tmp_path):
    too_short = tmp_path / "short.csv"
    sines(n_series=2, length=4).to_csv(too_short, index=False)
    unsorted = tmp_path / "unsorted.csv"
    pd.read_csv(data_csv).iloc[::-1].to_csv(unsorted, index=False)
    empty_feature = tmp_path / "empty_feature.csv"
    pd.read_csv(data_csv).assign(f2=np.nan).to_csv(empty_feature, index=False)
    base = ["--kind", "timeseries", "--id-col", "id", "--time-col", "t", "--static-col", "group"]
    return [
        ([too_short, *base, "--seq-len", 6], "no series has at least --seq-len 6"),
        ([unsorted, *base, "--seq-len", 6], "not increasing within series"),
        ([data_csv, "--kind", "timeseries", "--seq-len", 6, "--id-col", "nope"], "--id-col 'nope' is not a column"),
        ([data_csv, "--kind", "timeseries", "--seq-len", 6, "--time-col", "when"], "--time-col 'when' is not a column"),
        ([empty_feature, *base, "--seq-len", 6], "f2 have no observed value"),
        ([data_csv, *base], "needs --seq-len"),
        ([data_csv, *base, "--seq-len", 6, "--pac", 5], "--pac apply to tabular models only"),
        ([data_csv, "--seq-len", 6], "--seq-len only apply with --kind timeseries"),
    ]


def test_bad_training_input_is_refused(data_csv, tmp_path, capsys):
    for argv, message in _bad_train(data_csv, tmp_path):
        out = tmp_path / "never"
        code, _, err = run(["train", *argv, "--epochs", 1, "--out", out], capsys)
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1, (argv, err)
        assert not out.exists()


def test_bad_sample_and_extend_input_is_refused(ts_dir, data_csv, tmp_path, capsys):
    real = pd.read_csv(data_csv)
    cases = {
        "unknown.csv": (real.assign(pressure=1.0), "pressure are not known to the model"),
        "no_id.csv": (real.drop(columns="id"), "missing column(s) id"),
        "all_missing.csv": (real.assign(f0=np.nan, f1=np.nan, f2=np.nan), "has no observed value"),
    }
    for name, (frame, message) in cases.items():
        frame.to_csv(tmp_path / name, index=False)
        code, _, err = run(["extend", ts_dir, "--history", tmp_path / name, "--horizon", 2, "--out", tmp_path / "o.csv"], capsys)
        assert code == 2 and message in err, (name, err)
    code, _, err = run(["sample", ts_dir, "--rows", 3, "--condition", "group=fast", "--out", tmp_path / "o.csv"], capsys)
    assert code == 2 and "--condition applies to tabular models only" in err
    with pytest.raises(SystemExit) as exit_info:  # argparse rejects it while parsing
        run(["extend", ts_dir, "--history", data_csv, "--horizon", 0, "--out", tmp_path / "o.csv"], capsys)
    assert exit_info.value.code == 2 and "--horizon must be >= 1" in capsys.readouterr().err
    assert not (tmp_path / "o.csv").exists()


def test_evaluate_a_time_series_model(ts_dir, data_csv, capsys):
    """TimeGAN's two scores, the continuation band's coverage and the default gate's verdicts, as JSON and text."""
    import json
    code, out, err = run(["evaluate", ts_dir, "--real", data_csv, "--json"], capsys)
    assert code == 0, err
    report = json.loads(out)
    assert 0 <= report["discriminative_score"] <= 0.5 and report["predictive_score"] > 0
    assert 0 <= report["continuation_coverage80"] <= 1 and report["continuation_cuts"] == 200  # 10 cuts in each of 20 series
    assert {c["key"] for c in report["verdicts"]["checks"]} >= {"discriminative_score", "predictive_ratio"}
    code, out, err = run(["evaluate", ts_dir, "--real", data_csv], capsys)
    assert code == 0 and "continuation coverage" in out and "default gate" in out
