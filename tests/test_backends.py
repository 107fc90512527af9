"""Where a fit runs: `auto` picks the in-process backend for one worker and Ray for what only Ray serves, and
says so first; the in-process backend writes checkpoints and `--resume` continues from them exactly, for both
model kinds; a checkpoint it cannot trust is refused with one line; a Ray cluster that cannot start is one line
and exit 4 with nothing written. (Ray Train's own checkpoints and resume: test_ray_train.py,
test_ray_timeseries.py.)"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ganstream.trainers.backends import fit
from ganstream.trainers.backends.checkpoint import LocalCheckpoints
from ganstream.trainers.backends.options import Backend, FitOptions
from ganstream.trainers.errors import ConfigError, ModelError
from ganstream.trainers.tabular.model import TabularGAN
from ganstream.trainers.timeseries.model import TimeSeriesGAN
from helpers import run
from test_timeseries import sines

REPO = Path(__file__).resolve().parents[1]
TINY = dict(generator_hidden=(32, 32), discriminator_hidden=(32, 32), batch_size=100, seed=3)


@pytest.mark.parametrize("options, backend, why", [
    (FitOptions(), "local", "one worker and no --ray-address"),
    (FitOptions(workers=2), "ray", "2 workers"),
    (FitOptions(ray_address="10.0.0.1:6379"), "ray", "--ray-address 10.0.0.1:6379"),
    (FitOptions(per_partition="region"), "ray", "--per-partition region"),
    (FitOptions(object_store_mb=100), "ray", "--object-store-mb"),
    (FitOptions(backend="ray"), "ray", "asked for with --backend ray"),
    (FitOptions(backend="local"), "local", "asked for with --backend local"),
])
def test_auto_picks_local_for_one_worker_and_ray_for_what_only_ray_serves(options, backend, why):
    chosen, reason = options.choose()
    assert chosen == Backend(backend) and why in reason


@pytest.mark.parametrize("options, message", [
    (FitOptions(backend="local", workers=2), "--workers > 1 need(s) the Ray backend"),
    (FitOptions(backend="local", per_partition="c"), "--per-partition need(s) the Ray backend"),
    (FitOptions(backend="gpu"), "--backend must be one of auto, local, ray"),
    (FitOptions(worker_cache_mb=-1), "--worker-cache-mb must be >= 0"),
])
def test_impossible_backend_requests_are_config_errors(options, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        options.validate()


def test_the_first_line_names_the_backend_and_why(small_csv, tmp_path, capsys):
    from ganstream.pipeline.cli import main
    assert main(["train", str(small_csv), "--missing-token", "?", "--epochs", "1", "--batch-size", "500",
                 "--out", str(tmp_path / "m")]) == 0
    first = capsys.readouterr().err.splitlines()[0]
    assert first.startswith("backend: local (auto: one worker and no --ray-address"), first
    assert "epochs=1" in first


def test_local_tabular_resume_continues_exactly(adult_small, tmp_path):
    """3 epochs straight vs 2 epochs then --resume to 3 (checkpoints every epoch): the same losses and the same
    weights, which needs the encoder, the imputer, G, D, both Adam states and the target classifier back."""
    table = adult_small.iloc[:600]
    params = dict(TINY, target="income", imputer_epochs=2)
    straight = TabularGAN(epochs=3, **params).fit(table, checkpoints=LocalCheckpoints(tmp_path / "a", every_s=0))
    TabularGAN(epochs=2, **params).fit(table, checkpoints=LocalCheckpoints(tmp_path / "b", every_s=0))
    assert sorted(p.name for p in (tmp_path / "b" / "ganstream").iterdir()) == ["checkpoint_000002"]
    resumed = TabularGAN(epochs=3, **params).fit(table, checkpoints=LocalCheckpoints(tmp_path / "b", resume=True))
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3]
    keys = ("d_loss", "g_loss", "cond_loss", "target_loss")
    assert [{k: h[k] for k in keys} for h in straight.history] == [{k: h[k] for k in keys} for h in resumed.history]
    for name, weight in straight.generator.state_dict().items():
        assert torch.equal(weight, resumed.generator.state_dict()[name]), name
    assert straight.sample(50, seed=1).equals(resumed.sample(50, seed=1))


def test_local_timeseries_resume_continues_exactly_with_the_keep_best_check(tmp_path):
    """The time-series fit resumed at epoch 2 of 4 ends where the uninterrupted fit ends: weights, the warm-up
    state, and the keep-best check's record and best state (checked every few steps, so mid-fit checks exist)."""
    table = sines(n_series=30, length=20, gap_share=0.05, seed=2).drop(columns="group")
    params = dict(seq_len=8, id_col="id", time_col="t", batch_size=32, hidden=16, critic_hidden=16, seed=1,
                  check_every_steps=10, check_classifier_steps=50, holdout_share=0.1)
    straight = TimeSeriesGAN(epochs=4, **params).fit(table, checkpoints=LocalCheckpoints(tmp_path / "a", every_s=0))
    TimeSeriesGAN(epochs=2, **params).fit(table, checkpoints=LocalCheckpoints(tmp_path / "b", every_s=0))
    resumed = TimeSeriesGAN(epochs=4, **params).fit(table, checkpoints=LocalCheckpoints(tmp_path / "b", resume=True))
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3, 4]
    assert straight.training["held_out"]["checks"] == resumed.training["held_out"]["checks"]
    assert len(straight.training["held_out"]["checks"]) > 2, "the check ran between epochs too"
    for name, weight in straight.generator.state_dict().items():
        assert torch.equal(weight, resumed.generator.state_dict()[name]), name
    assert straight.sample(5, seed=0).equals(resumed.sample(5, seed=0))


