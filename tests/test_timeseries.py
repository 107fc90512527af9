"""Time-series data layer (windows, masks, validation) and the time-series GAN (schemas, determinism, gaps,
continuation, save/load). Tiny sines and a few epochs: these check behaviour, the benchmark checks quality."""

import numpy as np
import pandas as pd
import pytest

from ganstream.trainers.errors import ConfigError, DataError, ModelError
from ganstream.trainers.timeseries.data import (FeatureScaler, StaticEncoder, infer_layout, parse_series,
                                      sliding_windows)


def sines(n_series=40, length=30, n_features=3, seed=0, gap_share=0.0):
    """Long-format noisy sines: id, t, f0..fk, and a static 'group' (its frequency band)."""
    rng = np.random.default_rng(seed)
    group = rng.integers(0, 2, n_series)
    freq = (0.1 + 0.2 * group)[:, None, None] + rng.uniform(0, 0.05, (n_series, 1, n_features))
    phase = rng.uniform(0, 3, (n_series, 1, n_features))
    t = np.arange(length)[None, :, None]
    x = np.sin(freq * t + phase) + 0.05 * rng.standard_normal((n_series, length, n_features))
    if gap_share:
        x[rng.random(x.shape) < gap_share] = np.nan
    df = pd.DataFrame(x.reshape(-1, n_features), columns=[f"f{j}" for j in range(n_features)])
    df.insert(0, "t", np.tile(np.arange(length), n_series))
    df.insert(0, "id", np.repeat([f"s{i}" for i in range(n_series)], length))
    df["group"] = np.repeat(np.where(group == 1, "fast", "slow"), length)
    return df


# ------------------------------------------------------------------------------------------- data layer
def test_windows_are_every_stride_1_slice_inside_each_series():
    lengths = [5, 2, 4]  # the middle series is shorter than L and yields no window
    values = np.arange(sum(lengths) * 2, dtype=float).reshape(-1, 2)
    starts = np.concatenate([[0], np.cumsum(lengths)])
    w, owner = sliding_windows(values, starts, 3)
    expected = [values[s + i: s + i + 3] for k, (s, n) in enumerate(zip(starts[:-1], lengths)) for i in range(n - 2)]
    assert w.shape == (len(expected), 3, 2)
    np.testing.assert_array_equal(w, np.stack(expected))
    np.testing.assert_array_equal(owner, [0, 0, 0, 2, 2])


def test_long_format_groups_series_keeps_order_and_reads_statics():
    df = sines(n_series=3, length=6)
    shuffled = pd.concat([df.iloc[12:], df.iloc[:12]])  # series order changes, rows inside stay in time order
    layout = infer_layout(shuffled, "id", "t", ["group"])
    assert layout.features == ["f0", "f1", "f2"]
    data = parse_series(shuffled, layout)
    assert list(data.ids) == ["s2", "s0", "s1"] and list(data.lengths) == [6, 6, 6]
    np.testing.assert_array_equal(data.series(1), df[df.id == "s0"][["f0", "f1", "f2"]].to_numpy())
    assert list(data.static["group"]) == [df[df.id == s]["group"].iloc[0] for s in ("s2", "s0", "s1")]


def test_skipped_timestamps_become_masked_gap_rows():
    t = pd.date_range("2024-01-01", periods=8, freq="h").delete([2, 3])
    df = pd.DataFrame({"when": t.astype(str), "x": np.arange(6.0), "y": [1.0, np.nan, 3, 4, 5, 6]})
    data = parse_series(df, infer_layout(df, time_col="when"))
    np.testing.assert_array_equal(data.values[:, 0], [0, 1, np.nan, np.nan, 2, 3, 4, 5])
    w, _ = sliding_windows(data.values, data.starts, 4)
    mask = ~np.isnan(w)
    assert w.shape == (5, 4, 2)
    np.testing.assert_array_equal(mask[0, :, 0], [True, True, False, False])
    np.testing.assert_array_equal(mask[0, :, 1], [True, False, False, False])  # a NaN cell stays a gap too


def test_wide_table_is_one_series_in_row_order():
    df = pd.DataFrame({"a": [3.0, 1.0, 2.0], "b": [0.0, 1.0, 0.5]})
    data = parse_series(df, infer_layout(df))
    assert list(data.starts) == [0, 3]
    np.testing.assert_array_equal(data.values[:, 0], [3.0, 1.0, 2.0])


