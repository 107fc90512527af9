"""Tests for augment.metrics: each metric must separate a faithful table (a disjoint half of the real
data) from deliberately broken ones, and agree with slow, obviously-correct reference computations."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats

from ganstream.augment import metrics as m
from ganstream.trainers.errors import DataError
from ganstream.trainers.table_io import read_table

ADULT = Path(__file__).resolve().parents[1] / "data" / "adult.csv"
TARGET = "income"


# ---------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def adult() -> pd.DataFrame:
    df = read_table(ADULT, ["?"])
    rng = np.random.default_rng(123)
    return df.iloc[rng.choice(len(df), size=6000, replace=False)].reset_index(drop=True)


@pytest.fixture(scope="module")
def halves(adult):
    """Two disjoint random halves of 3000 rows: B is a perfect 'synthetic' stand-in for A."""
    return adult.iloc[:3000].reset_index(drop=True), adult.iloc[3000:].reset_index(drop=True)


def shuffle_columns(df: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Permute every column independently: marginals stay exact, associations are destroyed."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame({c: df[c].to_numpy()[rng.permutation(len(df))] for c in df.columns})


def mixed_frame(n: int, seed: int, missing: float = 0.15) -> pd.DataFrame:
    """Small table with every column kind and missing values in every column."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    df = pd.DataFrame({
        "x": x,
        "count": pd.array(rng.integers(0, 50, size=n), dtype="Int64"),
        "colour": pd.array(rng.choice(["red", "green", "blue"], size=n), dtype="string"),
        "shape": pd.Series(np.where(x > 0, "round", "square"), dtype=object),
        "flag": pd.array(x + rng.normal(scale=0.5, size=n) > 0, dtype="boolean"),
        "label": pd.Series(np.where(x + rng.normal(scale=0.7, size=n) > 0.3, "yes", "no"), dtype=object),
    })
    for i, col in enumerate(df.columns):
        hole = np.random.default_rng(seed + 100 + i).random(n) < missing
        df.loc[hole, col] = pd.NA if col != "shape" else None
    return df


# ------------------------------------------------------------------------------------- featurize
def naive_featurize(frame: pd.DataFrame, reference: pd.DataFrame, indicator_cols: set) -> np.ndarray:
    """Row-by-row reference implementation of the documented encoding (no category cap)."""
    rows = []
    for i in range(len(frame)):
        row = []
        for col in reference.columns:
            ref, v = reference[col], frame[col].iloc[i]
            if pd.api.types.is_numeric_dtype(ref.dtype) and not pd.api.types.is_bool_dtype(ref.dtype):
                obs = ref.dropna().to_numpy(dtype=float)
                missing = pd.isna(v)
                value = float(np.median(obs)) if missing else float(v)
                std = obs.std() if obs.std() > 0 else 1.0
                row.append((value - obs.mean()) / std)
                if col in indicator_cols:
                    row.append(1.0 if missing else 0.0)
            else:
                counts = ref.dropna().astype(object).value_counts()
                cats = sorted(counts.index, key=lambda c: (-counts[c], type(c).__name__, str(c)))
                row.extend(1.0 if (not pd.isna(v) and v == c) else 0.0 for c in cats)
                if col in indicator_cols:
                    row.append(1.0 if pd.isna(v) else 0.0)
        rows.append(row)
    return np.array(rows, dtype=float)


def test_featurize_matches_row_by_row_reference():
    ref, other = mixed_frame(80, seed=1), mixed_frame(40, seed=2)
    other.loc[0, "colour"] = "purple"  # unseen category -> all zeros
    x_ref, x_other = m.featurize([ref, other], ref)
    indicators = {c for c in ref.columns if ref[c].isna().any() or other[c].isna().any()}
    np.testing.assert_allclose(x_ref, naive_featurize(ref, ref, indicators), atol=1e-12)
    np.testing.assert_allclose(x_other, naive_featurize(other, ref, indicators), atol=1e-12)


