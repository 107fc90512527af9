"""Faults a scheduler must be able to trust, each produced for real: a full disk is a 1 MB tmpfs mounted for the
test (root only, as on CI), a damaged checkpoint is a real checkpoint with a file cut to 0 bytes, nested and
duplicate columns are real files. Each must end in one line, the documented exit code (trainers/errors.py) and
nothing partial left behind."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from helpers import run


@pytest.fixture
def full_disk(tmp_path):
    """A 1 MB tmpfs: real ENOSPC for anything larger."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs as root)")
    mnt = tmp_path / "small"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], check=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, fitted_gan):
    path = tmp_path_factory.mktemp("faults") / "model"
    fitted_gan.save(path)
    return path


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def test_sample_on_a_full_disk_is_exit_4_and_leaves_no_file(model_dir, full_disk, capsys):
    code, _, err = run(["sample", model_dir, "--rows", 200_000, "--out", full_disk / "s.csv"], capsys)
    assert code == 4, err
    assert "no space left on the device" in _one_line(err) and str(full_disk / "s.csv") in err
    assert list(full_disk.iterdir()) == []


def test_bounded_stream_on_a_full_disk_is_exit_4_and_keeps_only_complete_shards(model_dir, full_disk, capsys):
    sink = full_disk / "stream"
    code, _, err = run(["stream", model_dir, "--rows", 300_000, "--shard-rows", 100_000, "--sink", sink], capsys)
    assert code == 4, err
    assert "no space left on the device" in _one_line(err) and str(sink) in err
    shards = sorted(sink.glob("shard-*.parquet"))
    assert len(shards) < 3 and not [p for p in sink.iterdir() if p.name.startswith(".")]
    for shard in shards:  # whatever is there is whole
        assert pq.read_metadata(shard).num_rows == 100_000


def test_train_on_a_full_disk_is_exit_4_and_leaves_nothing(small_csv, full_disk, capsys):
    code, _, err = run(["train", small_csv, "--missing-token", "?", "--epochs", 1, "--imputer-epochs", 1,
                        "--out", full_disk / "m"], capsys)
    assert code == 4, err
    assert "no space left on the device" in _one_line(err)
    assert list(full_disk.iterdir()) == []


@pytest.fixture(scope="module")
def checkpointed(tmp_path_factory, small_csv):
    """A finished local fit and its last checkpoint (kept, for a --resume that extends the fit)."""
    from ganstream.pipeline.cli import main
    d = tmp_path_factory.mktemp("ckpt")
    assert main(["--quiet", "train", str(small_csv), "--missing-token", "?", "--epochs", "2", "--imputer-epochs", "1",
                 "--batch-size", "200", "--keep-checkpoints", "--out", str(d / "m")]) == 0
    (last,) = sorted((d / "m.checkpoints" / "ganstream").glob("checkpoint_*"))
    return d, last


@pytest.mark.parametrize("damage", ["state.json", "model/generator.safetensors", "optimizers.safetensors"])
def test_resume_refuses_a_damaged_checkpoint_and_never_starts_again(checkpointed, small_csv, tmp_path, damage,
                                                                    capsys):
    import shutil
    d, last = checkpointed
    work = tmp_path / "copy"
    shutil.copytree(d, work)
    ckpt = work / "m.checkpoints" / "ganstream" / last.name
    (ckpt / damage).write_bytes(b"")  # what Ray Train's copy left on a full disk
    before = sorted(p.relative_to(work) for p in work.rglob("*"))
    code, _, err = run(["train", small_csv, "--missing-token", "?", "--epochs", 3, "--imputer-epochs", 1,
                        "--batch-size", 200, "--out", work / "m", "--resume"], capsys)
    assert code == 2, err
    line = _one_line(err)
    assert "--resume: checkpoint" in line and "is damaged" in line and damage.split("/")[-1] in line
    assert sorted(p.relative_to(work) for p in work.rglob("*")) == before, "nothing written, nothing removed"


def test_duplicate_column_names_are_refused_by_name(tmp_path, capsys):
    csv = tmp_path / "dup.csv"
    csv.write_text("age,city,age\n1,a,2\n3,b,4\n" * 1)
    code, _, err = run(["train", csv, "--epochs", 1, "--out", tmp_path / "m"], capsys)
    assert code == 2 and "duplicate column name(s) 'age'" in _one_line(err), err
    assert not (tmp_path / "m").exists()
    import ganstream
    from ganstream.trainers.errors import DataError
    frame = pd.DataFrame([[1, 2], [3, 4]], columns=["x", "x"])
    with pytest.raises(DataError, match="duplicate column name"):
        ganstream.TabularGAN(epochs=1).fit(frame)


