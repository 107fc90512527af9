"""Coverage diagnostics (augment/coverage.py): they pass real data against itself, flag a deliberately
collapsed generator (a real TabularGAN whose output layer is pinned to one point and one category), flag
dropped rare categories, reach the gate, and `ganstream evaluate` shows them."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from ganstream.augment.coverage import coverage_report, kmeans, mode_coverage, nearest
from ganstream.deploy import gate
from ganstream.pipeline.cli import main
from ganstream.trainers.errors import ConfigError
from ganstream.trainers.tabular.model import TabularGAN

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


def test_train_default_auto_encoding_finds_the_rings_joint_modes(real, tmp_path):
    """The default `train` (numeric_encoding="auto"): the ring's x / y are one joint block with the ring's 8
    modes (trainers/joint_encoding.py; their frequencies in the condition sampler), a heaped integer column
    keeps the quantile transform, and the model samples every column in range."""
    table = real.copy()
    rng = np.random.default_rng(5)
    table["hours"] = np.where(rng.random(len(table)) < 0.55, 40, rng.integers(1, 99, len(table))).astype("int64")
    data = tmp_path / "ring_hours.parquet"
    table.to_parquet(data)
    out = tmp_path / "model"
    assert main(["--quiet", "train", str(data), "--kind", "tabular", "--epochs", "1", "--batch-size", "200",
                 "--out", str(out)]) == 0
    meta = json.loads((out / "model.json").read_text())
    assert meta["config"]["numeric_encoding"] == "auto" and meta["encoder"]["numeric"] == "auto"
    model = TabularGAN.load(out)
    assert {c: model.encoder.column_encoding(c) for c in ("x", "y", "hours")} == {"x": "joint", "y": "joint",
                                                                                  "hours": "quantile"}
    assert model.encoder.joint_evidence["modes"] == 8
    roles = [s.role for s in model.sampler.spans]
    assert sorted(roles) == ["category", "joint"]
    assert model.sampler.freq[roles.index("joint"), :8] == pytest.approx([1 / 8] * 8, abs=0.03)
    samples = model.sample(300, seed=0)
    assert samples["x"].between(table["x"].min(), table["x"].max()).all()
    assert samples["hours"].isin(set(table["hours"])).all()


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


def _two_span_batch(n: int, seed: int):
    """A dependent pair of discrete columns: A (the condition, 2 levels) decides B's frequencies
    (0.8/0.2 under a=0, 0.1/0.9 under a=1); returns the spans, the real one-hots and A's codes."""
    from ganstream.trainers.encoding import Span
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 2, n)
    b = (rng.random(n) < np.where(a == 0, 0.2, 0.9)).astype(np.int64)
    real = np.zeros((n, 4), dtype=np.float32)
    real[np.arange(n), a] = 1.0
    real[np.arange(n), 2 + b] = 1.0
    spans = [Span("a", "category", "softmax", 0, 2), Span("b", "category", "softmax", 2, 2)]
    return spans, torch.from_numpy(real), torch.from_numpy(a)


def test_frequency_match_loss_is_zero_exactly_at_the_batchs_conditional_frequencies():
    from ganstream.trainers.tabular.networks import frequency_match_loss
    spans, real, a = _two_span_batch(400, 0)
    freq = torch.stack([real[a == k].mean(dim=0) for k in (0, 1)])  # per condition: both spans' frequencies
    logits = torch.log(freq.clamp_min(1e-12))[a]  # softmax(log f) = f (each span's block sums to 1)
    assert frequency_match_loss(logits, real, spans, a, 2).item() == pytest.approx(0.0, abs=1e-10)
    marginal = torch.log(real.mean(dim=0)).expand(len(a), -1)  # right marginals, dependence lost
    assert frequency_match_loss(marginal, real, spans, a, 2).item() > 0.1


def test_frequency_match_loss_teaches_the_conditional_not_the_marginal():
    """Logits that depend only on the condition, trained on fresh real batches with this loss alone, reach
    B's frequencies *given A* (0.2 / 0.9 for B=1), not B's marginal (0.55): the targets come from real rows
    paired with each condition, so dependent columns keep their dependence."""
    from ganstream.trainers.tabular.networks import frequency_match_loss
    table = torch.zeros(2, 4, requires_grad=True)
    opt = torch.optim.Adam([table], lr=0.05)
    for step in range(300):
        spans, real, a = _two_span_batch(500, 100 + step)
        loss = frequency_match_loss(table[a], real, spans, a, 2)
        opt.zero_grad()
        loss.backward()
        opt.step()
    p_b1 = torch.softmax(table[:, 2:4], dim=1)[:, 1].detach().numpy()
    assert p_b1 == pytest.approx([0.2, 0.9], abs=0.04)