def test_featurize_details():
    ref = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "b": [5, 6, 7, 8], "c": ["u", "v", "u", "u"]})
    other = pd.DataFrame({"a": [np.nan, 2.0], "b": [5, 6], "c": ["w", None], "extra": [0, 0]})
    before = other.copy()
    x_ref, x_other = m.featurize([ref, other], ref)
    # a: value + indicator (missing in `other`), b: value only, c: u, v, missing
    assert x_ref.shape == (4, 2 + 1 + 3) and x_other.shape == (2, 6)
    np.testing.assert_allclose(x_ref[:, [0, 2]].mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(x_ref[:, [0, 2]].std(axis=0), 1, atol=1e-12)
    assert x_other[0, 0] == pytest.approx((2.5 - 2.5) / ref["a"].std(ddof=0))  # median imputation
    assert list(x_other[:, 1]) == [1.0, 0.0]
    assert list(x_other[0, 3:]) == [0.0, 0.0, 0.0]  # unseen 'w'
    assert list(x_other[1, 3:]) == [0.0, 0.0, 1.0]  # missing category
    pd.testing.assert_frame_equal(other, before)  # inputs untouched
    with pytest.raises(DataError, match="lacks column"):
        m.featurize([other.drop(columns="c")], ref)


def test_featurize_caps_wide_categoricals():
    ref = pd.DataFrame({"id": [f"k{i % 300}" for i in range(900)]})
    (x,) = m.featurize([ref], ref, max_categories=50)
    assert x.shape == (900, 51)
    np.testing.assert_array_equal(x.sum(axis=1), 1.0)


# -------------------------------------------------------------------------- faithful vs broken tables
def test_real_half_is_indistinguishable(halves):
    a, b = halves
    assert abs(m.detection_auc(a, b, seed=0) - 0.5) < 0.1
    marg = m.marginal_distances(a, b)
    assert set(marg) == set(a.columns)
    assert m.mean_marginal_distance(marg) < 0.04
    assert max(v["distance"] for v in marg.values()) < 0.08
    assert m.association_distance(a, b) < 0.03


def test_shuffled_columns_keep_marginals_but_are_flagged(halves):
    a, b = halves
    shuffled = shuffle_columns(b, seed=5)
    # the marginals of `shuffled` are exactly those of `b`
    assert m.mean_marginal_distance(m.marginal_distances(a, shuffled)) == pytest.approx(
        m.mean_marginal_distance(m.marginal_distances(a, b)))
    good, bad = m.association_distance(a, b), m.association_distance(a, shuffled)
    assert bad > 0.1 and bad > 4 * good
    assert m.detection_auc(a, shuffled, seed=0) > m.detection_auc(a, b, seed=0) + 0.2


def test_shifted_numeric_column_is_flagged(halves):
    a, b = halves
    shifted = b.assign(age=b["age"] + 8)
    marg_good, marg_bad = m.marginal_distances(a, b), m.marginal_distances(a, shifted)
    assert marg_bad["age"]["distance"] > 0.2 > 3 * marg_good["age"]["distance"]
    assert marg_bad["hours-per-week"] == marg_good["hours-per-week"]  # other columns unaffected
    assert m.detection_auc(a, shifted, seed=0) > 0.65  # about 0.5 for the unshifted half


def test_marginals_match_scipy_and_hand_counts():
    real = pd.DataFrame({"x": [1.0, 2.0, np.nan, 4.0, 5.0, np.nan],
                         "c": pd.array(["a", "a", "b", None, "b", "a"], dtype="string")})
    syn = pd.DataFrame({"x": [1.5, 2.0, 9.0, 9.0], "c": ["a", "c", None, None]})
    d = m.marginal_distances(real, syn)
    expected_ks = stats.ks_2samp([1.0, 2.0, 4.0, 5.0], [1.5, 2.0, 9.0, 9.0]).statistic
    assert d["x"] == {"metric": "ks", "distance": pytest.approx(expected_ks), "missing_rate_diff": pytest.approx(2 / 6)}
    # real: a 3/6, b 2/6, missing 1/6 ; syn: a 1/4, c 1/4, missing 2/4
    tvd = 0.5 * (abs(3 / 6 - 1 / 4) + abs(2 / 6 - 0) + abs(0 - 1 / 4) + abs(1 / 6 - 2 / 4))
    assert d["c"]["metric"] == "tvd" and d["c"]["distance"] == pytest.approx(tvd)
    assert d["c"]["missing_rate_diff"] == pytest.approx(2 / 4 - 1 / 6)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # scipy's p-value for tiny samples; we use the statistic
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.floats(-5, 5), min_size=1, max_size=40), st.lists(st.floats(-5, 5), min_size=1, max_size=40))
def test_ks_agrees_with_scipy(xs, ys):
    d = m.marginal_distances(pd.DataFrame({"v": xs}), pd.DataFrame({"v": ys}))
    assert d["v"]["distance"] == pytest.approx(stats.ks_2samp(xs, ys, method="asymp").statistic, abs=1e-12)


