"""Held-out windows of the time-series GAN: the split, the check that keeps the best state, and the
per-horizon calibration of continuations (trainers/timeseries/holdout.py, trainers/timeseries/calibration.py)."""

import copy

import numpy as np
import pandas as pd
import pytest
import torch

from ganstream.trainers.timeseries.calibration import (apply_horizon_gains, band_miss, best_gain, choose_continuation,
                                             continuation_crps, fit_horizon_gains, horizon_gain_factors)
from ganstream.trainers.timeseries.model import TimeSeriesGAN
from ganstream.trainers.timeseries.holdout import HeldOutCheck, detection_score, detection_scores, holdout_split


def test_many_series_are_held_out_whole_and_seeded():
    sw = np.repeat(np.arange(40), 5)
    train, held = holdout_split(sw, 8, 0.1, seed=0)
    assert len(np.unique(sw[held])) == 4 and not set(sw[held]) & set(sw[train])
    assert len(train) + len(held) == len(sw)
    assert np.array_equal(held, holdout_split(sw, 8, 0.1, seed=0)[1])
    assert not np.array_equal(held, holdout_split(sw, 8, 0.1, seed=1)[1])
    assert len(holdout_split(sw, 8, 0.0, seed=0)[1]) == 0


def test_few_long_series_hold_out_their_latest_windows_sharing_no_row_with_training():
    sw = np.r_[np.zeros(2000, dtype=int), np.ones(500, dtype=int)]  # window i of a series covers its rows i..i+23
    train, held = holdout_split(sw, 24, 0.1, seed=0)
    assert np.array_equal(held, np.r_[np.arange(1800, 2000), np.arange(2450, 2500)])  # each series' last 10%
    for one in (sw[train] == 0, sw[train] == 1):  # no training window shares a row with a held-out one
        assert np.abs(train[one][:, None] - held[sw[held] == sw[train][one][0]][None, :]).min() >= 24
    assert np.array_equal(train, np.r_[np.arange(0, 1777), np.arange(2000, 2427)])


def test_best_gain_recovers_a_known_spread_ratio():
    rng = np.random.default_rng(0)
    n, K, F = 4000, 32, 2
    dev = rng.standard_normal((n, K, F))  # draws spread 1 around a correct centre
    real = 2.0 * rng.standard_normal((n, F))  # the truth spreads 2
    g = best_gain(np.zeros((n, K, F)), dev, real, np.ones((n, F), bool))
    assert 1.8 < g < 2.2, g
    assert band_miss(2 * dev, real, np.ones((n, F), bool)) < band_miss(dev, real, np.ones((n, F), bool))


def test_gains_scale_only_the_free_part_around_the_centre():
    centre = torch.zeros(1, 6, 1)
    draw = torch.ones(1, 6, 1)
    out = apply_horizon_gains(draw, centre, {"gains": [2.0, 3.0]}, context=3)  # a model saved before prefix groups
    assert out[0, :, 0].tolist() == [2.0, 2.0, 2.0, 2.0, 3.0, 3.0]  # prefix: unused by extend; past the last: last
    per_row = horizon_gain_factors({"gains": [2.0, 3.0]}, 6, np.array([3, 1]))  # as the held-out CRPS applies them
    assert per_row.tolist() == [[2.0, 2.0, 2.0, 2.0, 3.0, 3.0], [2.0, 2.0, 3.0, 3.0, 3.0, 3.0]]
    grouped = {"gains": [9.0, 9.0], "prefix_edges": [1, 3], "prefix_gains": [[2.0, 3.0], [4.0, 5.0]]}
    assert horizon_gain_factors(grouped, 6, np.array([1, 2, 3, 5])).tolist() == [
        [2.0, 2.0, 3.0, 3.0, 3.0, 3.0], [2.0, 2.0, 2.0, 3.0, 3.0, 3.0],  # prefixes 1-2: the first group's gains
        [4.0, 4.0, 4.0, 4.0, 5.0, 5.0], [4.0, 4.0, 4.0, 4.0, 4.0, 4.0]]  # prefixes 3+: the second group's


