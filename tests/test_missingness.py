"""Holes in samples: each column's missing rate and which holes occur together match the training rows, and the
rows that get a hole are the ones the generator's own indicators point at."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ganstream import TabularGAN
from ganstream.trainers.tabular.missingness import HolePatterns


def _co_occurrence(frame: pd.DataFrame) -> np.ndarray:
    m = frame.isna().to_numpy(dtype=np.float64)
    return m.T @ m / len(m)


@pytest.fixture(scope="module")
def holed():
    """Holes at random (10% per column) plus a block where two columns are missing together."""
    rng = np.random.default_rng(4)
    n = 2_000
    x = rng.normal(size=n)
    table = pd.DataFrame({"x": x, "y": x + rng.normal(0, 0.5, n), "c": np.where(x > 0, "hi", "lo"),
                          "d": rng.choice(list("abcd"), n), "k": rng.integers(0, 5, n)})
    table["c"] = table["c"].astype(object)
    for col in table.columns:
        table.loc[rng.random(n) < 0.10, col] = None
    table.loc[rng.random(n) < 0.05, ["x", "d"]] = None
    return table


@pytest.fixture(scope="module")
def holed_fit(holed):
    return TabularGAN(epochs=2, batch_size=200, imputer_epochs=2, seed=3).fit(holed)


def test_missing_rates_and_co_occurrences_match_training(holed, holed_fit):
    out = holed_fit.sample(6_000, seed=1)
    assert np.abs(out.isna().mean() - holed.isna().mean()).max() < 0.003
    assert np.abs(_co_occurrence(out) - _co_occurrence(holed)).max() < 0.003
    for chunked in (holed_fit.sample(6_000, seed=1, chunk_size=500),):  # every chunk gets its share
        assert np.abs(chunked.isna().mean() - holed.isna().mean()).max() < 0.003


def test_holes_are_seeded_kept_by_save_and_absent_with_fill(holed_fit, tmp_path):
    pd.testing.assert_frame_equal(holed_fit.sample(500, seed=2), holed_fit.sample(500, seed=2))
    holed_fit.save(tmp_path / "m")
    again = TabularGAN.load(tmp_path / "m")
    pd.testing.assert_frame_equal(again.sample(500, seed=2), holed_fit.sample(500, seed=2))
    assert not holed_fit.sample(500, seed=2, missing="fill").isna().any().any()


def test_the_same_holds_on_a_real_table(adult_small, fitted_gan):
    out = fitted_gan.sample(6_000, seed=0)
    columns = fitted_gan.holes.columns
    assert set(columns) == {"workclass", "occupation", "native-country"}
    assert np.abs(out[columns].isna().mean() - adult_small[columns].isna().mean()).max() < 0.003


def test_a_hole_goes_where_the_generator_expects_it():
    holes = HolePatterns(["a"], np.array([[False], [True]]), np.array([0.7, 0.3]))
    p = np.r_[np.full(500, 0.9), np.full(500, 0.01)][:, None]
    mask = holes.assign(p, np.random.default_rng(0))[:, 0]
    assert mask.sum() == 300 and mask[:500].sum() == 300  # all holes in the rows the generator marks


def test_holes_learned_from_a_table_keep_only_frequent_patterns():
    table = pd.DataFrame({"a": [None, 1.0, 2.0, None] * 50, "b": ["x", None, "y", None] * 50})
    holes = HolePatterns.learn(table, ["a", "b"], max_patterns=3)
    assert len(holes.patterns) == 3 and np.isclose(holes.freqs.sum(), 1.0)
    assert HolePatterns.from_json(holes.to_json()).patterns.tolist() == holes.patterns.tolist()


def test_few_level_integers_with_holes_are_filled_with_levels_that_occurred():
    """A few-level integer column is a category to the GAN: the hole-filling imputer must give it one of its
    levels (rounding to the nearest whole number gave 7 for levels 0/10/20, and the fit stopped)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=400)
    table = pd.DataFrame({"x": x, "level": np.select([x < -0.4, x < 0.4], [0, 10], 20)})
    table["level"] = table["level"].mask(rng.random(400) < 0.2)
    gan = TabularGAN(epochs=1, batch_size=100, imputer_epochs=2).fit(table)
    filled = gan.impute(table, draws=3, seed=0)
    assert all(set(f["level"].unique()) <= {0, 10, 20} for f in filled)