# ---------------------------------------------------------------------------------------- associations
def reference_cramers_v(a: pd.Series, b: pd.Series) -> float:
    table = pd.crosstab(a, b).to_numpy()
    n = table.sum()
    chi2 = stats.chi2_contingency(table, correction=False)[0]
    r, k = table.shape
    phi2 = max(0.0, chi2 / n - (k - 1) * (r - 1) / (n - 1))
    rc, kc = r - (r - 1) ** 2 / (n - 1), k - (k - 1) ** 2 / (n - 1)
    return math.sqrt(phi2 / min(rc - 1, kc - 1))


def test_association_matrix_values(adult):
    df = adult
    assoc = m.association_matrix(df)
    vals = assoc.to_numpy()
    assert list(assoc.columns) == list(df.columns)
    np.testing.assert_allclose(vals, vals.T)
    np.testing.assert_allclose(np.diag(vals), 1.0)
    assert ((vals >= 0) & (vals <= 1)).all()
    # numeric-numeric: |Pearson|
    assert assoc.loc["age", "hours-per-week"] == pytest.approx(abs(df["age"].corr(df["hours-per-week"])))
    # categorical-categorical with missing values: dropped per pair, bias-corrected V
    assert assoc.loc["workclass", "occupation"] == pytest.approx(
        reference_cramers_v(df["workclass"], df["occupation"]))
    # numeric-categorical: η² = between-group / total sum of squares
    g = df.groupby("education")["education-num"]
    x = df["education-num"]
    eta2 = ((g.transform("mean") - x.mean()) ** 2).sum() / ((x - x.mean()) ** 2).sum()
    assert assoc.loc["education", "education-num"] == pytest.approx(math.sqrt(eta2)) == pytest.approx(1.0)
    assert assoc.loc["relationship", "sex"] > 0.5
    # an intermediate η, with missing categories dropped
    pair = df[["occupation", "hours-per-week"]].dropna()
    h = pair["hours-per-week"]
    eta2 = ((pair.groupby("occupation")["hours-per-week"].transform("mean") - h.mean()) ** 2).sum() / ((h - h.mean()) ** 2).sum()
    eta = assoc.loc["hours-per-week", "occupation"]
    assert eta == pytest.approx(math.sqrt(eta2)) and 0.1 < eta < 0.9


def test_association_extremes():
    rng = np.random.default_rng(0)
    x = rng.normal(size=2000)
    df = pd.DataFrame({"x": x, "y": -3 * x + 1, "noise": rng.normal(size=2000),
                       "g": np.where(x > 0, "p", "n"), "g2": np.where(x > 0, "P", "N"),
                       "h": rng.choice(["a", "b", "c"], size=2000), "const": 1.0})
    a = m.association_matrix(df)
    assert a.loc["x", "y"] == pytest.approx(1.0)
    assert a.loc["g", "g2"] == pytest.approx(1.0)
    assert a.loc["x", "noise"] < 0.1 and a.loc["g", "h"] < 0.1 and a.loc["x", "h"] < 0.1
    assert a.loc["x", "const"] == 0.0 and a.loc["g", "const"] == 0.0


