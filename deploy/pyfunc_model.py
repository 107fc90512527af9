"""A ganstream generator as an MLflow pyfunc model, logged *from code* (no pickle).

MLflow normally cloudpickles a `PythonModel` instance into `python_model.pkl`. We use MLflow's
"models from code" instead: the logged model holds a tiny entry script (written by `entry_script`) that
imports `GanstreamGenerator` from this module and hands an instance to `mlflow.models.set_model`. Our
packages travel with the model as `code_paths` (plain source), and the weights stay what `train` wrote:
`model.json` + `*.safetensors` under the artifact key `model_dir`. Loading therefore executes our source
and reads JSON + safetensors; nothing is unpickled.

Input of `predict`: a DataFrame with a `rows` column (required) and optionally `seed`, `condition`
("column=value") and `missing` ("keep"/"fill"); one request per input row, the outputs concatenated.

    mlflow.pyfunc.load_model("models:/adult@champion").predict(pd.DataFrame({"rows": [1000], "seed": [0]}))
"""

from __future__ import annotations

from pathlib import Path

import mlflow.pyfunc
import pandas as pd

ARTIFACT_KEY = "model_dir"

_ENTRY = '''"""ganstream pyfunc entry point (MLflow models-from-code; no pickle)."""
import mlflow.models
from deploy.pyfunc_model import GanstreamGenerator

mlflow.models.set_model(GanstreamGenerator())
'''


def entry_script(directory: str | Path) -> Path:
    """Write the models-from-code entry script into `directory` and return its path."""
    path = Path(directory) / "ganstream_pyfunc_entry.py"
    path.write_text(_ENTRY)
    return path


def code_paths() -> list[str]:
    """Source directories logged with the model so it loads even where ganstream is not installed."""
    import trainers
    here = Path(__file__).resolve().parent
    return [str(here), str(Path(trainers.__file__).resolve().parent)]


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
        from trainers.base import load_model
        self.model = load_model(context.artifacts[ARTIFACT_KEY])

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        from trainers.errors import ConfigError

        if isinstance(model_input, dict):
            model_input = pd.DataFrame(model_input)
        if not isinstance(model_input, pd.DataFrame) or "rows" not in model_input.columns:
            raise ConfigError("input must be a DataFrame with a 'rows' column (and optionally 'seed', "
                              "'condition' as 'column=value', 'missing' as 'keep' or 'fill')")
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
