"""Joint modes (trainers/joint_encoding.py): accepted where columns are jointly clustered off the axes, refused
where the columns' own encodings explain the rows as well, exact to decode, seeded, saved as JSON."""

import json

import numpy as np
import pandas as pd
import pytest

from ganstream.trainers import joint_encoding as joint
from ganstream.trainers.encoding import TableEncoder


def rotated_grid(n: int, seed: int, angle_deg: float = 33.0, sigma: float = 0.05):
    axis = 2.0 * np.arange(5) - 4.0
    centres = np.stack(np.meshgrid(axis, axis), -1).reshape(-1, 2)
    t = np.deg2rad(angle_deg)
    centres = centres @ np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]]).T
    rng = np.random.default_rng(seed)
    x = centres[rng.integers(0, len(centres), n)] + sigma * rng.standard_normal((n, 2))
    return pd.DataFrame(x, columns=["x", "y"]), centres, sigma


@pytest.fixture(scope="module")
def grid_encoder():
    df, centres, sigma = rotated_grid(6000, seed=0)
    return TableEncoder(numeric="auto", joint_modes=True, seed=0).fit(df), df, centres, sigma


def test_a_rotated_grid_is_encoded_jointly_and_decodes_exactly(grid_encoder):
    enc, df, _, _ = grid_encoder
    assert {c: enc.column_encoding(c) for c in ("x", "y")} == {"x": "joint", "y": "joint"}
    assert enc.joint_evidence["gain_nats_per_column"] >= joint.MIN_GAIN_NATS
    joint_span = enc.spans[-1]
    assert joint_span.role == "joint" and joint_span.width == joint.mode_count(enc.joint) >= 25
    X = enc.transform(df, rng=np.random.default_rng(1))
    assert np.allclose(enc.inverse_transform(X)[["x", "y"]].to_numpy(), df.to_numpy(), atol=1e-5)


def test_the_encoding_can_place_rotated_modes(grid_encoder):
    """A generator that learnt the encoding perfectly (modes by their weights, u ~ N(0, I)) puts >= 90% of its
    samples within 3 sigma of a true centre, and reaches all 25: the ceiling the GAN trains towards. The
    per-column encodings cannot: their modes are the projections, which overlap."""
    enc, _, centres, sigma = grid_encoder
    rng = np.random.default_rng(2)
    w = np.asarray(enc.joint["weights"])
    x = joint.decode(enc.joint, rng.choice(len(w), 4000, p=w), rng.standard_normal((4000, 2)))
    dist = np.linalg.norm(x[:, None] - centres[None], axis=2)
    high_quality = dist.min(axis=1) <= 3 * sigma
    assert high_quality.mean() >= 0.9, high_quality.mean()
    assert np.unique(dist.argmin(axis=1)[high_quality]).size == 25


def test_independent_columns_keep_their_own_encodings():
    rng = np.random.default_rng(3)
    df = pd.DataFrame({"a": rng.normal(size=1500), "b": rng.lognormal(size=1500), "c": rng.uniform(size=1500)})
    on = TableEncoder(numeric="auto", joint_modes=True, seed=0).fit(df)
    off = TableEncoder(numeric="auto", joint_modes=False, seed=0).fit(df)
    assert on.joint is None and "gain" in on.joint_evidence["reason"]
    assert on.numeric_params == off.numeric_params and on.spans == off.spans
    assert np.array_equal(on.transform(df, rng=np.random.default_rng(0)), off.transform(df, rng=np.random.default_rng(0)))


def test_point_masses_and_few_levels_stay_out_of_the_block():
    rng = np.random.default_rng(4)
    n = 2000
    hours = np.where(rng.random(n) < 0.5, 40.0, rng.integers(1, 99, n))
    assert not joint.eligible(hours) and not joint.eligible(rng.integers(0, 10, n).astype(float))
    assert joint.eligible(rng.normal(size=n)) and joint.eligible(rng.integers(17, 90, n).astype(float))


def test_integer_columns_and_holes_in_a_joint_block():
    """Integers are dequantised for the fit and decode to whole numbers; a hole in a block column encodes
    (its indicator says it is missing) and decodes back to a hole."""
    df, _, _ = rotated_grid(3000, seed=5, sigma=0.3)
    df = (df * 10).round().astype("int64")
    df["x"] = df["x"].astype("float64").mask(np.random.default_rng(6).random(len(df)) < 0.05)
    enc = TableEncoder(numeric="auto", joint_modes=True, seed=0).fit(df)
    assert enc.joint is not None and enc.joint["step"] == [1.0, 1.0]
    X = enc.transform(df, rng=np.random.default_rng(0))
    back = enc.inverse_transform(X)
    assert back["x"].isna().equals(df["x"].isna())
    observed = df["x"].notna()
    # exact, but where the dequantising noise pushes a row past the tail its coordinates were fitted on
    for got, want in ((back.loc[observed, "x"], df.loc[observed, "x"]), (back["y"], df["y"])):
        assert (got - want).abs().max() <= 1 and (got == want).mean() >= 0.999
    assert (back["y"] == back["y"].round()).all()


def test_joint_encoder_is_seeded_and_json_round_trips(grid_encoder):
    enc, df, _, _ = grid_encoder
    again = TableEncoder(numeric="auto", joint_modes=True, seed=0).fit(df)
    assert again.joint == enc.joint
    restored = TableEncoder.from_json(json.loads(json.dumps(enc.to_json())))
    X = enc.transform(df.head(500), rng=np.random.default_rng(7))
    assert np.array_equal(restored.transform(df.head(500), rng=np.random.default_rng(7)), X)
    assert restored.inverse_transform(X).equals(enc.inverse_transform(X))


def test_the_gan_trains_samples_and_saves_with_joint_modes(tmp_path):
    """Through the model: the joint span is conditioned on (training-by-sampling), sampled, and saved as JSON;
    a reloaded model samples the same rows, and joint_modes=False is the per-column model."""
    from ganstream.trainers.tabular.model import TabularGAN

    df, _, _ = rotated_grid(2000, seed=8)
    df["kind"] = np.where(df["x"] > 0, "east", "west")
    gan = TabularGAN(epochs=2, batch_size=200, seed=0).fit(df)
    assert gan.encoder.joint is not None
    assert any(s.role == "joint" for s in gan.sampler.spans)
    rows = gan.sample(300, seed=1)
    assert list(rows.columns) == ["x", "y", "kind"] and rows[["x", "y"]].notna().all().all()
    assert (rows[["x", "y"]].abs() <= df[["x", "y"]].abs().max() + 1e-9).all().all()  # inside the observed range
    gan.save(tmp_path / "m")
    assert TabularGAN.load(tmp_path / "m").sample(300, seed=1).equals(rows)
    assert TabularGAN(epochs=1, batch_size=200, seed=0, joint_modes=False).fit(df).encoder.joint is None