def test_scaler_round_trips_and_ignores_gaps():
    v = np.array([[0.0, 5.0], [np.nan, 7.0], [10.0, 5.0]])
    sc = FeatureScaler.fit(v)
    np.testing.assert_allclose(sc.transform(v)[[0, 2]], [[0, 0], [1, 0]])
    np.testing.assert_allclose(sc.inverse(sc.transform(v)), v)


def test_static_encoder_stores_marginals_not_rows():
    static = pd.DataFrame({"g": ["a", "b", "a", "a"], "size": [1, 5, 3, 2]})
    enc = StaticEncoder.fit(static)
    assert enc.dim == 3
    drawn = enc.sample(2000, np.random.default_rng(0))
    assert set(drawn["g"]) == {"a", "b"} and 0.68 < (drawn["g"] == "a").mean() < 0.82
    assert drawn["size"].between(1, 5).all()
    assert "rows" not in str(enc.to_json())


@pytest.mark.parametrize("change, kwargs, message", [
    (lambda d: d, {"id_col": "nope"}, "--id-col 'nope' is not a column"),
    (lambda d: d, {"id_col": "id", "time_col": "when"}, "--time-col 'when' is not a column"),
    (lambda d: d.assign(t=d["t"].where(d.index != 3, 0)), {"id_col": "id", "time_col": "t"},
     "not increasing within series 's0'"),
    (lambda d: d.assign(f1=np.nan), {"id_col": "id", "time_col": "t"}, "f1 have no observed value"),
    (lambda d: d.assign(f1="high"), {"id_col": "id", "time_col": "t"}, "'f1' is not numeric"),
    (lambda d: d.assign(group=np.arange(len(d)) % 2), {"id_col": "id", "time_col": "t", "static_cols": ["group"]},
     "change within a series"),
])
def test_bad_tables_raise_readable_data_errors(change, kwargs, message):
    df = change(sines(n_series=2, length=6))
    if "static_cols" not in kwargs:
        df = df.drop(columns="group")
    with pytest.raises(DataError, match=message):
        parse_series(df, infer_layout(df, **kwargs))


# ----------------------------------------------------------------------------------------------- the GAN
from ganstream.trainers.timeseries.model import TimeSeriesGAN  # noqa: E402

FEATURES = ["f0", "f1", "f2"]


@pytest.fixture(scope="module")
def gappy():
    return sines(n_series=30, length=20, gap_share=0.15, seed=1)


@pytest.fixture(scope="module")
def ts_model(gappy):
    """A small fit for the tests of layout, sampling and extend; its keep-best check's classifiers train 500 steps
    instead of 2,000 (the check itself is tested in test_timeseries_calibration.py)."""
    return TimeSeriesGAN(seq_len=8, id_col="id", time_col="t", static_cols=("group",), epochs=3,
                         batch_size=64, hidden=16, critic_hidden=16, seed=0, check_classifier_steps=500).fit(gappy)


def test_fits_with_gaps_and_reports_them(ts_model, gappy):
    tr = ts_model.training
    assert tr["windows"] == 30 * (20 - 8 + 1) and 0.10 < tr["missing_share"] < 0.20
    assert all(np.isfinite(h["d_loss"]) and np.isfinite(h["g_loss"]) for h in ts_model.history)


def test_sample_schema_units_and_determinism(ts_model, gappy):
    a = ts_model.sample(7, seed=3)
    assert list(a.columns) == ["series_id", "step", *FEATURES, "group"]
    assert len(a) == 7 * 8 and list(a["step"][:8]) == list(range(8)) and a["series_id"].nunique() == 7
    assert a["group"].groupby(a["series_id"]).nunique().eq(1).all() and set(a["group"]) <= {"fast", "slow"}
    assert not a[FEATURES].isna().any().any()
    lo, hi = gappy[FEATURES].min(), gappy[FEATURES].max()
    clipped = ts_model.sample(7, seed=3, clip=True)[FEATURES]
    assert ((clipped >= lo - 1e-9) & (clipped <= hi + 1e-9)).all().all()  # original units, training range
    assert (a[FEATURES] < 0).any().any()  # not the [0, 1] scale the networks work in
    free = ts_model.sample(200, seed=3, clip=False)[FEATURES]
    span = hi - lo
    assert ((free > lo - span) & (free < hi + span)).all().all()
    pd.testing.assert_frame_equal(a, ts_model.sample(7, seed=3))
    assert not a[FEATURES].equals(ts_model.sample(7, seed=4)[FEATURES])
    assert len(ts_model.sample(2, seed=0, length=30)) == 60


