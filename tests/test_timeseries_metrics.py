"""TimeGAN's scores, the VAR(1) baseline and the continuation scores on cases whose answer is known."""

import numpy as np
import torch

from ganstream.augment.ts_metrics import (VAR1, ParallelGRUs, band_coverage, crps, discriminative_scores, minmax_by_real,
                                predictive_scores, windows_of)


def test_parallel_grus_are_independent_blocks():
    torch.manual_seed(0)
    model = ParallelGRUs(3, 2, 4)
    x = torch.randn(3, 5, 7, 2)
    y = x.clone()
    y[1] += 10.0  # only model 1's input changes
    a, b = model(x, per_step=True), model(y, per_step=True)
    assert torch.equal(a[0], b[0]) and torch.equal(a[2], b[2]) and not torch.equal(a[1], b[1])
    loss = model(x, per_step=False).sum()
    loss.backward()
    torch.optim.SGD(model.parameters(), lr=1.0).step()
    model.apply_masks()
    assert (model.gru.weight_ih_l0 * (1 - model.mask_ih)).abs().sum() == 0


def _sines(n, seed):
    rng = np.random.default_rng(seed)
    f, ph = rng.uniform(0, 0.1, (n, 1, 3)), rng.uniform(0, 0.1, (n, 1, 3))
    return (np.sin(f * np.arange(24)[None, :, None] + ph) + 1) / 2


def test_discriminative_score_separates_obvious_fakes_not_real_ones():
    real, other_real = _sines(400, 0), _sines(400, 1)
    flipped = 1.0 - real[:, ::-1]  # same marginals per feature, obviously different shape
    bad = discriminative_scores(real, flipped, repeats=2, seed=0, iterations=300)
    good = discriminative_scores(real, other_real, repeats=2, seed=0, iterations=300)
    assert min(bad) > 0.3 and max(good) < 0.15, (bad, good)
    assert discriminative_scores(real, flipped, repeats=2, seed=0, iterations=300) == bad  # seeded


def test_predictive_score_prefers_real_like_training_data():
    real = _sines(400, 0)
    dead_target = real.copy()
    dead_target[:, :, -1] = 0.02  # synthetic data whose last feature never moves
    like_real = predictive_scores(real, _sines(400, 1), repeats=2, seed=0, iterations=300)
    broken = predictive_scores(real, dead_target, repeats=2, seed=0, iterations=300)
    assert max(like_real) < min(broken), (like_real, broken)


def test_var1_recovers_an_ar1_process_and_extends_it():
    rng = np.random.default_rng(0)
    x = np.zeros((2000, 2))
    for t in range(1, len(x)):
        x[t] = 0.1 + np.array([[0.8, 0.0], [0.3, 0.5]]) @ x[t - 1] + 0.1 * rng.standard_normal(2)
    var = VAR1().fit(windows_of(x, 24))
    np.testing.assert_allclose(var.A, [[0.8, 0.0], [0.3, 0.5]], atol=0.06)
    assert var.sample(5, 24, seed=1).shape == (5, 24, 2)
    assert var.extend(x[-3:], horizon=4, draws=6, seed=0).shape == (3, 6, 4, 2)


def test_coverage_and_crps_on_known_distributions():
    rng = np.random.default_rng(0)
    real = rng.standard_normal((200, 5, 2))
    draws = rng.standard_normal((200, 400, 5, 2))
    cov = band_coverage(real, draws, level=0.8)
    assert abs(cov["coverage"] - 0.8) < 0.03 and abs(cov["mean_width"] - 2 * 1.2816) < 0.05
    assert abs(band_coverage(real, 0.3 * draws)["coverage"] - 0.8) > 0.3  # an over-confident band is caught
    assert abs(crps(real, draws) - 1 / np.sqrt(np.pi)) < 0.03  # E[CRPS] of a N(0,1) forecast for N(0,1) outcomes
    assert crps(real, np.repeat(real[:, None], 3, axis=1)) == 0.0


def test_minmax_uses_the_real_range_for_both():
    real = np.array([[[0.0], [10.0]]])
    r, f = minmax_by_real(real, np.array([[[5.0], [20.0]]]))
    np.testing.assert_allclose(f.ravel(), [0.5, 2.0])


def test_var2_reproduces_sine_dynamics_that_var1_cannot():
    """A sine obeys x_t = 2 cos(f) x_{t-1} - x_{t-2}: VAR(2)'s samples keep the real windows' smoothness (second
    differences), VAR(1)'s do not."""
    from ganstream.augment.ts_metrics import VAR2
    real, = minmax_by_real(_sines(2000, 0))
    curvature = lambda w: np.abs(np.diff(w, 2, axis=1)).mean()  # noqa: E731
    var2, var1 = VAR2().fit(real).sample(2000, 24, seed=1), VAR1().fit(real).sample(2000, 24, seed=1)
    assert abs(curvature(var2) / curvature(real) - 1) < 0.5 < curvature(var1) / curvature(real) - 1


def test_order_controls_see_what_the_level_score_misses():
    """Shuffled steps keep each window's values (a level classifier may pass them); differences expose them.
    Reversed steps are the same rows backwards. The real-vs-real floor is near zero on both views."""
    from ganstream.augment.ts_order import order_scores, time_reversed, time_shuffled
    real, = minmax_by_real(_sines(600, 0))
    shuffled = time_shuffled(real, seed=0)
    assert np.allclose(np.sort(shuffled, axis=1), np.sort(real, axis=1)) and not np.allclose(shuffled, real)
    assert np.array_equal(time_reversed(real)[:, 0], real[:, -1])
    floor = order_scores(real[:300], real[300:], repeats=1, seed=0, iterations=300)
    shuffled_scores = order_scores(real, shuffled, repeats=1, seed=0, iterations=300)
    assert floor["differences"]["mean"] < 0.1 and floor["levels"]["mean"] < 0.1
    assert shuffled_scores["differences"]["mean"] > max(0.3, shuffled_scores["levels"]["mean"] + 0.2)