# -------------------------------------------------------------------------------------------- privacy
def naive_exact_copies(train: pd.DataFrame, synthetic: pd.DataFrame) -> int:
    def key(row):
        return tuple("<NA>" if pd.isna(v) else v for v in row)
    seen = {key(r) for r in train.itertuples(index=False)}
    return sum(key(r) in seen for r in synthetic.itertuples(index=False))


def test_exact_copies_counts_planted_rows():
    train, fresh = mixed_frame(400, seed=3), mixed_frame(300, seed=4)
    fresh = fresh[fresh["x"].notna()]  # a continuous value: no accidental duplicates of training rows
    assert naive_exact_copies(train, fresh) == 0
    rng = np.random.default_rng(9)
    with_nan = np.flatnonzero(train.isna().any(axis=1).to_numpy())
    planted_idx = np.r_[with_nan[:4], rng.choice(np.setdiff1d(np.arange(400), with_nan), 3, replace=False)]
    planted = train.iloc[planted_idx]
    near = train.iloc[[10, 11]].copy()
    near["x"] = near["x"] + 1e-9  # almost a copy is not a copy
    synthetic = pd.concat([fresh, planted, near], ignore_index=True).sample(frac=1, random_state=1)
    result = m.privacy(train, mixed_frame(200, seed=5), synthetic, seed=0)
    assert result["exact_copies"] == 7 == naive_exact_copies(train, synthetic)
    assert result["exact_copy_rate"] == pytest.approx(7 / len(synthetic))
    # dtypes may differ in synthetic output: 3 == 3.0 and object strings == string dtype
    recast = synthetic.astype({"count": "float64", "colour": object})
    assert m.privacy(train, fresh, recast, seed=0)["exact_copies"] == 7


def test_exact_copies_agree_with_naive_count_on_adult(halves):
    a, b = halves
    synthetic = pd.concat([b, a.iloc[:25]], ignore_index=True)  # adult also has natural duplicates
    expected = naive_exact_copies(a, synthetic)
    assert expected >= 25
    assert m.privacy(a, b, synthetic, seed=0, max_rows=500)["exact_copies"] == expected


def test_dcr_flags_rows_hugging_the_training_data(halves):
    a, b = halves
    train, holdout = a.iloc[:2000], a.iloc[2000:]
    fair = m.privacy(train, holdout, b, seed=0)
    assert 0.8 < fair["dcr_ratio"] < 1.25
    jittered = train.assign(age=train["age"] + 0.01)  # near-copies, none exact
    leaky = m.privacy(train, holdout, jittered, seed=0)
    assert leaky["exact_copies"] == 0
    assert leaky["dcr_ratio"] < 0.2
    json.dumps(leaky)


# -------------------------------------------------------------------------------------------- utility
def test_utility_real_vs_real_and_shuffled_labels(adult, halves):
    a, b = halves
    train, test = a.iloc[:2000], a.iloc[2000:]
    good = m.utility(train, b, test, TARGET, seed=0)
    assert good["metric"] == "f1"
    assert set(good["per_model"]) == {"decision_tree", "adaboost", "logistic_regression", "mlp"}
    assert 0.5 < good["real_score"] < 0.8  # F1 of ' >50K' (the minority class)
    assert 0.85 < good["ratio"] < 1.15
    assert good["real_score"] == pytest.approx(np.mean([v["real"] for v in good["per_model"].values()]))
    bad_syn = b.assign(**{TARGET: np.random.default_rng(0).permutation(b[TARGET].to_numpy())})
    bad = m.utility(train, bad_syn, test, TARGET, seed=0)
    assert bad["real_score"] == pytest.approx(good["real_score"])
    assert bad["ratio"] < 0.6


def test_utility_single_class_synthetic_scores_zero(halves):
    a, b = halves
    one_class = b[b[TARGET] == " <=50K"]
    result = m.utility(a.iloc[:2000], one_class, a.iloc[2000:], TARGET, seed=0)
    assert result["synthetic_score"] == 0.0 and result["real_score"] > 0.3
    assert all(v["synthetic"] == 0.0 for v in result["per_model"].values())


