"""A ganstream generator as an MLflow pyfunc model, logged *from code* (no pickle).

MLflow normally cloudpickles a `PythonModel` instance into `python_model.pkl`. We use MLflow's
"models from code" instead: the logged model holds a tiny entry script (written by `entry_script`) that
imports `GanstreamGenerator` from this module and hands an instance to `mlflow.models.set_model`. The
`ganstream` package (its model and registry code: `ganstream/__init__.py`, `trainers/`, `deploy/`) travels with
the model as `code_paths` (plain source, under its one import name), and the weights stay what `train` wrote:
`model.json` + `*.safetensors` under the artifact key `model_dir`. Loading therefore executes our source
and reads JSON + safetensors; nothing is unpickled.

Input of `predict`, by what the DataFrame holds:
* a `rows` column: sampling requests, one per input row, outputs concatenated. Tabular models also read
  `seed`, `condition` ("column=value") and `missing` ("keep"/"fill"); time-series models read `seed` and
  return `rows` sequences in long format (series_id, step, features).
* anything else is data: a tabular model imputes its missing cells (params `draws`, `seed`; with draws > 1
  a leading `draw` column); a time-series model continues it as a history (params `horizon` (required),
  `draws` (default 1), `seed`) and returns series_id, draw, step, features.

    gen = mlflow.pyfunc.load_model("models:/adult@champion")
    gen.predict(pd.DataFrame({"rows": [1000], "seed": [0]}))          # 1000 synthetic rows
    gen.predict(table_with_holes, params={"draws": 3})                 # 3 imputations
    mlflow.pyfunc.load_model("models:/stocks@champion").predict(history, params={"horizon": 10, "draws": 20})
"""

from __future__ import annotations

from pathlib import Path

import mlflow.pyfunc
import pandas as pd

ARTIFACT_KEY = "model_dir"

_ENTRY = '''"""ganstream pyfunc entry point (MLflow models-from-code; no pickle)."""
import mlflow.models
from ganstream.deploy.pyfunc_model import GanstreamGenerator

mlflow.models.set_model(GanstreamGenerator())
'''


def entry_script(directory: str | Path) -> Path:
    """Write the models-from-code entry script into `directory` and return its path."""
    path = Path(directory) / "ganstream_pyfunc_entry.py"
    path.write_text(_ENTRY)
    return path


def code_paths(directory: str | Path) -> list[str]:
    """A copy of the `ganstream` package as the model needs it (the package file, trainers/, deploy/; no tests,
    no data) under `directory`: logged with the model, so it loads where ganstream is not installed. Copied
    rather than pointed at, because the checkout keeps trainers/ and deploy/ beside each other, not inside
    ganstream/ (they install there)."""
    import shutil

    import ganstream
    import ganstream.trainers

    root = Path(directory) / "ganstream"
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy2(Path(ganstream.__file__), root / "__init__.py")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(Path(ganstream.trainers.__file__).parent, root / "trainers", ignore=ignore)
    shutil.copytree(Path(__file__).resolve().parent, root / "deploy",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "k8s", "Dockerfile*", "*.yml", "*.yaml"))
    return [str(root)]


def signature():
    """No input schema (the input is free-form: requests or data), but declared params: MLflow passes
    `params` to predict only when the signature declares them (0 = not given)."""
    from mlflow.models import ModelSignature
    from mlflow.types import ParamSchema, ParamSpec
    return ModelSignature(inputs=None, outputs=None, params=ParamSchema(
        [ParamSpec("draws", "long", 1), ParamSpec("horizon", "long", 0), ParamSpec("seed", "long", 0)]))


def _text(value, default):
    if value is None:
        return default
    try:
        if pd.isna(value):
            return default
    except (TypeError, ValueError):
        pass
    return value


class GanstreamGenerator(mlflow.pyfunc.PythonModel):
    """Samples synthetic rows from the ganstream model directory logged under artifacts['model_dir'].
    The pd.DataFrame hint tells MLflow not to infer a schema: the input is free-form (rows, seed, ...)."""

    def load_context(self, context):
        from ganstream.deploy.models import load
        self.model = load(context.artifacts[ARTIFACT_KEY])

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        from ganstream.trainers.errors import ConfigError

        if isinstance(model_input, dict):
            model_input = pd.DataFrame(model_input)
        if not isinstance(model_input, pd.DataFrame):
            raise ConfigError("input must be a DataFrame: a 'rows' column to sample (optionally 'seed', "
                              "'condition' as 'column=value', 'missing' as 'keep' or 'fill'), or data to impute / extend")
        if "rows" not in model_input.columns:
            return self._transform(model_input, params or {})
        if self.model.kind == "timeseries":  # series ids run on across requests, so they stay unique
            frames, offset = [], 0
            for _, req in model_input.iterrows():
                frame = self.model.sample(int(req["rows"]), seed=int(_text(req.get("seed"), 0)))
                frames.append(frame.assign(series_id=frame["series_id"] + offset))
                offset += int(req["rows"])
            return pd.concat(frames, ignore_index=True)
        parts = []
        for _, req in model_input.iterrows():
            condition = _text(req.get("condition"), None)
            if condition is not None:
                if "=" not in str(condition):
                    raise ConfigError(f"condition must look like column=value (got {condition!r})")
                col, value = str(condition).split("=", 1)
                condition = {col.strip(): value}
            parts.append(self.model.sample(int(req["rows"]), seed=int(_text(req.get("seed"), 0)),
                                           condition=condition, missing=str(_text(req.get("missing"), "keep"))))
        return pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]

    def _transform(self, data: pd.DataFrame, params: dict) -> pd.DataFrame:
        """Data in, data out: imputation for tabular models, continuation for time-series models."""
        from ganstream.trainers.errors import ConfigError
        seed, draws = int(params.get("seed", 0)), int(params.get("draws", 1))
        if self.model.kind == "timeseries":
            if int(params.get("horizon", 0)) < 1:
                raise ConfigError("continuing a history needs params={'horizon': k} (and optionally 'draws', 'seed')")
            return self.model.extend(data, horizon=int(params["horizon"]), draws=draws, seed=seed)
        filled = self.model.impute(data, draws=draws, seed=seed)
        if draws == 1:
            return filled[0]
        out = pd.concat([d.assign(draw=k) for k, d in enumerate(filled)], ignore_index=True)
        return out[["draw", *data.columns]]
