"""Encoder round trip: any mixed table with holes in every column type decodes to itself."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trainers.encoding import TableEncoder
from trainers.errors import DataError
from trainers.schema import infer_schema


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
    for numeric in ("quantile", "minmax"):
        enc = TableEncoder(numeric, "indicator", small_integers=(numeric == "quantile")).fit(df)
        X = enc.transform(df)
        assert X.shape == (len(df), enc.output_dim) and np.isfinite(X).all()
        assert_same_table(df, enc.inverse_transform(X, missing="keep"))


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
