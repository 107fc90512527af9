"""Encoder round trip: any mixed table with holes in every column type decodes to itself (quantile, minmax
and mode-specific numeric encodings); the mode encoding's mixture, JSON form and model plumbing."""

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ganstream.trainers.encoding import TableEncoder
from ganstream.trainers.errors import ConfigError
from ganstream.trainers.mode_encoding import _squash, _unsquash, separated_modes
from ganstream.trainers.errors import DataError
from ganstream.trainers.schema import infer_schema


@st.composite
def mixed_tables(draw):
    n = draw(st.integers(min_value=2, max_value=60))
    def with_holes(values):
        holes = draw(st.lists(st.booleans(), min_size=n, max_size=n))
        holes[0] = False  # never an all-missing column (that is a DataError, tested separately)
        return [None if h else v for v, h in zip(values, holes)]
    floats = with_holes(draw(st.lists(st.floats(-1e6, 1e6, allow_nan=False, width=32), min_size=n, max_size=n)))
    ints = with_holes(draw(st.lists(st.integers(-10_000, 10_000), min_size=n, max_size=n)))
    cats = with_holes(draw(st.lists(st.sampled_from([" a", "b", "c c", "é", "?x"]), min_size=n, max_size=n)))
    bools = with_holes(draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    return pd.DataFrame({
        "f": pd.Series(floats, dtype="float64"),
        "i": pd.Series(ints, dtype="Int64"),
        "int_plain": pd.Series(draw(st.lists(st.integers(0, 5), min_size=n, max_size=n)), dtype="int64"),
        "s": pd.Series(cats, dtype="string"),
        "o": pd.Series(cats, dtype=object),
        "t": pd.Series(cats, dtype="str"),  # pandas 3's default text dtype: decoded by its own fast path
        "b": pd.Series(bools, dtype="boolean"),
    })


def assert_same_table(a: pd.DataFrame, b: pd.DataFrame, float_cols=("f",)):
    assert list(a.columns) == list(b.columns)
    assert list(map(str, a.dtypes)) == list(map(str, b.dtypes))
    pd.testing.assert_frame_equal(a.isna(), b.isna())
    for c in a.columns:
        x, y = a[c][a[c].notna()], b[c][b[c].notna()]
        if c in float_cols:
            span = float(x.max() - x.min()) or 1.0
            np.testing.assert_allclose(x.to_numpy(float), y.to_numpy(float), rtol=0, atol=1e-4 * span + 1e-6)
        else:
            assert x.tolist() == y.tolist(), c


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mixed_tables())
def test_round_trip_with_missing_values_in_every_column_type(df):
    for numeric in ("quantile", "minmax", "mode", "auto"):
        enc = TableEncoder(numeric, "indicator", small_integers=(numeric != "minmax")).fit(df)
        X = enc.transform(df)
        assert X.shape == (len(df), enc.output_dim) and np.isfinite(X).all()
        assert_same_table(df, enc.inverse_transform(X, missing="keep"))


