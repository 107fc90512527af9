"""`ganstream run JOB.yaml` on real files, a real embedded MLflow store and real processes: bad job files name
their key and exit 2; the second run of unchanged data skips the fit; a changed input refits and a refused
gate exits 3 with the alias unmoved; an unreachable tracking server exits 4; a concurrent run refuses (5)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from ganstream.pipeline.cli import main
from helpers import run
from conftest import ADULT
from mlflow_server import free_port
from mlflow_db import sqlite_uri

RELAXED_GATE = {"detection_auc": "off", "marginal_mean_distance": "off", "dcr_ratio": "off", "exact_copy_rate": "off"}


@pytest.fixture()
def workdir(tmp_path, monkeypatch):
    monkeypatch.setenv("GANSTREAM_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    pd.read_csv(ADULT).iloc[:600].to_csv(tmp_path / "data.csv", index=False)
    return tmp_path


def write_job(directory: Path, **overrides) -> Path:
    spec = {"name": "test-job", "data": {"path": "data.csv", "missing_tokens": ["?"]},
            "model": {"kind": "tabular", "imputer_epochs": 1}, "fit": {"epochs": 1, "batch_size": 100, "seed": 0},
            "gate": dict(RELAXED_GATE), "registry": {"name": "jobmodel", "alias": "champion"},
            "tracking": {"uri": f"sqlite:///{directory / 'mlflow.db'}"}, "state_dir": "state"}
    for key, value in overrides.items():
        if value is None:
            spec.pop(key, None)
        else:
            spec[key] = value
    path = directory / "job.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path



# ------------------------------------------------------------------------------------ bad job files
BAD_JOBS = [
    ({"fit": {"epochs": "ten"}}, "job.yaml: fit.epochs: expected an integer, got 'ten'"),
    ({"fit": {"epocs": 3}}, "job.yaml: fit.epocs: unknown key (did you mean 'epochs'?)"),
    ({"registy": {"name": "x"}}, "job.yaml: registy: unknown key (did you mean 'registry'?)"),
    ({"data": {"missing_tokens": ["?"]}}, "job.yaml: data.path: required key is missing"),
    ({"data": {"path": "nowhere.csv"}}, "job.yaml: data.path: no such file or directory"),
    ({"registry": None}, "job.yaml: registry: required key is missing"),
    ({"fit": {"batch_size": 0}}, "job.yaml: fit.batch_size: --batch-size must be a positive multiple of pac=10 (got 0)"),
    ({"fit": {"backend": "spark"}}, "job.yaml: fit: --backend must be one of auto, local, ray (got 'spark')"),
    ({"fit": {"backend": "local", "workers": 2}}, "job.yaml: fit: --workers > 1 need(s) the Ray backend"),
    ({"fit": {"materialize_mb": "lots"}}, "job.yaml: fit.materialize_mb: expected a number, got 'lots'"),
    ({"fit": {"materialize_mb": -1}}, "job.yaml: fit: --materialize-mb must be >= 0 (got -1)"),
    ({"fit": {"backend": "local", "worker_cache_mb": 8}}, "job.yaml: fit: --worker-cache-mb need(s) the Ray backend"),
    ({"model": {"loss": "hinge"}}, "job.yaml: model.loss: loss must be one of wgan-gp, non-saturating, minimax, dual"),
    ({"model": {"kind": "tabular", "seq_len": 24}}, "job.yaml: model.seq_len: does not apply to a tabular model"),
    ({"model": {"kind": "tabular", "target": ["income"]}}, "job.yaml: model.target: expected a non-empty string"),
    ({"gate": {"detection_auc": "below 0.9"}}, "job.yaml: gate.detection_auc: expected '<= NUMBER'"),
    ({"gate": {"detection_aux": 0.9}}, "job.yaml: gate.detection_aux: unknown key (did you mean 'detection_auc'?)"),
    ({"gate": {"utility_ratio": ">= 0.5"}}, "job.yaml: gate.utility_ratio: needs model.target"),
    ({"streams": [{"rows": 10}]}, "job.yaml: streams[0].sink: required key is missing"),
    ({"streams": [{"sink": "out-{date}", "rows": 10}]}, "job.yaml: streams[0].sink: unknown placeholder {date}"),
    ({"streams": [{"sink": "out", "rows": "many"}]}, "job.yaml: streams[0].rows: expected an integer, got 'many'"),
    ({"streams": [{"sink": "out", "rows": 5, "rate": 3.0}]}, "job.yaml: streams[0]: give --rows N (bounded job) or --rate R"),
    ({"streams": [{"sink": "out", "rows": 5, "format": "csv"}]}, "job.yaml: streams[0].format: expected one of rows, episodes"),
]


@pytest.mark.parametrize("overrides,message", BAD_JOBS, ids=[m.split(": ")[1] for _, m in BAD_JOBS])
def test_bad_job_file_names_the_key_and_exits_2(workdir, capsys, overrides, message):
    job = write_job(workdir, **overrides)
    code, out, err = run(["run", job], capsys)
    assert code == 2
    assert err.count("\n") == 1 and message in err, err
    assert not (workdir / "state").exists() and not (workdir / "mlflow.db").exists()


def test_ray_data_options_reach_the_fit_options(workdir):
    """fit.materialize_mb and fit.worker_cache_mb are `train --materialize-mb / --worker-cache-mb`. Unset, they
    leave the fit's fingerprint as it was before they existed (a registered champion is not refitted after an
    upgrade); set, they count like the other fit settings."""
    from ganstream.pipeline.job_spec import load_job, train_request
    plain = load_job(write_job(workdir))
    before = "0bb09c3f"  # the fingerprint of this job file at 9615bf7, before the keys existed
    tuned = load_job(write_job(workdir, fit={"epochs": 1, "batch_size": 100, "seed": 0, "materialize_mb": 0,
                                             "worker_cache_mb": 32}))
    fit = train_request(tuned).fit
    assert (fit.materialize_mb, fit.worker_cache_mb) == (0, 32)
    assert train_request(plain).fit.materialize_mb == 64
    assert plain.fit_fingerprint().startswith(before) and tuned.fit_fingerprint() != plain.fit_fingerprint()


def test_unparsable_yaml_says_where(workdir, capsys):
    job = workdir / "job.yaml"
    job.write_text("data: {path: data.csv\nfit: [\n")
    code, _, err = run(["run", job], capsys)
    assert code == 2 and "job.yaml: not valid YAML (line" in err


def test_dry_run_prints_the_plan_and_writes_nothing(workdir, capsys):
    job = write_job(workdir)
    code, out, _ = run(["run", job, "--dry-run"], capsys)
    assert code == 0
    assert "1. fit: FIT - no jobmodel@champion yet" in out and "dry run: nothing was" in out
    assert str(workdir / "data.csv") in out and "epochs=1" in out
    assert not (workdir / "state").exists() and not (workdir / "mlflow.db").exists()


def test_unreachable_tracking_server_is_an_infrastructure_failure(workdir, capsys):
    job = write_job(workdir, tracking={"uri": f"http://127.0.0.1:{free_port()}"})
    code, _, err = run(["run", job], capsys)
    assert code == 4 and "unreachable" in err
    record = json.loads((workdir / "state" / "last_run.json").read_text())
    assert record["outcome"].startswith("failed (exit 4)")


def test_unreachable_ray_cluster_is_an_infrastructure_failure(workdir, capsys):
    port = free_port()  # nothing listens there
    job = write_job(workdir, fit={"epochs": 1, "ray_address": f"127.0.0.1:{port}"})
    code, out, err = run(["run", job], capsys)
    assert code == 4 and f"Ray cluster 127.0.0.1:{port} is unreachable" in err
    assert not (workdir / "state" / "model").exists()


# ------------------------------------------------------------------------------- real runs, in order
def test_second_run_skips_the_fit_and_streams_and_a_changed_input_refits(workdir, capsys):
    from mlflow import MlflowClient
    uri = sqlite_uri(workdir / 'mlflow.db')
    job = write_job(workdir, streams=[{"sink": "out/stream-v{version}", "rows": 50, "seed": 1}])

    code, out, err = run(["run", job], capsys)
    assert code == 0, err
    assert "fit: fitting (no jobmodel@champion yet)" in out and "alias 'champion' -> 1" in out
    files = sorted((workdir / "out" / "stream-v1").glob("*.parquet"))
    assert files and sum(len(pd.read_parquet(f)) for f in files) == 50 and "stream: wrote" in out
    first = [f.read_bytes() for f in files]

    code, out, err = run(["run", job], capsys)
    assert code == 0 and "skipping the fit" in out and "fit skipped, 1 stream(s)" in out, err
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    assert len(client.search_model_versions("name='jobmodel'")) == 1
    assert [f.read_bytes() for f in files] == first  # streamed again from the same version: same bytes
    record = json.loads((workdir / "state" / "last_run.json").read_text())
    assert record["fit"] == "skipped" and record["version"] == "1" and record["outcome"] == "done"

    code, out, _ = run(["run", job, "--dry-run"], capsys)
    assert code == 0 and "1. fit: SKIP - data unchanged" in out

    # The data changes (one row less) and the gate is made unpassable: the job refits, the gate refuses
    # (exit 3), no version is added, the alias stays where it was and nothing is streamed.
    pd.read_csv(ADULT).iloc[:599].to_csv(workdir / "data.csv", index=False)
    job = write_job(workdir, gate={**RELAXED_GATE, "detection_auc": "<= 0.01"},
                    streams=[{"sink": "out/stream-v{version}", "rows": 50, "seed": 1}])
    code, out, err = run(["run", job], capsys)
    assert code == 3, err
    assert "fit: fitting (data changed since jobmodel@champion" in out and "quality gate failed" in err
    assert len(client.search_model_versions("name='jobmodel'")) == 1
    assert str(client.get_model_version_by_alias("jobmodel", "champion").version) == "1"
    assert json.loads((workdir / "state" / "last_run.json").read_text())["outcome"].startswith("failed (exit 3)")
    assert sorted(p.name for p in (workdir / "out").iterdir()) == ["stream-v1"]


# ------------------------------------------------------------------------------- two real processes
def test_a_second_concurrent_run_refuses(workdir):
    from ganstream.pipeline.job_spec import load_job
    from ganstream.pipeline.job_state import job_lock
    job = write_job(workdir, fit={"epochs": 300, "batch_size": 100, "seed": 0})
    env = {**os.environ, "GANSTREAM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "ganstream.pipeline.cli", "--quiet", "run", str(job)]
    first = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, start_new_session=True)
    lock = workdir / "state" / "run.lock"
    try:
        deadline = time.monotonic() + 120
        while not (lock.exists() and lock.read_text().startswith("pid")):
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < deadline, "the first run never took its lock"
            time.sleep(0.2)
        second = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
        assert second.returncode == 5, second.stderr
        assert "is already running" in second.stderr and f"pid {first.pid}" in second.stderr
        assert first.poll() is None  # the first run was not disturbed
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGTERM)
        first.wait(timeout=60)
    with job_lock(load_job(job)):  # the kernel released the lock of the killed process
        pass
