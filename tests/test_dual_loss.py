"""`--loss dual` (D2GAN-style): the loss has the optimum the docs claim, the model fits with and without
packing, samples reproducibly, and survives save/load with both discriminators."""

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch

from ganstream.pipeline.cli import main
from ganstream.trainers.errors import ConfigError
from ganstream.trainers.tabular.losses import discriminator_loss, generator_loss
from ganstream.trainers.tabular.networks import DualDiscriminator
from ganstream.trainers.tabular.model import TabularGAN


def _inverse_softplus(d: np.ndarray) -> np.ndarray:
    return np.log(np.expm1(d))


def test_value_at_optimal_discriminators_is_alpha_kl_plus_beta_reverse_kl():
    """With D1* = alpha p/q and D2* = beta q/p (D2GAN, Prop. 1) the game's value is
    alpha (log alpha - 1) + beta (log beta - 1) + alpha KL(p||q) + beta KL(q||p); the discriminator loss
    is minus that value, and it is stationary there."""
    alpha, beta = 0.2, 0.1
    p, q = np.array([0.5, 0.3, 0.2]), np.array([0.2, 0.2, 0.6])
    real_x = np.repeat(np.arange(3), (p * 10).astype(int))  # samples in exact proportion: means = expectations
    fake_x = np.repeat(np.arange(3), (q * 10).astype(int))

    def scores(x, requires_grad=False):
        s = np.stack([_inverse_softplus(alpha * p / q)[x], _inverse_softplus(beta * q / p)[x]], axis=1)
        return torch.tensor(s, dtype=torch.float64, requires_grad=requires_grad)

    real_s, fake_s = scores(real_x, True), scores(fake_x, True)
    loss = discriminator_loss("dual", real_s, fake_s, alpha, beta)
    kl, rkl = float(np.sum(p * np.log(p / q))), float(np.sum(q * np.log(q / p)))
    value = alpha * (math.log(alpha) - 1) + beta * (math.log(beta) - 1) + alpha * kl + beta * rkl
    assert loss.item() == pytest.approx(-value, abs=1e-9)
    loss.backward()
    # Optimum: the gradient w.r.t. the discriminators' value at each point x (real and fake samples at the same
    # x share it) vanishes.
    per_x = torch.zeros(3, 2, dtype=torch.float64)
    per_x.index_add_(0, torch.from_numpy(real_x), real_s.grad).index_add_(0, torch.from_numpy(fake_x), fake_s.grad)
    assert per_x.abs().max() < 1e-9 and real_s.grad.abs().max() > 1e-3
    # The generator's part of the value (the terms that depend on fakes) is what G minimises.
    g = generator_loss("dual", scores(fake_x), beta).item()
    assert g == pytest.approx(-alpha * float(np.sum(q * p / q)) + beta * float(np.sum(q * np.log(beta * q / p))), abs=1e-9)


def test_dual_loss_is_finite_for_extreme_scores():
    s = torch.tensor([[-200.0, 200.0], [200.0, -200.0]], dtype=torch.float32, requires_grad=True)
    loss = discriminator_loss("dual", s, s) + generator_loss("dual", s)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(s.grad).all()


def test_dual_discriminator_packs_and_keeps_two_critics():
    d = DualDiscriminator(5, (16,), pac=4)
    out = d(torch.randn(8, 5))
    assert out.shape == (2, 2)
    assert not torch.allclose(out[:, 0], out[:, 1])  # two independent networks
    assert {k.split(".")[0] for k in d.state_dict()} == {"d1", "d2"}


@pytest.fixture(scope="module")
def table():
    rng = np.random.default_rng(0)
    n = 1000
    group = rng.choice(["a", "b", "c"], size=n, p=[0.6, 0.3, 0.1])
    x = np.where(group == "a", 0.0, np.where(group == "b", 5.0, 10.0)) + rng.standard_normal(n)
    return pd.DataFrame({"group": pd.Series(group, dtype=object), "x": x})


@pytest.mark.parametrize("pac", [1, 10])
def test_dual_fits_samples_saves_and_loads(table, tmp_path, pac):
    model = TabularGAN(loss="dual", pac=pac, epochs=2, batch_size=100, seed=0).fit(table)
    assert isinstance(model.discriminator, DualDiscriminator) and model.discriminator.pac == pac
    assert all(math.isfinite(h["d_loss"]) and math.isfinite(h["g_loss"]) for h in model.history)
    a = model.sample(300, seed=4)
    assert a.equals(model.sample(300, seed=4)) and not a.equals(model.sample(300, seed=5))
    assert set(a["group"]) <= {"a", "b", "c"} and a["x"].notna().all()
    model.save(tmp_path / "m")
    meta = json.loads((tmp_path / "m" / "model.json").read_text())
    assert meta["config"]["loss"] == "dual" and meta["config"]["dual_alpha"] == pytest.approx(1.0)
    loaded = TabularGAN.load(tmp_path / "m")
    assert isinstance(loaded.discriminator, DualDiscriminator)
    for k, v in model.discriminator.state_dict().items():
        assert torch.equal(v, loaded.discriminator.state_dict()[k])
    assert loaded.sample(300, seed=4).equals(a)


def test_same_seed_same_dual_model(table):
    a = TabularGAN(loss="dual", epochs=1, batch_size=100, seed=3).fit(table).sample(200, seed=0)
    b = TabularGAN(loss="dual", epochs=1, batch_size=100, seed=3).fit(table).sample(200, seed=0)
    assert a.equals(b)


def test_bad_dual_weights_are_rejected(table):
    with pytest.raises(ConfigError, match="dual_alpha and dual_beta must be > 0"):
        TabularGAN(loss="dual", dual_beta=0.0, epochs=1, batch_size=100).fit(table)


def test_cli_trains_with_dual_loss(table, tmp_path, capsys):
    data = tmp_path / "t.csv"
    table.to_csv(data, index=False)
    out = tmp_path / "model"
    assert main(["--quiet", "train", str(data), "--kind", "tabular", "--loss", "dual", "--pac", "5",
                 "--epochs", "1", "--batch-size", "100", "--out", str(out)]) == 0
    assert TabularGAN.load(out).config.loss == "dual"
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:  # argparse usage errors exit 2 themselves
        main(["--quiet", "train", str(data), "--kind", "tabular", "--loss", "d2gan", "--out", str(tmp_path / "bad")])
    assert exc.value.code == 2
    assert "invalid choice" in capsys.readouterr().err and not (tmp_path / "bad").exists()


def test_all_numeric_table_fits_and_samples(tmp_path):
    """A table without any categorical column has nothing to condition on (the mode-collapse benchmark's 2-D
    mixtures): training draws rows uniformly and sampling needs no condition."""
    rng = np.random.default_rng(1)
    xy = pd.DataFrame(rng.standard_normal((400, 2)) * [1.0, 3.0], columns=["x", "y"])
    model = TabularGAN(loss="dual", epochs=1, batch_size=100, seed=0).fit(xy)
    assert model.sampler.dim == 0
    s = model.sample(50, seed=1)
    assert list(s.columns) == ["x", "y"] and s.notna().all().all()
    model.save(tmp_path / "m")
    assert TabularGAN.load(tmp_path / "m").sample(50, seed=1).equals(s)