def ring(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    theta = np.pi / 4 * rng.integers(0, 8, n)
    noise = 0.02 * rng.standard_normal((n, 2))
    return pd.DataFrame({"x": 2 * np.cos(theta) + noise[:, 0], "y": 2 * np.sin(theta) + noise[:, 1]})


def test_mode_encoding_finds_the_ring_modes_and_lays_out_one_hot_modes():
    """The ring's x (and y) marginal has 5 modes at 0, +-sqrt(2), +-2: the mixture finds exactly those, and
    each numeric column becomes a bounded offset plus a softmax span over its modes."""
    df = ring(4000)
    enc = TableEncoder("mode").fit(df)
    for col in ("x", "y"):
        p = enc.numeric_params[col]
        np.testing.assert_allclose(p["means"], [-2, -np.sqrt(2), 0, np.sqrt(2), 2], atol=0.01)
        assert max(p["stds"]) < 0.03
        value, mode = enc.column_spans(col)
        assert (value.kind, value.width, mode.role, mode.kind, mode.width) == ("bounded", 1, "mode", "softmax", 5)
    X = enc.transform(df, rng=np.random.default_rng(1))
    x_mode = X[:, 1:6].argmax(axis=1)
    y_mode = X[:, 7:12].argmax(axis=1)
    assert len(set(zip(x_mode, y_mode))) == 8  # the 8 ring modes are 8 of the 25 mode pairs
    assert np.abs(X[:, [0, 6]]).max() < 1
    np.testing.assert_allclose(enc.inverse_transform(X).to_numpy(), df.to_numpy(), atol=1e-5)


def test_mode_encoder_is_seeded_json_serialisable_and_keeps_tails(adult_small):
    a = TableEncoder("mode", small_integers=True, seed=3).fit(adult_small)
    b = TableEncoder("mode", small_integers=True, seed=3).fit(adult_small)
    assert a.numeric_params == b.numeric_params
    back = TableEncoder.from_json(json.loads(json.dumps(a.to_json())))
    assert back.spans == a.spans
    X = a.transform(adult_small, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(X, back.transform(adult_small, rng=np.random.default_rng(0)))
    # every value (fnlwgt's far tail included) decodes to itself, with its int64 dtype and its holes
    pd.testing.assert_frame_equal(back.inverse_transform(X), adult_small)
    d = np.linspace(-50, 50, 1001)
    np.testing.assert_allclose(_unsquash(_squash(d)), d, rtol=1e-9, atol=1e-12)
    assert np.abs(_squash(d)).max() < 1 and (np.diff(_squash(d)) > 0).all()


@settings(max_examples=20, deadline=None)
@given(mixed_tables())
def test_nan_mode_with_mode_encoding_marks_the_missing_cells(df):
    enc = TableEncoder("mode", "nan").fit(df)
    X = enc.transform(df)
    for name in ("f", "i"):
        spans = enc.column_spans(name)
        block = X[:, spans[0].start:spans[-1].stop]
        assert (np.isnan(block).all(axis=1) == df[name].isna().to_numpy()).all()
        assert not np.isnan(block[df[name].notna().to_numpy()]).any()


def test_mode_encoding_in_the_gan_conditions_on_modes_but_never_offers_them_as_conditions(adult_small):
    from ganstream.trainers.tabular.model import TabularGAN
    model = TabularGAN(epochs=1, batch_size=200, seed=0, numeric_encoding="mode", fill_missing="hotdeck")
    model.fit(adult_small)
    roles = {s.role for s in model.sampler.spans}
    assert roles == {"category", "mode"}  # adult_small's holes are in categorical columns (an extra category)
    # the same fit without mode conditions (holes filled the same way: the GAIN imputer's fit took ~40 of this
    # test's ~50 s and has nothing to do with which spans the condition sampler offers)
    assert "mode" not in {s.role for s in TabularGAN(epochs=1, batch_size=200, numeric_encoding="mode",
                                                      fill_missing="hotdeck",
                                                      condition_on_modes=False).fit(adult_small).sampler.spans}
    out = model.sample(500, seed=1)
    assert list(out.dtypes) == list(adult_small.dtypes)
    for col in ("age", "hours-per-week"):  # decoded inside the observed range, whole numbers
        assert out[col].between(adult_small[col].min(), adult_small[col].max()).all()
    with pytest.raises(ConfigError, match="conditions need a categorical"):
        model.sample(10, condition={"age": 30})
    with pytest.raises(ConfigError, match="numeric_encoding"):
        TabularGAN(numeric_encoding="cdf").config.validate()


@settings(max_examples=30, deadline=None)
@given(mixed_tables())
def test_nan_mode_marks_exactly_the_missing_cells(df):
    enc = TableEncoder("minmax", "nan").fit(df)
    X = enc.transform(df)
    for spec in enc.schema.columns:
        (span,) = enc.column_spans(spec.name)
        holes = np.isnan(X[:, span.start:span.stop]).all(axis=1)
        assert (holes == df[spec.name].isna().to_numpy()).all()


@pytest.mark.parametrize("small_integers", [False, True])
def test_round_trip_on_real_adult(adult_small, small_integers):
    enc = TableEncoder(small_integers=small_integers).fit(adult_small)
    assert (enc.column_spans("education-num")[0].kind == "softmax") == small_integers
    back = enc.inverse_transform(enc.transform(adult_small))
    pd.testing.assert_frame_equal(back, adult_small)


def test_quantile_encoding_is_standard_normal_even_for_point_masses(adult_small):
    enc = TableEncoder().fit(adult_small)
    X = enc.transform(adult_small, rng=np.random.default_rng(0))
    span = enc.column_spans("capital-gain")[0]  # >90% zeros
    z = X[:, span.start]
    assert abs(z.mean()) < 0.1 and abs(z.std() - 1) < 0.1


def test_fill_mode_never_returns_missing(adult_small):
    enc = TableEncoder().fit(adult_small)
    X = enc.transform(adult_small)
    assert enc.inverse_transform(X, missing="keep").isna().any().any()
    assert not enc.inverse_transform(X, missing="fill").isna().any().any()


@pytest.mark.parametrize("bad, message", [
    (pd.DataFrame({"a": [1.0, np.inf], "b": [1, 2]}), "infinite"),
    (pd.DataFrame({"a": [np.nan, np.nan], "b": [1, 2]}), "entirely missing"),
    (pd.DataFrame({"a": pd.Series([], dtype=float)}), "empty"),
])
def test_unusable_tables_raise_data_error(bad, message):
    with pytest.raises(DataError, match=message):
        infer_schema(bad)


def test_unknown_category_at_transform_time_is_a_data_error(adult_small):
    enc = TableEncoder().fit(adult_small)
    other = adult_small.copy()
    other.loc[0, "race"] = "Martian"
    with pytest.raises(DataError, match="never saw"):
        enc.transform(other)


def two_gaussians(k: float, light: float = 0.5) -> dict:
    """Mixture params of N(0, 1) and N(k, 1), the second with weight `light`."""
    return {"weights": [1 - light, light], "means": [0.0, k], "stds": [1.0, 1.0]}


def test_separated_modes_counts_groups_split_by_a_density_valley():
    """The auto rule's core: neighbouring modes count apart only when the density between them falls below
    a tenth of the lower peak (two equal unit Gaussians: ~4.9 sd apart), each side holding >= 5%; modes
    at the point-mass floor do not count, whatever their spacing."""
    assert separated_modes(two_gaussians(4.0), scale=3.0) == 1
    assert separated_modes(two_gaussians(6.0), scale=3.0) == 2
    assert separated_modes(two_gaussians(8.0, light=0.03), scale=3.0) == 1  # a 3% bump is not a mode
    skewed = {"weights": [0.3, 0.3, 0.2, 0.2], "means": [0.0, 1.5, 3.0, 5.0], "stds": [1.0, 1.2, 1.5, 2.0]}
    assert separated_modes(skewed, scale=3.0) == 1  # overlapping modes fitted to one skewed hump
    spikes = {"weights": [0.5, 0.25, 0.25], "means": [40.0, 50.0, 60.0], "stds": [0.01, 0.01, 0.01]}
    assert separated_modes(spikes, scale=10.0) == 0
    heaps = {"weights": [0.5, 0.5], "means": [40.0, 50.0], "stds": [0.4, 0.4]}  # integers: narrower than a step
    assert separated_modes(heaps, scale=5.0, resolution=1.0) == 0 and separated_modes(heaps, scale=5.0) == 2


def test_auto_encoding_gives_modes_to_separated_clusters_and_quantiles_to_the_rest():
    """numeric="auto" per column: the ring's x / y and a two-cluster column get mode spans; a heaped integer
    column (hours-per-week-like: 40 in 55% of the rows), a skewed one and two clusters too close to separate
    keep the quantile transform. Every column decodes to itself, the choice survives JSON."""
    rng = np.random.default_rng(0)
    n = 6000
    df = ring(n, seed=1)
    df["clusters"] = np.where(rng.random(n) < 0.7, 0.0, 8.0) + rng.standard_normal(n)
    df["close"] = np.where(rng.random(n) < 0.5, 0.0, 3.0) + rng.standard_normal(n)
    df["skewed"] = rng.lognormal(0.0, 1.0, n)
    df["hours"] = np.where(rng.random(n) < 0.55, 40, rng.integers(1, 99, n)).astype("int64")
    enc = TableEncoder("auto", small_integers=True, seed=0).fit(df)
    chosen = {c: enc.column_encoding(c) for c in df.columns}
    assert chosen == {"x": "mode", "y": "mode", "clusters": "mode", "close": "quantile", "skewed": "quantile",
                      "hours": "quantile"}
    assert enc.numeric_params["hours"]["auto"]["point_mass_share"] > 0.5
    assert enc.numeric_params["x"]["auto"]["separated_modes"] == 5
    assert enc.numeric_params["clusters"]["auto"]["separated_modes"] == 2
    for col, want in chosen.items():
        assert [s.kind for s in enc.column_spans(col)] == (["bounded", "softmax"] if want == "mode" else ["continuous"])
    # exactly the mixture numeric="mode" fits for the chosen columns (same seed, same sample)
    mode = TableEncoder("mode", small_integers=True, seed=0).fit(df[["x"]])
    assert {k: enc.numeric_params["x"][k] for k in ("weights", "means", "stds")} == \
        {k: mode.numeric_params["x"][k] for k in ("weights", "means", "stds")}
    back = TableEncoder.from_json(json.loads(json.dumps(enc.to_json())))
    X = back.transform(df, rng=np.random.default_rng(2))
    np.testing.assert_array_equal(X, enc.transform(df, rng=np.random.default_rng(2)))
    out = back.inverse_transform(X)
    assert out["hours"].tolist() == df["hours"].tolist()  # point masses decode exactly (quantile inverse)
    np.testing.assert_allclose(out.drop(columns="hours").to_numpy(), df.drop(columns="hours").to_numpy(), atol=1e-4)


def test_auto_default_on_adult_is_the_quantile_model_bit_for_bit(adult_small, tmp_path):
    """Adult's numeric columns are point masses (age, capital-gain/-loss, hours-per-week) or one skewed hump
    (fnlwgt): the default "auto" encodes all of them by quantiles, so the fit is the quantile fit — same
    samples — and the saved model records the choice per column and loads as trained."""
    from ganstream.trainers.tabular.model import TabularGAN
    fit = dict(epochs=2, batch_size=200, seed=1, fill_missing="hotdeck")
    auto = TabularGAN(**fit).fit(adult_small)
    assert auto.config.numeric_encoding == "auto"
    assert {auto.encoder.column_encoding(c) for c in auto.encoder.numeric_params} == {"quantile"}
    assert auto.encoder.numeric_params["fnlwgt"]["auto"]["separated_modes"] == 1
    quantile = TabularGAN(**fit, numeric_encoding="quantile").fit(adult_small)
    pd.testing.assert_frame_equal(auto.sample(2000, seed=3), quantile.sample(2000, seed=3))
    auto.save(tmp_path / "m")
    loaded = TabularGAN.load(tmp_path / "m")
    assert loaded.encoder.numeric == "auto"
    pd.testing.assert_frame_equal(loaded.sample(500, seed=4), auto.sample(500, seed=4))
