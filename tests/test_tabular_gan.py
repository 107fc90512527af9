"""Tabular GAN: schema/dtype fidelity, exact conditioning, realistic missingness, determinism, persistence."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from ganstream.trainers.kinds import load_model
from ganstream.trainers.tabular.conditioning import ConditionSampler
from ganstream.trainers.encoding import TableEncoder
from ganstream.trainers.errors import ConfigError, DataError, ModelError
from ganstream.trainers.tabular.losses import LOSSES, discriminator_loss, generator_loss
from ganstream.trainers.tabular.model import TabularGAN


def test_sample_has_training_schema_and_dtypes(fitted_gan, adult_small):
    out = fitted_gan.sample(500, seed=1)
    assert list(out.columns) == list(adult_small.columns)
    assert list(map(str, out.dtypes)) == list(map(str, adult_small.dtypes))
    for col in ("workclass", "race", "income"):
        assert set(out[col].dropna()) <= set(adult_small[col].dropna())


def test_missing_keep_reproduces_holes_and_fill_removes_them(fitted_gan, adult_small):
    keep = fitted_gan.sample(4000, seed=2, missing="keep")
    fill = fitted_gan.sample(4000, seed=2, missing="fill")
    assert not fill.isna().any().any()
    cols_with_holes = adult_small.columns[adult_small.isna().any()]
    assert keep[cols_with_holes].isna().any().all()
    assert not keep.drop(columns=cols_with_holes).isna().any().any()


def test_conditional_sampling_is_exact(fitted_gan):
    for value in (" >50K", ">50K"):  # exact text, or the same ignoring surrounding spaces
        out = fitted_gan.sample(300, seed=3, condition={"income": value})
        assert (out["income"] == " >50K").all()
    rare = fitted_gan.sample(200, seed=3, condition={"race": " Other"})
    assert (rare["race"] == " Other").all()


@pytest.mark.parametrize("condition, message", [
    ({"nope": "x"}, "unknown condition column"),
    ({"age": "30"}, "conditions need a categorical"),
    ({"income": "rich"}, "not a known category"),
])
def test_bad_conditions_are_config_errors(fitted_gan, condition, message):
    with pytest.raises(ConfigError, match=message):
        fitted_gan.sample(10, condition=condition)


@pytest.mark.parametrize("n", [0, -5, 2.5])
def test_bad_row_counts_are_config_errors(fitted_gan, n):
    with pytest.raises(ConfigError):
        fitted_gan.sample(n)


def test_same_seed_same_samples_different_seed_different(fitted_gan):
    a, b, c = (fitted_gan.sample(1000, seed=s) for s in (7, 7, 8))
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(c)


def test_same_seed_same_fit(adult_small):
    small = adult_small.iloc[:1000]
    m1 = TabularGAN(epochs=1, batch_size=100, seed=5, fill_missing="hotdeck").fit(small)
    m2 = TabularGAN(epochs=1, batch_size=100, seed=5, fill_missing="hotdeck").fit(small)
    for (k, v1), v2 in zip(m1.generator.state_dict().items(), m2.generator.state_dict().values()):
        assert torch.equal(v1, v2), k
    pd.testing.assert_frame_equal(m1.sample(200, seed=0), m2.sample(200, seed=0))


def test_save_load_round_trip_is_exact_and_pickle_free(fitted_gan, tmp_path):
    fitted_gan.save(tmp_path / "m")
    files = sorted(p.name for p in (tmp_path / "m").iterdir())
    assert "model.json" in files and all(f.endswith((".json", ".safetensors")) for f in files)
    json.loads((tmp_path / "m" / "model.json").read_text())
    loaded = load_model(tmp_path / "m")
    pd.testing.assert_frame_equal(loaded.sample(700, seed=4), fitted_gan.sample(700, seed=4))


def test_corrupt_model_dirs_are_model_errors(fitted_gan, tmp_path):
    with pytest.raises(ModelError, match="not a model directory"):
        load_model(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="no model.json"):
        load_model(tmp_path / "empty")
    fitted_gan.save(tmp_path / "m")
    (tmp_path / "m" / "generator.safetensors").write_bytes(b"garbage")
    with pytest.raises(ModelError):
        load_model(tmp_path / "m")


def test_training_by_sampling_oversamples_rare_categories(adult_small):
    enc = TableEncoder().fit(adult_small)
    sampler = ConditionSampler.from_data(enc.transform(adult_small), enc.spans)
    cond, span, g, rows = sampler.sample_train(20000, np.random.default_rng(0))
    X = enc.transform(adult_small)
    assert (X[rows][np.arange(len(rows)), g - sampler.offsets[span] + np.array([s.start for s in sampler.spans])[span]] == 1).all()
    j = sampler.span_index("race")
    picked = g[span == j] - sampler.offsets[j]
    race = enc.schema["race"]
    rarest = int(np.argmin(race.frequencies))
    assert (picked == rarest).mean() > 3 * race.frequencies[rarest]


@pytest.mark.parametrize("loss", LOSSES)
def test_losses_push_in_the_right_direction(loss):
    if loss == "dual":  # column 0: D1, high on real rows; column 1: D2, high on fakes
        real, fake = torch.tensor([[2.0, -2.0]]).repeat(8, 1), torch.tensor([[-2.0, 2.0]]).repeat(8, 1)
        better_fake = torch.tensor([[1.0, -1.0]]).repeat(8, 1)
    else:
        real, fake, better_fake = torch.full((8, 1), 2.0), torch.full((8, 1), -2.0), torch.full((8, 1), 1.0)
    assert generator_loss(loss, better_fake) < generator_loss(loss, fake)
    assert discriminator_loss(loss, real, fake) < discriminator_loss(loss, fake, real)


@pytest.mark.parametrize("loss", ["non-saturating", "minimax"])
def test_other_losses_train(adult_small, loss):
    m = TabularGAN(epochs=1, batch_size=100, loss=loss, fill_missing="hotdeck").fit(adult_small.iloc[:500])
    assert np.isfinite(m.history[-1]["g_loss"]) and len(m.sample(50)) == 50


def test_fit_rejects_bad_configs_and_tiny_tables(adult_small):
    with pytest.raises(ConfigError, match="multiple of pac"):
        TabularGAN(batch_size=105)
    with pytest.raises(DataError, match="fewer than --batch-size"):
        TabularGAN(batch_size=500, adapt_batch_size=False).fit(adult_small.iloc[:100])
    with pytest.raises(DataError, match="at least 10"):
        TabularGAN(epochs=1).fit(adult_small.iloc[:9])
    with pytest.raises(ConfigError, match="unknown TabularGAN option.*epoch"):
        TabularGAN(epoch=3)


def test_small_tables_train_with_default_options_and_say_so(adult_small):
    """A table smaller than a batch trains with the largest multiple of pac it fills (10 rows: one pack)."""
    notes = []
    for rows in (10, 37, 200):
        m = TabularGAN(epochs=2).fit(adult_small.iloc[:rows], info=notes.append)  # holes included: imputer runs
        assert m.config.batch_size == (rows // 10) * 10 and len(m.sample(25, seed=1)) == 25
    assert [n for n in notes if n.startswith("batch size")] == [
        f"batch size 500 -> {(r // 10) * 10}: the table has {r:,} rows" for r in (10, 37, 200)]
    assert "hole-filling imputer: 2 passes over the rows (min(epochs, 40))" in notes


@pytest.mark.parametrize("rows, workers, epochs", [(70, 1, 2000), (1_200, 1, 1000), (1_200, 2, 2000), (3_000, 1, 334),
                                                   (3_500, 1, 300), (30_000, 1, 300)])
def test_default_epochs_give_a_small_table_enough_steps(rows, workers, epochs):
    """epochs=None: 300 passes, or as many as MIN_STEPS optimiser steps need (per worker, one step per batch);
    the fit says when it raises them. An explicit epochs is kept as given."""
    notes = []
    m = TabularGAN()
    m.adapt_batch_size(rows, notes.append, workers)
    m.resolve_epochs(rows, notes.append, workers)
    assert m.config.epochs == epochs
    assert any(n.startswith(f"epochs 300 -> {epochs:,}:") for n in notes) == (epochs > 300), notes
    explicit = TabularGAN(epochs=2)
    explicit.adapt_batch_size(rows, None, workers)
    explicit.resolve_epochs(rows, None, workers)
    assert explicit.config.epochs == 2


def test_target_option_trains_the_auxiliary_classifier(adult_small):
    m = TabularGAN(epochs=1, batch_size=100, fill_missing="hotdeck", target="income").fit(adult_small.iloc[:1000])
    assert np.isfinite(m.history[-1]["target_loss"])


@pytest.mark.parametrize("target, message", [("salary", "not in the table"), ("fnlwgt", "must be categorical")])
def test_bad_targets_are_config_errors(adult_small, target, message):
    with pytest.raises(ConfigError, match=message):
        TabularGAN(epochs=1, batch_size=100, fill_missing="hotdeck", target=target).fit(adult_small.iloc[:500])


def test_model_directory_carries_no_training_rows(fitted_gan, adult_small, tmp_path):
    """A generator is shared through the registry: its files must not embed the training table."""
    from safetensors.torch import load_file
    fitted_gan.save(tmp_path / "m")
    n = len(adult_small)
    for f in (tmp_path / "m").glob("*.safetensors"):
        for name, t in load_file(str(f)).items():
            assert t.dim() == 0 or t.shape[0] != n, f"{f.name}:{name} has one entry per training row"


def test_lazy_gradient_penalty_option(adult_small):
    m = TabularGAN(epochs=1, batch_size=100, gp_every=4, fill_missing="hotdeck").fit(adult_small.iloc[:1000])
    assert np.isfinite(m.history[-1]["d_loss"])
    with pytest.raises(ConfigError, match="gp_every"):
        TabularGAN(gp_every=0).fit(adult_small)


def test_generator_average_samples_from_averaged_weights_and_survives_save(adult_small, tmp_path):
    """generator_average > 0: samples come from the moving average of the generator's weights (not the last
    weights), and a saved model samples the same rows after loading."""
    gan = TabularGAN(epochs=2, batch_size=200, imputer_epochs=1, generator_average=0.9).fit(adult_small.iloc[:600])
    live, average = gan.generator.state_dict(), gan.average.state_dict()
    assert any(not torch.equal(live[k], average[k]) for k in live if k.endswith("weight"))
    gan.save(tmp_path / "m")
    again = TabularGAN.load(tmp_path / "m")
    pd.testing.assert_frame_equal(again.sample(200, seed=4), gan.sample(200, seed=4))
    with pytest.raises(ConfigError, match="generator_average"):
        TabularGAN(generator_average=1.0)