def test_utility_multiclass_and_regression(halves):
    a, b = halves
    train, test = a.iloc[:2000], a.iloc[2000:]
    multi = m.utility(train, b, test, "relationship", seed=0)
    assert multi["metric"] == "macro_f1" and 0.2 < multi["real_score"] <= 1.0
    reg = m.utility(train, b, test, "education-num", seed=0)  # fully determined by 'education'
    assert reg["metric"] == "r2" and set(reg["per_model"]) == {"decision_tree", "linear_regression", "mlp"}
    assert reg["per_model"]["linear_regression"]["real"] > 0.99
    assert reg["per_model"]["linear_regression"]["synthetic"] > 0.99
    noise = b.assign(**{"education-num": np.random.default_rng(1).permutation(b["education-num"].to_numpy())})
    assert m.utility(train, noise, test, "education-num", seed=0)["synthetic_score"] < 0.2


def test_utility_drops_missing_targets_and_unknown_labels():
    train, test = mixed_frame(600, seed=6), mixed_frame(300, seed=7)
    syn = mixed_frame(400, seed=8)
    syn.loc[:20, "label"] = "maybe"  # a label train_real never had
    result = m.utility(train, syn, test, "label", seed=0)
    assert result["metric"] == "f1" and result["real_score"] > 0.4
    with pytest.raises(DataError, match="target"):
        m.utility(train, syn.drop(columns="label"), test, "label")


# ---------------------------------------------------------------------------------- report & seeds
def test_same_seed_same_numbers(halves):
    a, b = halves
    sub_a, sub_b = a.iloc[:1500], b.iloc[:1500]
    assert m.detection_auc(sub_a, sub_b, seed=3, max_rows=800) == m.detection_auc(sub_a, sub_b, seed=3, max_rows=800)
    assert m.privacy(sub_a, a.iloc[1500:], sub_b, seed=3, max_rows=300) == m.privacy(
        sub_a, a.iloc[1500:], sub_b, seed=3, max_rows=300)
    r1 = m.utility(sub_a, sub_b, a.iloc[1500:2500], TARGET, seed=3)
    r2 = m.utility(sub_a, sub_b, a.iloc[1500:2500], TARGET, seed=3)
    assert r1 == r2


def test_quality_report_with_missing_values_everywhere():
    real, syn = mixed_frame(700, seed=10, missing=0.2), mixed_frame(500, seed=11, missing=0.2)
    assert real.isna().any().all() and syn.isna().any().all()
    report = m.quality_report(real, syn, target="label", seed=0)
    text = json.dumps(report)  # plain JSON types only
    assert json.loads(text) == report
    assert report["rows_real"] == 700 and report["rows_synthetic"] == 500
    assert 0.3 < report["detection_auc"] < 0.7  # same generator, different seed
    assert set(report["marginals"]) == set(real.columns)
    assert report["utility"]["metric"] == "f1"
    assert report["privacy"]["holdout"] == "split"
    assert report["privacy"]["exact_copies"] == naive_exact_copies(real, syn)  # against all of `real`
    again = m.quality_report(real, syn, target="label", seed=0)
    assert again == report
    out = m.format_report(report)
    assert "detection AUC" in out and "utility (F1 of class " in out and len(out.splitlines()) >= 7


def test_quality_report_with_holdout_and_no_target():
    real, holdout = mixed_frame(500, seed=12), mixed_frame(300, seed=13)
    fresh = mixed_frame(300, seed=14)
    syn = pd.concat([fresh[fresh["x"].notna()], real.iloc[:5]], ignore_index=True)
    report = m.quality_report(real, syn, holdout=holdout, seed=1)
    assert report["utility"] is None
    assert report["privacy"]["holdout"] == "given" and report["privacy"]["exact_copies"] == 5
    assert "utility" not in m.format_report(report)