@pytest.mark.parametrize("backend", ["local", "ray"])
@pytest.mark.parametrize("nested", ["list", "struct"])
def test_nested_parquet_columns_are_refused_before_any_work(tmp_path, capsys, nested, backend):
    """On both backends the footer is read before Ray starts: no cluster, no traceback."""
    n = 50
    rng = np.random.default_rng(0)
    values = ([[1, 2]] * n) if nested == "list" else [{"a": 1, "b": "x"}] * n
    table = pa.table({"x": rng.normal(size=n), "tags": pa.array(values)})
    data = tmp_path / "nested.parquet"
    pq.write_table(table, data)
    code, _, err = run(["train", data, "--epochs", 1, "--backend", backend, "--out", tmp_path / "m"], capsys)
    assert code == 2, err
    line = _one_line(err)
    assert "'tags'" in line and "nested values" in line and nested in line
    assert not (tmp_path / "m").exists() and not Path(f"{tmp_path / 'm'}.checkpoints").exists()


@pytest.mark.parametrize("field, value", [("networks", 12), ("history", {"a": 1}), ("training", [1]),
                                          ("config", "x")])
def test_corrupt_model_json_fields_are_one_line_exit_2(model_dir, tmp_path, capsys, field, value):
    import json
    import shutil
    broken = tmp_path / "m"
    shutil.copytree(model_dir, broken)
    meta = json.loads((broken / "model.json").read_text())
    meta[field] = value
    (broken / "model.json").write_text(json.dumps(meta))
    code, _, err = run(["sample", broken, "--rows", 5, "--out", tmp_path / "s.csv"], capsys)
    assert code == 2, err
    assert f"'{field}' should be" in _one_line(err)
    assert not (tmp_path / "s.csv").exists()


def test_unbounded_stream_refuses_several_in_process_workers(model_dir, tmp_path, capsys):
    code, _, err = run(["stream", model_dir, "--rate", 200, "--duration", 4, "--window-s", 2,
                        "--direct_num_workers", 2, "--sink", tmp_path / "s"], capsys)
    assert code == 2 and "runs on one worker" in _one_line(err), err
    assert not (tmp_path / "s").exists()


def test_a_stream_that_ends_short_of_its_plan_is_not_a_success(model_dir, tmp_path, capsys):
    """The real fault behind the refusal above, reached through --beam-args (passed to Beam as they are): Beam's
    in-process runner with two threads ends the stream with nothing written. Exit 4 and the count, not exit 0."""
    code, _, err = run(["stream", model_dir, "--rate", 200, "--duration", 4, "--window-s", 2,
                        "--beam-args=--direct_num_workers=2 --direct_running_mode=multi_threading",
                        "--sink", tmp_path / "s"], capsys)
    assert code == 4, err
    assert "ended short of its plan: 0 of 800 rows in 0 of 2 window file(s)" in _one_line(err)


def _job(tmp_path: Path, data: dict, **overrides) -> Path:
    import yaml
    spec = {"name": "faults", "data": data, "model": {"kind": "tabular", "imputer_epochs": 1},
            "fit": {"epochs": 1, "batch_size": 100, "seed": 0},
            "gate": {"detection_auc": "off", "marginal_mean_distance": "off", "dcr_ratio": "off",
                     "exact_copy_rate": "off"},
            "registry": {"name": "faults", "alias": "champion"},
            "tracking": {"uri": f"sqlite:///{tmp_path / 'mlflow.db'}"}, "state_dir": str(tmp_path / "state"),
            **overrides}
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_a_job_maps_the_same_faults_to_the_same_exit_codes(tmp_path, small_csv, full_disk, capsys, monkeypatch):
    """`ganstream run` is what a scheduler calls: a nested column is exit 2 (do not retry), a full disk while it
    streams is exit 4 (retry later), each in one line."""
    monkeypatch.setenv("GANSTREAM_CACHE_DIR", str(tmp_path / "cache"))
    nested = tmp_path / "nested.parquet"
    pq.write_table(pa.table({"x": [1.0, 2.0] * 20, "tags": pa.array([[1, 2]] * 40)}), nested)
    code, _, err = run(["run", _job(tmp_path, {"path": str(nested)})], capsys)
    assert code == 2 and "nested values" in _one_line(err), err
    job = _job(tmp_path, {"path": str(small_csv), "missing_tokens": ["?"]}, streams=[{"sink": str(full_disk / "out"), "rows": 300_000}])
    code, _, err = run(["run", job], capsys)
    assert code == 4 and "no space left on the device" in _one_line(err), err


def test_a_failed_fit_keeps_only_checkpoints_resume_can_use(checkpointed, tmp_path):
    """Ray Train's own copy into storage is not atomic (a full disk left 0-byte files): after a failed fit the
    damaged checkpoints are removed and the good ones stay for --resume."""
    import shutil
    from ganstream.trainers.backends.checkpoint import check_checkpoint, checkpoints_in, remove_damaged
    d, last = checkpointed
    run_dir = tmp_path / "run"
    shutil.copytree(last, run_dir / "checkpoint_000001")
    shutil.copytree(last, run_dir / "checkpoint_000002")
    (run_dir / "checkpoint_000002" / "model" / "generator.safetensors").write_bytes(b"")
    assert remove_damaged(run_dir) == [run_dir / "checkpoint_000002"]
    assert checkpoints_in(run_dir) == [run_dir / "checkpoint_000001"]
    check_checkpoint(run_dir / "checkpoint_000001")