def test_extend_schema_continues_steps_and_is_deterministic(ts_model, gappy):
    hist = gappy[gappy["id"].isin(["s0", "s5"])]
    hist = hist[(hist["id"] == "s0") | (hist["t"] < 4)]  # s0: 20 steps (with gaps), s5: 4 steps
    out = ts_model.extend(hist, horizon=5, draws=3, seed=1)
    assert list(out.columns) == ["series_id", "draw", "step", *FEATURES]
    assert len(out) == 2 * 3 * 5 and not out[FEATURES].isna().any().any()
    s0 = out[out["series_id"] == "s0"]
    assert sorted(s0["step"].unique()) == list(range(20, 25)) and sorted(s0["draw"].unique()) == [0, 1, 2]
    assert sorted(out[out["series_id"] == "s5"]["step"].unique()) == list(range(4, 9))
    pd.testing.assert_frame_equal(out, ts_model.extend(hist, horizon=5, draws=3, seed=1))
    first = s0[s0["step"] == 20][FEATURES].to_numpy()
    assert np.ptp(first, axis=0).max() > 0  # the draws differ: a distribution of futures, not one forecast


def test_continuation_follows_its_history():
    """On noiseless slow/fast sines the continuation must depend on the history: extending two histories
    that end high vs low gives futures that start high vs low (a seeded, few-epoch fit)."""
    df = sines(n_series=60, length=24, n_features=2, seed=2).drop(columns="group")
    model = TimeSeriesGAN(seq_len=12, id_col="id", time_col="t", epochs=15, batch_size=32, hidden=32,
                          critic_hidden=32, seed=0, keep_best=False).fit(df)
    t = np.arange(10)
    hist = pd.DataFrame({"id": np.repeat(["up", "down"], 10), "t": np.tile(t, 2),
                         "f0": np.r_[np.sin(0.15 * t + 0.2), -np.sin(0.15 * t + 0.2)],
                         "f1": np.r_[np.sin(0.15 * t + 0.2), -np.sin(0.15 * t + 0.2)]})
    out = model.extend(hist, horizon=1, draws=20, seed=0)
    first = out.groupby("series_id")["f0"].mean()
    assert first["up"] - first["down"] > 0.5, first


def test_save_load_round_trip(ts_model, gappy, tmp_path):
    ts_model.save(tmp_path / "m")
    from ganstream.trainers.kinds import load_model
    back = load_model(tmp_path / "m")
    assert back.kind == "timeseries"
    pd.testing.assert_frame_equal(back.sample(4, seed=2), ts_model.sample(4, seed=2))
    hist = gappy[gappy["id"] == "s1"]
    pd.testing.assert_frame_equal(back.extend(hist, 3, 2, seed=0), ts_model.extend(hist, 3, 2, seed=0))
    assert not list(tmp_path.glob("m/*.pkl"))


@pytest.mark.parametrize("change, message", [
    (lambda h: h.assign(extra=1.0), "column\\(s\\) extra are not known to the model"),
    (lambda h: h.drop(columns="f1"), "missing column\\(s\\) f1"),
    (lambda h: h.assign(f0=np.nan, f1=np.nan, f2=np.nan), "has no observed value"),
    (lambda h: h.iloc[::-1], "not increasing"),
])
def test_bad_history_is_refused(ts_model, gappy, change, message):
    with pytest.raises(DataError, match=message):
        ts_model.extend(change(gappy[gappy["id"] == "s2"]), horizon=2, draws=2)


def test_bad_options_and_short_series():
    df = sines(n_series=3, length=6).drop(columns="group")
    with pytest.raises(DataError, match="no series has at least --seq-len 10"):
        TimeSeriesGAN(seq_len=10, id_col="id", time_col="t", epochs=1).fit(df)
    with pytest.raises(ConfigError, match="--seq-len must be >= 2"):
        TimeSeriesGAN(seq_len=1, epochs=1).fit(df)
    with pytest.raises(ConfigError, match="check_classifiers must be >= 1"):
        TimeSeriesGAN(seq_len=4, id_col="id", time_col="t", epochs=1, check_classifiers=0).fit(df)
    with pytest.raises(ModelError, match="not fitted"):
        TimeSeriesGAN().sample(3)