def test_resume_without_or_with_a_broken_checkpoint_says_so(adult_small, tmp_path):
    table = adult_small.iloc[:300]
    with pytest.raises(ConfigError, match="no checkpoints to resume from"):
        TabularGAN(epochs=2, **TINY).fit(table, checkpoints=LocalCheckpoints(tmp_path / "none", resume=True))
    TabularGAN(epochs=1, **TINY).fit(table, checkpoints=LocalCheckpoints(tmp_path / "c", every_s=0))
    (ckpt,) = (tmp_path / "c" / "ganstream").iterdir()
    (ckpt / "state.json").unlink()  # a checkpoint cut short
    with pytest.raises(ModelError, match=r"is damaged \(state.json"):
        TabularGAN(epochs=2, **TINY).fit(table, checkpoints=LocalCheckpoints(tmp_path / "c", resume=True))


def test_cli_resume_on_the_local_backend(small_csv, tmp_path, capsys):
    """`train --epochs 1 --keep-checkpoints`, then `--epochs 2 --resume`: the model holds both epochs; the
    checkpoint dir is MODEL_DIR.checkpoints. Without --keep-checkpoints a successful fit removes them once its
    model is written, and there is nothing to resume from."""
    args = ["train", small_csv, "--missing-token", "?", "--batch-size", 500, "--imputer-epochs", 1,
            "--out", tmp_path / "m"]
    assert run([*args, "--epochs", 1, "--keep-checkpoints"], capsys)[0] == 0
    assert (tmp_path / "m.checkpoints" / "ganstream" / "checkpoint_000001").is_dir()
    assert run([*args, "--epochs", 2, "--resume"], capsys)[0] == 0
    assert [h["epoch"] for h in TabularGAN.load(tmp_path / "m").history] == [1, 2]
    assert not (tmp_path / "m.checkpoints").exists(), "removed after the successful resumed fit"
    code, _, err = run([*args, "--epochs", 3, "--resume"], capsys)
    assert code == 2 and "no checkpoints to resume from" in err


def test_a_ray_cluster_that_cannot_start_is_one_line_and_exit_4(small_csv, tmp_path):
    """A temp directory whose socket paths are too long for AF_UNIX (as on some CI runners and macOS): Ray
    cannot start. One line naming the cause and the fix, exit 4, no model and no checkpoint directory."""
    long_tmp = Path("/tmp") / ("r" * 110)
    long_tmp.mkdir(exist_ok=True)
    env = {**os.environ, "RAY_TMPDIR": str(long_tmp), "GANSTREAM_RAY_KEEP": "0"}
    try:
        r = subprocess.run([sys.executable, "-m", "ganstream.pipeline.cli", "--quiet", "train", str(small_csv),
                            "--epochs", "1", "--backend", "ray", "--out", str(tmp_path / "m")],
                           capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
    finally:
        shutil.rmtree(long_tmp, ignore_errors=True)
    assert r.returncode == 4, r.stderr
    assert r.stderr.count("\n") == 1 and "cannot start or join a local Ray cluster" in r.stderr
    assert "set RAY_TMPDIR" in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == [], "nothing written"


def test_library_fit_through_the_backend_switch(adult_small, tmp_path):
    """backends.fit is what `ganstream.train` and the CLI call: a DataFrame in, a fitted model out, with the
    backend recorded."""
    model = fit(TabularGAN(epochs=1, **TINY), adult_small.iloc[:300], FitOptions(), out=tmp_path / "m")
    assert model.training["backend"] == "local" and model.is_fitted
    assert (tmp_path / "m.checkpoints" / "ganstream").is_dir()
