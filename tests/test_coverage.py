"""Coverage diagnostics (augment/coverage.py): they pass real data against itself, flag a deliberately
collapsed generator (a real TabularGAN whose output layer is pinned to one point and one category), flag
dropped rare categories, reach the gate, and `ganstream evaluate` shows them."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from augment.coverage import coverage_report, kmeans, mode_coverage, nearest
from deploy import gate
from pipeline.cli import main
from trainers.tabular_gan import TabularGAN

RING = 2.0 * np.stack([np.cos(np.arange(8) * np.pi / 4), np.sin(np.arange(8) * np.pi / 4)], axis=1)


def ring_table(n: int, seed: int) -> pd.DataFrame:
    """8 Gaussians on a ring plus a long-tailed categorical column (Zipf over 40 levels)."""
    rng = np.random.default_rng(seed)
    xy = RING[rng.integers(0, 8, n)] + 0.05 * rng.standard_normal((n, 2))
    p = 1.0 / np.arange(1, 41)
    cat = rng.choice(40, size=n, p=p / p.sum())
    return pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1], "kind": pd.Series([f"k{c:02d}" for c in cat], dtype=object)})


@pytest.fixture(scope="module")
def real():
    return ring_table(4000, 0)


@pytest.fixture(scope="module", params=["quantile", "mode"])
def collapsed_model_dirs(tmp_path_factory, real, request):
    """A briefly fitted model, and the same model with its generator's output layer pinned: every sample is
    the same point (one ring mode) and the most common category, whatever the noise and condition (for
    both numeric encodings: with "mode", the point's numeric modes are softmax spans pinned like categories)."""
    root = tmp_path_factory.mktemp("coverage")
    model = TabularGAN(epochs=1, batch_size=200, pac=10, seed=0, numeric_encoding=request.param).fit(real)
    model.save(root / "fitted")
    enc = model.encoder
    mode = pd.DataFrame({"x": [RING[0, 0]], "y": [RING[0, 1]], "kind": ["k00"]})
    target = torch.from_numpy(enc.transform(mode)[0])
    head = model.generator.head
    with torch.no_grad():
        head.weight.zero_()
        head.bias.copy_(target * 50.0)  # continuous dims: scaled back below; softmax span: a huge logit
        for s in enc.spans:
            if s.kind == "continuous":
                head.bias[s.start] = target[s.start]
            elif s.kind == "bounded":  # the generator's tanh output: pin its pre-activation
                head.bias[s.start] = torch.atanh(target[s.start].clamp(-0.999, 0.999))
    model.save(root / "collapsed")
    return root / "fitted", root / "collapsed"


def test_real_against_itself_passes(real):
    other = ring_table(4000, 1)
    rep = coverage_report(real, other, seed=0)
    s = rep["summary"]
    assert s["category_coverage"] == 1.0
    assert 0.5 <= s["rare_category_ratio"] <= 2.0
    assert s["mode_coverage"] == 1.0
    assert s["mode_reverse_kl"] < 0.02 and s["mode_kl"] < 0.02
    figs = gate.figures({"coverage": rep})
    strict = gate.parse_gates(["category_coverage>=1", "rare_category_ratio>=0.5", "mode_coverage>=0.9",
                               "mode_reverse_kl<=0.1"])
    assert gate.evaluate(figs, {k: strict[k] for k in figs if k in strict and figs[k] is not None}).passed


def test_collapsed_generator_is_flagged(real, collapsed_model_dirs):
    _, collapsed = collapsed_model_dirs
    samples = TabularGAN.load(collapsed).sample(4000, seed=0)
    assert samples["kind"].nunique() == 1 and samples[["x", "y"]].round(3).drop_duplicates().shape[0] == 1
    s = coverage_report(real, samples, seed=0)["summary"]
    assert s["category_coverage"] < 0.1 and s["rare_category_ratio"] == 0.0
    assert s["mode_coverage"] <= 0.25  # one point reaches one cluster (k-means splits the 8 modes into 20)
    assert s["mode_reverse_kl"] > 1.0 and s["mode_kl"] > 3.0
    strict = gate.parse_gates(["category_coverage>=1", "mode_coverage>=0.9", "mode_reverse_kl<=0.1"])
    result = gate.evaluate(gate.figures({"coverage": coverage_report(real, samples)}), strict)
    assert not result.passed
    assert {f.split("=")[0] for f in result.failures} >= {"category_coverage", "mode_coverage", "mode_reverse_kl"}


def test_dropped_rare_categories_and_one_dropped_mode_are_flagged(real):
    syn = ring_table(4000, 2)
    counts = real["kind"].value_counts()
    rare = counts.index[counts.between(10, counts.iloc[len(counts) // 2])]  # the rarer half of the frequent ones
    syn.loc[syn["kind"].isin(rare), "kind"] = counts.index[0]
    s = coverage_report(real, syn, seed=0)["summary"]
    assert s["category_coverage"] < 1.0 and s["rare_category_ratio"] == 0.0
    assert s["mode_coverage"] == 1.0  # numeric part untouched

    one_gone = ring_table(4000, 3)
    mode = np.linalg.norm(one_gone[["x", "y"]].to_numpy()[:, None] - RING[None], axis=2).argmin(1)
    one_gone = one_gone[mode != 3].reset_index(drop=True)
    m = mode_coverage(real, one_gone, clusters=8, seed=0)
    assert m["expected_covered"] == 7 and m["coverage"] == pytest.approx(7 / 8)
    assert m["kl"] > 0.5 and 0.05 < m["reverse_kl"] < 0.2  # forward KL punishes the gap; reverse ~ log(8/7)


def test_kmeans_finds_the_ring_and_is_deterministic(real):
    x = real[["x", "y"]].to_numpy()
    c = kmeans(x, 8, seed=0)
    assert np.linalg.norm(c[:, None] - RING[None], axis=2).min(axis=0).max() < 0.05
    assert np.array_equal(c, kmeans(x, 8, seed=0))
    brute = np.linalg.norm(x[:, None] - c[None], axis=2).argmin(axis=1)
    assert np.array_equal(nearest(x, c), brute)
    assert coverage_report(real, ring_table(500, 5), seed=3) == coverage_report(real, ring_table(500, 5), seed=3)


def test_tables_without_numeric_or_discrete_columns(real):
    rep = coverage_report(real[["kind"]], real[["kind"]])
    assert rep["modes"] is None and rep["summary"]["mode_coverage"] is None
    rep = coverage_report(real[["x", "y"]], real[["x", "y"]])
    assert rep["categorical"] == {} and rep["summary"]["category_coverage"] is None
    assert rep["summary"]["mode_coverage"] == 1.0


def test_evaluate_shows_coverage(real, collapsed_model_dirs, tmp_path, capsys):
    fitted, collapsed = collapsed_model_dirs
    data = tmp_path / "ring.parquet"
    real.to_parquet(data)
    assert main(["--quiet", "evaluate", str(fitted), "--real", str(data)]) == 0
    text = capsys.readouterr().out
    for line in ("category coverage, worst", "rarest categories, share ratio", "numeric modes covered",
                 "mode histogram KL"):
        assert line in text
    assert main(["--quiet", "evaluate", str(collapsed), "--real", str(data), "--json"]) == 0
    s = json.loads(capsys.readouterr().out)["coverage"]["summary"]
    assert s["mode_coverage"] <= 0.25 and s["category_coverage"] < 0.1


def test_train_with_mode_encoding_on_ray(real, tmp_path):
    """`train --numeric-encoding mode` on the default (Ray) path: the mixture is fitted on the statistics
    pass's bounded sample, the condition sampler gets the mode spans' frequencies, and the model samples."""
    data = tmp_path / "ring.parquet"
    real.to_parquet(data)
    out = tmp_path / "model"
    assert main(["--quiet", "train", str(data), "--kind", "tabular", "--numeric-encoding", "mode", "--epochs", "1",
                 "--batch-size", "200", "--out", str(out)]) == 0
    meta = json.loads((out / "model.json").read_text())
    assert meta["config"]["numeric_encoding"] == "mode" and meta["encoder"]["numeric"] == "mode"
    np.testing.assert_allclose(meta["encoder"]["numeric_params"]["x"]["means"], [-2, -2 ** 0.5, 0, 2 ** 0.5, 2], atol=0.02)
    model = TabularGAN.load(out)
    assert [s.role for s in model.sampler.spans] == ["mode", "mode", "category"]
    assert model.sampler.freq[0, :5] == pytest.approx([1 / 8, 1 / 4, 1 / 4, 1 / 4, 1 / 8], abs=0.03)
    samples = model.sample(300, seed=0)
    assert samples["x"].between(real["x"].min(), real["x"].max()).all() and samples["kind"].isin(real["kind"]).all()


def test_pinned_conditions_give_the_conditioned_column_its_real_shares(real):
    """With one categorical column every row's condition is drawn from the real shares; pinning writes it
    into the output, so the shares match even for a barely trained generator (whose own draw does not)."""
    table = real[["kind", "x"]]
    model = TabularGAN(epochs=1, batch_size=200, seed=0, numeric_encoding="quantile").fit(table)
    share = table["kind"].value_counts(normalize=True)
    frequent = share.index[share * 20_000 >= 200]
    pinned = model.sample(20_000, seed=4, pin_conditions=True)
    fold = pinned["kind"].value_counts(normalize=True).reindex(frequent) / share[frequent]
    assert fold.between(0.8, 1.25).all(), fold.describe()
    pd.testing.assert_frame_equal(pinned, model.sample(20_000, seed=4, pin_conditions=True))
    free = model.sample(20_000, seed=4)["kind"].value_counts(normalize=True).reindex(frequent, fill_value=0)
    assert not (free / share[frequent]).between(0.8, 1.25).all()  # what pinning corrects after 20 steps
