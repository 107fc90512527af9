"""The augmentation lift (augment/lift.py) on a small real table: UCI Adult's first 3,000 rows train a model
(the session's 2-epoch fit), the next 1,500 are the holdout. `evaluate --lift` reports real-only vs real +
synthetic for three downstream learners; a tracked fit with --holdout measures it and `--gate lift_auc>=X`
gates on it; every bad request is one line, exit 2, and nothing written."""

import json

import numpy as np
import pandas as pd
import pytest
import yaml
from mlflow import MlflowClient

from ganstream.augment.lift import LEARNERS, Recipe, lift
from ganstream.pipeline.cli import main
from helpers import run
from mlflow_db import sqlite_uri

FAST = ["--missing-token", "?", "--epochs", "2", "--imputer-epochs", "1", "--batch-size", "100", "--seed", "0",
        "--target", "income"]
LOOSE = ["--gate", "detection_auc<=1", "--gate", "marginal_mean_distance<=1", "--gate", "utility_ratio=off"]


@pytest.fixture(scope="module")
def holdout_csv(tmp_path_factory):
    from conftest import ADULT
    path = tmp_path_factory.mktemp("lift") / "holdout.csv"
    pd.read_csv(ADULT).iloc[3000:4500].to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def model_dir(fitted_gan, tmp_path_factory):
    out = tmp_path_factory.mktemp("lift_model") / "model"
    fitted_gan.save(out)
    return out


def test_recipes_count_rows_as_stream_mix_does():
    y = pd.Series(["a"] * 70 + ["b"] * 20 + ["c"] * 10 + [None] * 5)
    assert Recipe().balance and Recipe().counts(y) == {"b": 50, "c": 60}  # the default: balance to the majority
    assert Recipe(fraction=0.5).counts(y) == {None: 105}  # as many synthetic rows as real ones
    assert Recipe(fraction=0.2).counts(y) == {None: 26} and not Recipe(fraction=0.2).balance
    for bad in (dict(fraction=0.0), dict(fraction=1.0), dict(fraction=-0.5)):
        with pytest.raises(Exception, match="fraction"):
            Recipe(**bad)


def test_lift_is_seeded_and_scores_both_arms_on_the_holdout(fitted_gan, adult_small, holdout_csv):
    from ganstream.trainers.table_io import read_table
    hold, real = read_table(holdout_csv, ["?"]), adult_small.iloc[:1000]
    a = lift(fitted_gan, real, hold, "income", Recipe(fraction=0.5), seed=0)
    assert set(a["learners"]) == set(LEARNERS) and a["rows_synthetic"] == len(real)
    for v in a["learners"].values():
        assert 0.5 < v["real"]["roc_auc"] <= 1 and 0 <= v["augmented"]["f1_minority"] <= 1
        assert v["lift"]["roc_auc"] == pytest.approx(v["augmented"]["roc_auc"] - v["real"]["roc_auc"])
    assert a["lift_auc"] == pytest.approx(np.mean([v["lift"]["roc_auc"] for v in a["learners"].values()]))
    b = lift(fitted_gan, real, hold, "income", Recipe(fraction=0.5), seed=0)
    assert {k: v for k, v in a.items() if k != "seconds"} == {k: v for k, v in b.items() if k != "seconds"}
    balanced = lift(fitted_gan, real, hold, "income", seed=0)  # the default recipe
    counts = real["income"].value_counts()
    assert balanced["rows_synthetic"] == counts.max() - counts.min()


def test_evaluate_lift_on_the_command_line(model_dir, small_csv, holdout_csv, capsys):
    code, out, err = run(["evaluate", model_dir, "--real", small_csv, "--holdout", holdout_csv, "--missing-token", "?",
                          "--target", "income", "--lift", "--max-rows", "1000", "--json"], capsys)
    assert code == 0, err
    report = json.loads(out)["lift"]
    assert report["recipe"] == "balance to the majority class" and report["rows_holdout"] == 1500  # the default
    assert report["rows_real"] == 1000 and set(report["learners"]) == set(LEARNERS)