def test_detection_score_is_seeded_and_tells_obvious_fakes():
    rng = np.random.default_rng(0)
    t = np.arange(12)
    real = torch.from_numpy(np.sin(0.3 * t[None, :, None] + rng.uniform(0, 6, (300, 1, 2)))).float()
    noise = torch.from_numpy(rng.standard_normal((300, 12, 2))).float()
    m = torch.ones_like(real)
    assert detection_score(real, noise, m, seed=0) > 0.25
    other = torch.from_numpy(np.sin(0.3 * t[None, :, None] + rng.uniform(0, 6, (300, 1, 2)))).float()
    close = detection_score(real, other, m, seed=0)
    assert close < 0.1 and close == detection_score(real, other, m, seed=0)


def test_detection_repeats_are_independent_classifiers_and_the_mean_is_the_score():
    rng = np.random.default_rng(1)
    t = np.arange(12)
    real = torch.from_numpy(np.sin(0.3 * t[None, :, None] + rng.uniform(0, 6, (300, 1, 2)))).float()
    fake = real + 0.15 * torch.from_numpy(rng.standard_normal(real.shape)).float()
    m = torch.ones_like(real)
    three = detection_scores(real, fake, m, seed=0, steps=300, repeats=3)
    assert len(three) == 3 and len(set(three)) > 1  # own split and initialisation per repeat
    assert detection_score(real, fake, m, seed=0, steps=300, repeats=3) == pytest.approx(np.mean(three))
    assert detection_scores(real, fake, m, seed=0, steps=300, repeats=3) == three  # seeded


class _Shift(torch.nn.Module):
    """A stand-in generator for the check: real windows shifted by a parameter (0 = the real windows)."""

    def __init__(self, shift: float):
        super().__init__()
        self.shift = torch.nn.Parameter(torch.tensor(float(shift)))


def test_check_keeps_the_earlier_state_unless_a_later_one_beats_it_by_the_margin():
    rng = np.random.default_rng(2)
    t = np.arange(10)
    real = torch.from_numpy(np.sin(0.3 * t[None, :, None] + rng.uniform(0, 6, (400, 1, 2)))).float()
    other = torch.from_numpy(np.sin(0.3 * t[None, :, None] + rng.uniform(0, 6, (400, 1, 2)))).float()
    m = torch.ones_like(real)

    def generate(g, noise):
        return noise + g.shift.detach()

    def run(margin):
        check = HeldOutCheck(real, m, other, generate, seed=0, steps=800, repeats=2, margin=margin)
        worse, better = _Shift(2.0), _Shift(0.0)
        first = check.check(worse, {"steps": 0})
        second = check.check(better, {"steps": 10})
        return check, first, second

    check, first, second = run(margin=0.01)
    assert first - second > 0.1  # a shifted copy is told apart, a fresh draw of the real process is not
    assert check.best_at == {"steps": 10} and check.best_score == second
    strict, first_again, second_again = run(margin=first - second + 0.01)  # better, but not by the margin
    assert (first_again, second_again) == (first, second)
    assert strict.best_at == {"steps": 0} and strict.best_score == first
    generator = _Shift(0.0)
    assert strict.restore_best(generator) and float(generator.shift.detach()) == 2.0


def local_level(n_steps: int, seed: int) -> np.ndarray:
    """x_t = mu_t + 0.3 eps_t, mu_t a random walk (step 0.1), 2 features: a VAR(1) is misspecified for it
    (the process is ARMA(1,1)), so one-step residuals misstate the multi-step spread."""
    rng = np.random.default_rng(seed)
    mu = np.cumsum(0.1 * rng.standard_normal((n_steps, 2)), 0)
    return mu + 0.3 * rng.standard_normal((n_steps, 2))