def _plain_squared_gap(raw, real, groups, n_groups):
    """The same value with its plain gradient (each row also pushed by its own share of its group's gap)."""
    counts = torch.bincount(groups, minlength=n_groups).float()
    fake = torch.zeros(n_groups, 2).index_add(0, groups, torch.softmax(raw, dim=1))
    gap = (fake - torch.zeros(n_groups, 2).index_add(0, groups, real)) / counts.clamp_min(1)[:, None]
    return (counts / len(groups) * gap.pow(2).sum(dim=1)).sum()


@pytest.mark.parametrize("gradient", ["leave-one-out", "plain"])
def test_frequency_match_keeps_rows_of_one_condition_different(gradient):
    """Two kinds of rows under one condition, one sure of category 0 and one of category 1, half each: the
    frequencies are already right. Groups of ~3 rows (Adult's case): the leave-one-out gradient leaves both
    kinds sure of their category; the plain gradient of the squared gap drags both to ~50/50 — every row
    becomes the group average, which is what wrecked Adult's utility (benchmarks/RESULTS.md, run 3)."""
    from ganstream.trainers.encoding import Span
    from ganstream.trainers.tabular.networks import frequency_match_loss
    span = [Span("b", "category", "softmax", 0, 2)]
    table = torch.tensor([[3.0, -3.0], [-3.0, 3.0]], requires_grad=True)
    opt = torch.optim.Adam([table], lr=0.05)
    for step in range(200):
        rng = np.random.default_rng(step)
        kind, groups = torch.from_numpy(rng.integers(0, 2, 120)), torch.from_numpy(rng.integers(0, 40, 120))
        real = torch.nn.functional.one_hot(torch.from_numpy(rng.integers(0, 2, 120)), 2).float()
        loss = (frequency_match_loss(table[kind], real, span, groups, 40) if gradient == "leave-one-out"
                else _plain_squared_gap(table[kind], real, groups, 40))
        opt.zero_grad()
        loss.backward()
        opt.step()
    p_cat0 = torch.softmax(table, dim=1)[:, 0].detach().numpy()
    if gradient == "leave-one-out":
        assert p_cat0[0] > 0.95 and p_cat0[1] < 0.05
    else:
        assert 0.3 < p_cat0[0] < 0.7 and 0.3 < p_cat0[1] < 0.7


def test_frequency_weight_fits_deterministically_and_old_models_load_without_it(real, tmp_path):
    """The term is in the generator's history, the fit is seeded, and a model dir written before the option
    existed (no `frequency_weight` / `numeric_encoding` in its config) loads as it was trained: without the
    term and with the quantile encoder, sampling exactly as before."""
    fit = dict(epochs=1, batch_size=200, seed=3, numeric_encoding="mode", frequency_weight=10.0)
    model = TabularGAN(**fit).fit(real)
    assert model.history[-1]["freq_loss"] > 0
    pd.testing.assert_frame_equal(model.sample(500, seed=1), TabularGAN(**fit).fit(real).sample(500, seed=1))
    with pytest.raises(ConfigError, match="frequency_weight"):
        TabularGAN(epochs=1, batch_size=200, frequency_weight=-1.0).fit(real)
    with pytest.raises(ConfigError, match="frequency_spans"):
        TabularGAN(epochs=1, batch_size=200, frequency_spans="some").fit(real)

    old = TabularGAN(epochs=1, batch_size=200, seed=3, numeric_encoding="quantile").fit(real)
    old.save(tmp_path / "old")
    meta_path = tmp_path / "old" / "model.json"
    meta = json.loads(meta_path.read_text())
    for key in ("frequency_weight", "numeric_encoding", "condition_on_modes"):
        del meta["config"][key]
    meta_path.write_text(json.dumps(meta))
    loaded = TabularGAN.load(tmp_path / "old")
    assert loaded.config.frequency_weight == 0.0 and loaded.config.numeric_encoding == "quantile"
    pd.testing.assert_frame_equal(loaded.sample(500, seed=2), old.sample(500, seed=2))