# ------------------------------------------------------------------- critic inputs, budgets, old model dirs
def test_critic_differences_are_masked_and_standardised():
    import torch

    from ganstream.trainers.timeseries.critic import ConvCritic, differences
    x = torch.tensor([[0.0, 1.0, 4.0, 9.0, 16.0]]).unsqueeze(2)  # squares: d1 = 1, 3, 5, 7; d2 = 2, 2, 2
    m = torch.ones_like(x)
    m[0, 2] = 0  # a gap hides every difference that uses step 2
    (d1, m1), (d2, m2) = differences(x * m, m, 2)
    assert m1[0, :, 0].tolist() == [0, 1, 0, 0, 1] and d1[0, :, 0].tolist() == [0, 1, 0, 0, 7]
    assert m2[0, :, 0].tolist() == [0, 0, 0, 0, 0]
    critic = ConvCritic(1, 0, 5, 8, diff_order=2)
    full = torch.ones_like(x)
    critic.fit_scales(torch.cat([x, 2 * x]), torch.cat([full, full]))
    d1_all = torch.tensor([1.0, 3, 5, 7, 2, 6, 10, 14])
    assert torch.allclose(critic.diff_scale[0, 0], d1_all.std(unbiased=False))
    assert torch.isfinite(critic(x, full, torch.zeros(1, 0))).all()


def test_cpu_budget_stops_training_and_warmup_uses_its_share(gappy):
    # keep_best off: its held-out checks (~1 CPU-s each, counted in the budget) would eat most of 3 CPU-s
    model = TimeSeriesGAN(seq_len=8, id_col="id", time_col="t", static_cols=("group",), epochs=10_000, batch_size=16, hidden=8,
                          critic_hidden=8, warmup_share=0.3, cpu_budget_s=3.0, keep_best=False, seed=0).fit(gappy)
    h = model.history
    assert 1 < len(h) < 10_000 and model.training["epochs_run"] == len(h)
    assert model.training["cpu_seconds"] < 3.0 + 2.0  # stops at the first step past the budget (+ setup)
    warm = [e["warmup"] for e in h]
    assert warm[0] and not warm[-1] and warm == sorted(warm, reverse=True)  # warm-up first, then adversarial


def test_model_saved_before_the_new_options_loads_as_trained(gappy, tmp_path):
    """A model dir written before critic_diff_order / moment_diff_order / cpu_budget_s existed has none of
    them in model.json and no critic diff_scale: it must load with the values it was trained with."""
    import json

    from safetensors.torch import load_file, save_file
    old = TimeSeriesGAN(seq_len=8, id_col="id", time_col="t", static_cols=("group",), epochs=2, batch_size=64, hidden=8,
                        critic_hidden=8, critic_diff_order=0, moment_diff_order=1, backbone="none", holdout_share=0.0,
                        keep_best=False, calibrate_continuations=False, seed=0).fit(gappy)
    old.save(tmp_path / "old")
    meta = json.loads((tmp_path / "old" / "model.json").read_text())
    for key in ("critic_diff_order", "moment_diff_order", "cpu_budget_s", "backbone", "backbone_lr_scale",
                "holdout_share", "keep_best", "check_every_steps", "check_classifier_steps", "calibrate_continuations",
                "start", "free_run_share", "check_classifiers"):
        del meta["config"][key]
    (tmp_path / "old" / "model.json").write_text(json.dumps(meta))
    critic = load_file(str(tmp_path / "old" / "critic.safetensors"))
    del critic["diff_scale"]
    save_file(critic, str(tmp_path / "old" / "critic.safetensors"))
    back = TimeSeriesGAN.load(tmp_path / "old")
    assert back.config.critic_diff_order == 0 and back.config.moment_diff_order == 1
    assert back.config.backbone == "none" and back.generator.backbone is None
    assert back.config.start == "gaussian" and back.generator.start is None
    pd.testing.assert_frame_equal(back.sample(3, seed=1), old.sample(3, seed=1))
    assert TimeSeriesGAN(seq_len=8).config.critic_diff_order == 2  # new fits get the new default
    assert TimeSeriesGAN(seq_len=8).config.backbone == "var2"


