"""The README's "Your own data" snippets, run exactly as written (command line and Python) in a fresh
directory holding a `my_table.csv` with holes and a `label` column, on embedded MLflow: a newcomer's first
hour must not start with a broken example."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]


def snippets(language: str) -> list[str]:
    text = (REPO / "README.md").read_text()
    section = text[text.index("## Your own data"):text.index("\n## ", text.index("## Your own data") + 5)]
    return re.findall(rf"```{language}\n(.*?)```", section, re.S)


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    n = 300
    df = pd.DataFrame({"age": rng.integers(18, 80, n), "income": rng.lognormal(10, 0.5, n).round(2),
                       "city": rng.choice(["north", "south", "east"], n), "label": rng.choice(["yes", "no"], n)})
    df.loc[rng.random(n) < 0.1, "income"] = np.nan
    df.to_csv(tmp_path / "my_table.csv", index=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return tmp_path


def _env(workdir: Path) -> dict:
    bindir = str(Path(sys.executable).parent)  # the `ganstream` console script of this environment
    return {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}", "HOME": str(workdir),
            "GANSTREAM_CACHE_DIR": str(workdir / "cache")}


def test_the_command_line_snippet_runs_as_written(workdir):
    (block,) = snippets("sh")
    for line in [ln for ln in block.splitlines() if ln.strip()]:
        r = subprocess.run(["bash", "-c", line], cwd=workdir, env=_env(workdir), capture_output=True, text=True,
                           timeout=600)
        assert r.returncode == 0, f"{line}\n{r.stderr[-3000:]}"
    assert len(pd.read_csv(workdir / "synthetic.csv")) == 1000
    assert (pd.read_csv(workdir / "label_yes.csv")["label"] == "yes").all()
    assert len(pd.read_parquet(workdir / "imputed.parquet")) == 5 * 300
    assert len(pd.read_csv(workdir / "from_registry.csv")) == 1000


def test_the_python_snippet_runs_as_written(workdir):
    (block,) = snippets("python")
    r = subprocess.run([sys.executable, "-c", block], cwd=workdir, env=_env(workdir), capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "detection AUC" in r.stdout or "detection" in r.stdout, r.stdout
    assert (workdir / "my_model" / "model.json").is_file()
