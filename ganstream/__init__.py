"""ganstream: GAN-based synthetic data for tables with holes and for time series.

    import ganstream as gs
    model = gs.TabularGAN(epochs=50).fit(df)          # or gs.TimeSeriesGAN(seq_len=24).fit(long_df)
    rows = model.sample(1000, seed=0)
    model.save("runs/adult")
    same = gs.load("runs/adult")                      # or gs.load("models:/adult@champion")
    report = gs.evaluate(same, df, target="income")   # a report object: print(report), report.to_dict()

`train` is the command line's `ganstream train` as a function (backends, checkpoints, tracking, registry).
Only the names in `__all__` are the public API; everything under `ganstream.trainers`, `ganstream.deploy`,
`ganstream.augment` and `ganstream.pipeline` is internal and may change.

The names are imported on first use (PEP 562), so `import ganstream` stays cheap for the command line,
which only needs its parser before any torch, Ray or MLflow import.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

try:  # the installed distribution's version (pyproject.toml), not a second copy of it
    from importlib.metadata import PackageNotFoundError, version as _version
    __version__ = _version("ganstream")
except PackageNotFoundError:  # the source copied into an MLflow model (code_paths) has no metadata
    __version__ = "unknown"

# public name -> module that defines it
_EXPORTS = {
    "TabularGAN": "ganstream.trainers.tabular.model",
    "TimeSeriesGAN": "ganstream.trainers.timeseries.model",
    "load": "ganstream.deploy.models",
    "evaluate": "ganstream.augment.evaluation",
    "train": "ganstream.pipeline.train",
    "Tracking": "ganstream.pipeline.train",
    "GanstreamError": "ganstream.trainers.errors",
}

__all__ = ["TabularGAN", "TimeSeriesGAN", "load", "train", "evaluate", "Tracking", "GanstreamError", "__version__"]

if TYPE_CHECKING:  # for type checkers and IDEs; at run time the names load lazily below
    from ganstream.augment.evaluation import evaluate
    from ganstream.deploy.models import load
    from ganstream.pipeline.train import Tracking, train
    from ganstream.trainers.errors import GanstreamError
    from ganstream.trainers.tabular.model import TabularGAN
    from ganstream.trainers.timeseries.model import TimeSeriesGAN


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'ganstream' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
