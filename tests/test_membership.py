"""The membership-inference audit (augment/membership.py) on real rows of UCI Adult: an attacker that holds only
the synthetic rows gets no signal from a generator that samples each column on its own, and all of it from one
that copies its training rows; `evaluate --holdout` reports it and the gate key `membership_auc` uses it."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from ganstream.augment.membership import membership_audit
from ganstream.deploy.gate import parse_gates
from ganstream.pipeline.cli import main
from ganstream.trainers.errors import ConfigError, DataError
from ganstream.trainers.table_io import read_table
from conftest import ADULT
from helpers import run


@pytest.fixture(scope="module")
def split():
    df = read_table(ADULT, ["?"])
    order = np.random.default_rng(0).permutation(len(df))
    return df.iloc[order[:3000]].reset_index(drop=True), df.iloc[order[3000:7000]].reset_index(drop=True)


def test_independent_marginals_give_no_signal_and_copies_give_it_all(split):
    train, holdout = split
    rng = np.random.default_rng(1)
    marginals = pd.DataFrame({c: train[c].to_numpy()[rng.integers(0, len(train), len(train))] for c in train.columns})
    blind = membership_audit(train, holdout, marginals, seed=0)
    assert abs(blind["membership_auc_distance"] - 0.5) < 0.05 and abs(blind["membership_auc_density"] - 0.5) < 0.05
    copied = membership_audit(train, holdout, train.sample(frac=1.0, random_state=2), seed=0)
    assert copied["membership_auc"] > 0.95 and copied["membership_auc_distance"] > 0.95
    unseen = membership_audit(train, holdout.iloc[:2000], holdout.iloc[2000:], seed=0)  # fresh real rows
    assert abs(unseen["membership_auc"] - 0.5) < 0.05
    assert membership_audit(train, holdout, marginals, seed=0) == blind  # seeded


def test_too_few_rows_is_a_clear_error(split):
    train, holdout = split
    with pytest.raises(DataError, match="at least 20 training rows"):
        membership_audit(train.head(10), holdout, train)


def test_the_gate_key_needs_a_holdout():
    with pytest.raises(ConfigError, match="membership_auc needs --holdout"):
        parse_gates(["membership_auc<=0.6"])
    assert parse_gates(["membership_auc<=0.6"], holdout=True)["membership_auc"] == ("<=", 0.6)


def test_evaluate_with_a_holdout_reports_the_attack(tmp_path, capsys):
    real = pd.read_csv(ADULT)
    real.iloc[:1500].to_csv(tmp_path / "train.csv", index=False)
    real.iloc[1500:3000].to_csv(tmp_path / "holdout.csv", index=False)
    assert main(["--quiet", "train", str(tmp_path / "train.csv"), "--missing-token", "?", "--epochs", "2",
                 "--imputer-epochs", "1", "--batch-size", "100", "--out", str(tmp_path / "m")]) == 0
    code, out, err = run(["evaluate", tmp_path / "m", "--real", tmp_path / "train.csv", "--holdout",
                          tmp_path / "holdout.csv", "--missing-token", "?", "--json"], capsys)
    assert code == 0, err
    privacy = json.loads(out)["privacy"]
    assert 0.0 <= privacy["membership_auc"] <= 1.0 and privacy["membership_candidates"] > 0
    assert privacy["membership_auc"] == max(privacy["membership_auc_distance"], privacy["membership_auc_density"])
    code, out, _ = run(["evaluate", tmp_path / "m", "--real", tmp_path / "train.csv", "--holdout",
                        tmp_path / "holdout.csv", "--missing-token", "?"], capsys)
    assert code == 0 and "membership attack AUC" in out
