"""Models saved before the package was `ganstream` (version 0.1.0, written by commit bdee234 into
tests/data/models_0.1.0/, with the samples that code drew) still load through `ganstream.load` and draw the
very same samples for the same seed."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pytest

import ganstream

DATA = Path(__file__).resolve().parent / "data" / "models_0.1.0"


@pytest.mark.parametrize("kind", ["tabular", "timeseries"])
def test_models_saved_by_0_1_0_load_and_sample_the_same_rows(kind):
    model = ganstream.load(DATA / kind)
    assert model.kind == kind
    n = 20 if kind == "tabular" else 4
    drawn = io.StringIO()
    model.sample(n, seed=5).to_csv(drawn, index=False)
    assert drawn.getvalue() == (DATA / f"{kind}_sample_seed5.csv").read_text()


def test_the_old_tabular_models_imputer_still_fills_holes():
    model = ganstream.load(DATA / "tabular")
    holes = pd.DataFrame({"x": [None, 0.5], "k": [1, 2], "c": ["a", "b"]})
    (filled,) = model.impute(holes, draws=1, seed=0)
    assert filled["x"].notna().all() and filled.loc[1, "x"] == 0.5