def test_backbone_model_saved_before_held_out_options_extends_as_trained(gappy, tmp_path):
    """A VAR(1) model dir written before holdout_share / keep_best / calibrate_continuations and the saved
    continuation gains existed must load with no hold-out and no gains: its continuations unchanged."""
    import json
    old = TimeSeriesGAN(seq_len=8, id_col="id", time_col="t", static_cols=("group",), epochs=2, batch_size=64, hidden=8,
                        critic_hidden=8, backbone="var1", holdout_share=0.0, keep_best=False,
                        calibrate_continuations=False, seed=0).fit(gappy)
    old.save(tmp_path / "old")
    meta = json.loads((tmp_path / "old" / "model.json").read_text())
    for key in ("holdout_share", "keep_best", "check_every_steps", "check_classifier_steps", "calibrate_continuations"):
        del meta["config"][key]
    del meta["continuation"]
    (tmp_path / "old" / "model.json").write_text(json.dumps(meta))
    back = TimeSeriesGAN.load(tmp_path / "old")
    assert back.config.holdout_share == 0.0 and not back.config.keep_best and not back.config.calibrate_continuations
    assert back.continuation is None and back.config.backbone == "var1"
    hist = gappy[gappy["id"] == "s1"]
    pd.testing.assert_frame_equal(back.extend(hist, 4, 3, seed=0), old.extend(hist, 4, 3, seed=0))


# ------------------------------------------------------------------------------------ the VAR(1) backbone
def var1_series(n_steps: int, seed: int, A=((0.9, 0.05), (-0.2, 0.6)), c=(0.1, -0.05), noise=0.1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    A, c = np.asarray(A), np.asarray(c)
    x = np.zeros((n_steps, 2))
    for t in range(1, n_steps):
        x[t] = c + A @ x[t - 1] + noise * rng.standard_normal(2)
    return x


def test_backbone_least_squares_recovers_a_known_var1():
    import torch

    from ganstream.trainers.timeseries.backbone import LinearBackbone
    from ganstream.trainers.timeseries.data import sliding_windows
    x = var1_series(5000, seed=0)
    w, _ = sliding_windows(x, np.array([0, len(x)]), 10)
    m = np.ones_like(w)
    m[::7, 3, 1] = 0  # gaps: the pairs that touch them are left out, not read as zeros
    bb = LinearBackbone(2, 10)
    bb.fit(torch.from_numpy(np.where(m > 0, w, 0.0)).float(), torch.from_numpy(m).float())
    assert np.allclose(bb.A.detach().numpy(), [[0.9, 0.05], [-0.2, 0.6]], atol=0.03)
    assert np.allclose(bb.c.detach().numpy(), [0.1, -0.05], atol=0.02)
    cov = (bb.noise @ bb.noise.T).detach().numpy()
    assert np.allclose(cov, 0.01 * np.eye(2), atol=0.002)


def test_backbone_continuations_cover_held_out_futures_at_about_the_nominal_rate():
    """An AR process whose futures are genuinely uncertain: the K draws' 80% band must cover roughly 80% of the
    real future points of held-out histories (the issue's continuation target), not collapse onto a forecast."""
    x = var1_series(3000, seed=1)
    train = pd.DataFrame({"sid": 0, "a": x[:2000, 0], "b": x[:2000, 1]})
    model = TimeSeriesGAN(seq_len=12, id_col="sid", epochs=6, batch_size=64, hidden=16, critic_hidden=16,
                          seed=0, keep_best=False).fit(train)
    starts = np.arange(2000, len(x) - 14, 10)  # held-out histories of 8 steps, futures of 6
    hist = pd.concat([pd.DataFrame({"sid": i, "a": x[s:s + 8, 0], "b": x[s:s + 8, 1]}) for i, s in enumerate(starts)])
    fut = np.stack([x[s + 8:s + 14] for s in starts])  # [n, 6, 2]
    out = model.extend(hist, horizon=6, draws=200, seed=0)
    draws = out[["a", "b"]].to_numpy().reshape(len(starts), 200, 6, 2)
    lo, hi = np.quantile(draws, 0.1, axis=1), np.quantile(draws, 0.9, axis=1)
    coverage = ((fut >= lo) & (fut <= hi)).mean()
    assert 0.7 <= coverage <= 0.9, coverage