@pytest.mark.parametrize("extra, message", [
    (["--target", "salary", "--lift"], "--target column 'salary' is not in"),
    (["--target", "income"], "--lift needs a tabular model, --target COL and --holdout DATA"),
    (["--lift"], "--lift needs a tabular model, --target COL and --holdout DATA"),
    (["--target", "income", "--balance"], "add --lift"),
    (["--target", "income", "--lift", "--synthetic-fraction", "1.5"], "synthetic fraction must be in (0, 1)"),
])
def test_bad_lift_requests_fail_with_one_line(model_dir, small_csv, holdout_csv, extra, message, capsys):
    hold = [] if extra == ["--target", "income"] or extra == ["--lift"] else ["--holdout", holdout_csv]
    if extra == ["--target", "income"]:
        extra = ["--target", "income", "--lift"]
    code, out, err = run(["evaluate", model_dir, "--real", small_csv, "--missing-token", "?", *hold, *extra], capsys)
    assert code == 2 and message in err and err.count("\n") == 1 and out == "", err


def test_lift_gate_refuses_a_generator_that_does_not_help(holdout_csv, tmp_path, monkeypatch, capsys):
    """`--gate lift_auc>=1` cannot be met (AUC is at most 1, and real-only scores above 0.5): the run is logged
    with its lift, exit 3, nothing registered (the gate's pass path is the one every key shares)."""
    from conftest import ADULT
    pd.read_csv(ADULT).iloc[:600].to_csv(tmp_path / "train.csv", index=False)
    monkeypatch.chdir(tmp_path)
    uri = sqlite_uri(tmp_path / 'mlflow.db')
    code, _, err = run(["train", tmp_path / "train.csv", *FAST, "--holdout", holdout_csv, "--tracking-uri", uri,
                        "--register", "helps", *LOOSE, "--out", tmp_path / "a", "--gate", "lift_auc>=1"], capsys)
    assert code == 3 and "lift_auc=" in err and "needs >= 1" in err and err.count("\n") == 1, err
    client = MlflowClient(uri, uri)
    assert client.search_registered_models() == []
    (logged,) = client.search_runs([client.get_experiment_by_name("ganstream").experiment_id])
    assert -1 <= logged.data.metrics["lift_auc"] < 1


@pytest.mark.parametrize("extra, message", [
    (["--gate", "lift_auc>=0"], "--gate lift_auc needs --target and --holdout DATA"),
    (["--holdout", "nowhere.csv"], "--holdout nowhere.csv: no such file or directory"),
])
def test_bad_lift_gate_requests_fail_before_the_fit(small_csv, tmp_path, monkeypatch, extra, message, capsys):
    monkeypatch.chdir(tmp_path)
    code, _, err = run(["train", small_csv, *FAST, "--out", tmp_path / "m", "--register", "x",
                        "--tracking-uri", f"sqlite:///{tmp_path / 'b.db'}", *extra], capsys)
    assert code == 2 and message in err and err.count("\n") == 1, err
    assert not (tmp_path / "m").exists() and not (tmp_path / "b.db").exists()


def test_holdout_needs_tracking(small_csv, holdout_csv, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code, _, err = run(["train", small_csv, *FAST, "--out", tmp_path / "m", "--holdout", holdout_csv], capsys)
    assert code == 2 and "--holdout applies to tracked fits" in err and not (tmp_path / "m").exists(), err


def test_job_file_lift_gate_needs_a_holdout(tmp_path, capsys):
    from conftest import ADULT
    pd.read_csv(ADULT).iloc[:300].to_csv(tmp_path / "data.csv", index=False)
    job = {"name": "lift-job", "data": {"path": "data.csv", "missing_tokens": ["?"]},
           "model": {"kind": "tabular", "target": "income"}, "fit": {"epochs": 1},
           "gate": {"lift_auc": ">= 0"}, "registry": {"name": "m"}, "tracking": {"uri": f"sqlite:///{tmp_path}/m.db"}}
    (tmp_path / "job.yaml").write_text(yaml.safe_dump(job))
    code, _, err = run(["run", tmp_path / "job.yaml"], capsys)
    assert code == 2 and "job.yaml: gate.lift_auc: needs model.target and data.holdout" in err, err
    job["data"]["holdout"] = "missing.csv"
    (tmp_path / "job.yaml").write_text(yaml.safe_dump(job))
    code, _, err = run(["run", tmp_path / "job.yaml"], capsys)
    assert code == 2 and "job.yaml: data.holdout: no such file or directory" in err, err
    assert not (tmp_path / "m.db").exists()