@pytest.fixture(scope="module")
def local_level_fit():
    """(series [4000, 2], training frame of its first 3000 steps, a model fitted on it, histories of 6 steps
    from the last 1000 steps, their starts)."""
    x = local_level(4000, seed=3)
    train = pd.DataFrame({"sid": 0, "a": x[:3000, 0], "b": x[:3000, 1]})
    model = TimeSeriesGAN(seq_len=12, id_col="sid", epochs=4, batch_size=64, hidden=16, critic_hidden=16,
                          keep_best=False, seed=0).fit(train)
    starts = np.arange(3000, len(x) - 14, 7)
    hist = pd.concat([pd.DataFrame({"sid": i, "a": x[s:s + 6, 0], "b": x[s:s + 6, 1]}) for i, s in enumerate(starts)])
    return x, train, model, hist, starts


def test_calibrated_continuations_hold_the_nominal_band_early_and_late(local_level_fit):
    """The K draws' 80% band must cover ~80% of held-out real futures at early AND late horizons (the
    issue's continuation target), with the spread fitted on held-out windows run free as extend runs them."""
    x, _, model, hist, starts = local_level_fit
    assert model.continuation is not None and len(model.continuation["gains"]) == 11
    assert model.continuation["mean"] in ("generator", "backbone") and set(model.continuation["crps"]) == {
        "generator", "backbone"}
    fut = np.stack([x[s + 6:s + 14] for s in starts])  # [n, 8, 2]
    draws = model.extend(hist, horizon=8, draws=200, seed=0)[["a", "b"]].to_numpy().reshape(len(starts), 200, 8, 2)
    lo, hi = np.quantile(draws, 0.1, axis=1), np.quantile(draws, 0.9, axis=1)
    inside = (fut >= lo) & (fut <= hi)
    early, late = inside[:, :3].mean(), inside[:, 5:].mean()
    assert 0.7 <= early <= 0.9 and 0.7 <= late <= 0.9, (early, late)


def test_keep_best_restores_the_starting_backbone_when_training_only_hurts():
    """A generator learning rate that wrecks the network: the held-out check must keep the state it started
    from (the least-squares backbone), and the check must not change the training's random stream. The
    number of classifiers per check (`check_classifiers`) changes the check's scores."""
    rng = np.random.default_rng(0)
    x = np.cumsum(rng.standard_normal((1500, 2)), 0) * 0.1
    df = pd.DataFrame({"sid": 0, "a": x[:, 0], "b": x[:, 1]})
    kw = dict(seq_len=10, id_col="sid", epochs=2, batch_size=64, hidden=16, critic_hidden=16, lr=0.5,
              warmup_lr=0.5, warmup_share=0.0, check_every_steps=10, check_classifier_steps=500, seed=0)
    kept = TimeSeriesGAN(keep_best=True, **kw).fit(df)
    info = kept.training["held_out"]
    assert info["best"]["steps"] == 0 and info["restored_earlier_state"], info
    assert len(info["checks"]) >= 2 and max(c["score"] for c in info["checks"]) > info["best_score"]
    plain = TimeSeriesGAN(keep_best=False, **kw).fit(df)
    assert [h["g_loss"] for h in kept.history] == [h["g_loss"] for h in plain.history]  # same trajectory
    again = TimeSeriesGAN(keep_best=True, **kw).fit(df)
    assert again.training["held_out"]["checks"] == info["checks"]  # seeded
    pd.testing.assert_frame_equal(kept.sample(5, seed=1), again.sample(5, seed=1))
    one = TimeSeriesGAN(keep_best=True, check_classifiers=1, **kw).fit(df).training["held_out"]["checks"]
    assert [c["score"] for c in one] != [c["score"] for c in info["checks"]]  # the option reaches the check


