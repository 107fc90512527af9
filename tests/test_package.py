"""The installed package: one top-level name (`ganstream`), a public API that is what `__all__` says, docstrings
that list every hyper-parameter with its default, and a wheel that works where a user's own `pipeline/` or
`trainers/` folder sits in the working directory."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

import ganstream

REPO = Path(__file__).resolve().parents[1]


def test_public_api_is_all_and_resolves():
    assert set(ganstream.__all__) >= {"TabularGAN", "TimeSeriesGAN", "load", "train", "evaluate"}
    for name in ganstream.__all__:
        assert getattr(ganstream, name) is not None, name
    with pytest.raises(AttributeError):
        ganstream.not_a_name  # noqa: B018


def documented_default(doc: str, name: str):
    """The value in `name (VALUE)` of a docstring (parentheses inside VALUE allowed)."""
    import ast
    start = doc.index(f"{name} (") + len(name) + 2
    depth, end = 1, start
    while depth:
        depth += {"(": 1, ")": -1}.get(doc[end], 0)
        end += 1
    text = doc[start:end - 1].split(" -> ")[0]
    return ast.literal_eval(text)


@pytest.mark.parametrize("cls_name, config_module", [("TabularGAN", "ganstream.trainers.tabular.config"),
                                                      ("TimeSeriesGAN", "ganstream.trainers.timeseries.config")])
def test_model_docstrings_list_every_parameter_with_its_default(cls_name, config_module):
    import importlib
    cls = getattr(ganstream, cls_name)
    config = getattr(importlib.import_module(config_module), cls_name + "Config")
    doc = cls.__doc__
    for f in dataclasses.fields(config):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        assert f"{f.name} (" in doc, f"{cls_name} docstring does not list {f.name}"
        written = documented_default(doc, f.name)
        assert written == getattr(default, "value", default), f"{f.name}: documented {written!r}, default {default!r}"
    for fn in (ganstream.train, ganstream.load, ganstream.evaluate):
        assert fn.__doc__ and len(fn.__doc__) > 80, fn


def test_models_follow_estimator_conventions():
    gan = ganstream.TabularGAN(epochs=3, pac=5, batch_size=100)
    assert gan.config.epochs == 3 and not gan.is_fitted and "epochs=3" in repr(gan)
    with pytest.raises(ganstream.GanstreamError, match="not fitted"):
        gan.sample(5)
    with pytest.raises(ganstream.GanstreamError, match="unknown TimeSeriesGAN option"):
        ganstream.TimeSeriesGAN(seq_length=24)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", str(REPO),
                    "-w", str(out)], check=True, capture_output=True, cwd=out)
    (found,) = out.glob("ganstream-*.whl")
    return found


def test_the_wheel_holds_only_ganstream(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names} == {"ganstream", wheel.name.split("-py3")[0] + ".dist-info"}
    assert "ganstream/trainers/tabular/model.py" in names and "ganstream/deploy/pyfunc_model.py" in names
    assert not [n for n in names if "k8s" in n or "Dockerfile" in n or "/tests/" in n]
    meta = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("METADATA"))).decode()
    assert "License-Expression: Apache-2.0" in meta


def test_the_wheel_works_beside_a_users_own_pipeline_folder(wheel, tmp_path):
    """Installed from the wheel alone (no editable checkout on the path), in a directory holding a user's own
    `pipeline/` and `trainers/` packages that would break a bare `import pipeline`: fit, sample, CLI."""
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)],
                   check=True, capture_output=True)
    user = tmp_path / "project"
    for folder in ("pipeline", "trainers"):
        (user / folder).mkdir(parents=True)
        (user / folder / "__init__.py").write_text(f"raise ImportError('the user\\'s own {folder} package')\n")
    script = ("import pandas as pd, numpy as np, ganstream as g\n"
              "assert g.__file__.startswith(%r), g.__file__\n"
              "rng = np.random.default_rng(0)\n"
              "df = pd.DataFrame({'x': rng.normal(size=60), 'c': rng.choice(['a', 'b'], 60)})\n"
              "rows = g.TabularGAN(epochs=2).fit(df).sample(10, seed=0)\n"
              "assert len(rows) == 10 and list(rows.columns) == ['x', 'c']\n"
              "from ganstream.pipeline.cli import main\n"
              "assert main(['--quiet', 'sample', '--help']) == 0\n") % str(site)
    # -S: no site-packages .pth files, so the editable checkout's finder is not loaded; dependencies still come
    # from this environment's site-packages, after the wheel's target directory
    env = {**os.environ, "PYTHONPATH": f"{site}{os.pathsep}{sysconfig.get_paths()['purelib']}"}
    r = subprocess.run([sys.executable, "-S", "-c", script], cwd=user, env=env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode in (0, None) or "SystemExit: 0" in r.stderr, r.stderr[-2000:]