def test_extend_drops_a_network_correction_that_continues_worse_on_held_out_windows(local_level_fit):
    """A correction that drifts (half the range per step) makes held-out continuations worse: the choice made
    after training keeps the backbone alone for extend, whose draws are then exactly the backbone's. A
    correction that is zero ties with the backbone by construction: the backbone's runs are skipped and the
    generator is kept (the tie rule); the two extends are then the same to the float."""
    _, train, fitted, hist, _ = local_level_fit
    held_out = TimeSeriesGAN(fitted.config)
    held_out.prepare(train)
    X, M, S = held_out._held_out
    drifting, silent = copy.deepcopy(fitted), copy.deepcopy(fitted)
    with torch.no_grad():
        drifting.generator.head[-1].bias.add_(0.5)
        silent.generator.head[-1].weight.zero_()
        silent.generator.head[-1].bias.zero_()
    chosen = choose_continuation(drifting.generator, drifting._noise, X, M, S, seed=0)
    assert chosen["mean"] == "backbone" and chosen["crps"]["backbone"] < chosen["crps"]["generator"], chosen["crps"]
    assert not chosen["backbone_skipped"]
    tie = choose_continuation(silent.generator, silent._noise, X, M, S, seed=0)
    assert tie["mean"] == "generator" and tie["backbone_skipped"]
    drifting.continuation = chosen
    silent.continuation = {**chosen, "mean": "generator"}  # same gains, correction on but zero
    pd.testing.assert_frame_equal(drifting.extend(hist, horizon=5, draws=7, seed=2), silent.extend(hist, horizon=5, draws=7, seed=2))


def test_continuation_crps_prefers_draws_around_the_truth():
    """The held-out CRPS that chooses between the corrections: lower for draws centred on the real windows
    than for the same draws shifted away, and lower for a sensible spread than for a much too wide one."""
    rng = np.random.default_rng(4)
    X = torch.from_numpy(rng.standard_normal((64, 6, 2))).float()
    M, S = torch.ones_like(X), torch.zeros(64, 0)

    def noise_fn(B, T, gen):
        return torch.zeros(B, 1), torch.zeros(B, T, 1), torch.randn(B, T, 2, generator=gen)

    def runner(shift, scale):
        def run(z0, z, s, x, m, n_teacher, e):
            return x + shift + scale * e
        return run

    crps = {k: continuation_crps(runner(*k), noise_fn, X, M, S, {"gains": [1.0] * 5}, seed=0) for k in
            [(0.0, 0.1), (1.0, 0.1), (0.0, 5.0)]}
    assert crps[(0.0, 0.1)] < crps[(1.0, 0.1)] and crps[(0.0, 0.1)] < crps[(0.0, 5.0)], crps
    assert crps[(0.0, 0.1)] == continuation_crps(runner(0.0, 0.1), noise_fn, X, M, S, {"gains": [1.0] * 5}, seed=0)


def test_gains_follow_how_much_history_the_draws_were_given():
    """Draws whose spread is right after short prefixes and 4x too narrow after long ones (real errors are
    N(0, 1) throughout): the prefix-length groups get gains near 1 and near 4, the pooled gain sits between,
    and the grouped gains continue the held-out windows with a lower CRPS than the pooled ones."""
    rng = np.random.default_rng(5)
    T = 8
    X = torch.from_numpy(rng.standard_normal((512, T, 2))).float()
    M, S = torch.ones_like(X), torch.zeros(512, 0)

    def noise_fn(B, T, gen):
        return torch.zeros(B, 1), torch.zeros(B, T, 1), torch.randn(B, T, 2, generator=gen)

    def run(z0, z, s, x, m, n_teacher, e):
        spread = torch.where(n_teacher < T // 2, 1.0, 0.25).view(-1, 1, 1)
        return torch.where(torch.arange(T).view(1, T, 1) < n_teacher.view(-1, 1, 1), x, spread * e)

    fit = fit_horizon_gains(run, noise_fn, X, M, S, seed=0)
    assert fit["prefix_edges"] == [1, 2, 4, 6]
    short, long_ = fit["prefix_gains"][0][0], fit["prefix_gains"][2][0]  # horizon 1 after 1 and after 4-5 steps
    assert 0.8 < short < 1.25 and 3.2 < long_ < 5.0, fit["prefix_gains"]
    assert short < fit["gains"][0] < long_
    grouped = continuation_crps(run, noise_fn, X, M, S, fit, seed=1)
    pooled = continuation_crps(run, noise_fn, X, M, S, {"gains": fit["gains"]}, seed=1)
    assert grouped < pooled, (grouped, pooled)
