"""The registry path on the production tracking stack (tests/prod_stack.py): MLflow on a real PostgreSQL with its
artifacts in a real S3 server, all on 127.0.0.1, started and stopped here. The same commands as on the embedded
sqlite default; what is checked beyond that is where things land: versions and aliases as rows in PostgreSQL,
the model's files as objects in the bucket."""

from __future__ import annotations

from types import SimpleNamespace

import mlflow
import pandas as pd
import pyarrow.parquet as pq
import pytest

from ganstream.pipeline.cli import main
from helpers import run
from prod_stack import postgres_bin, start_stack

pytestmark = pytest.mark.skipif(postgres_bin() is None, reason="PostgreSQL server binaries missing: make setup")

FAST = ["--missing-token", "?", "--epochs", "2", "--imputer-epochs", "1", "--batch-size", "100", "--seed", "0"]
LOOSE = ["--gate", "detection_auc<=1", "--gate", "marginal_mean_distance<=1"]  # a 2-epoch fit passes these
NAME = "adult-pg"


@pytest.fixture(scope="module")
def stack(tmp_path_factory, small_csv):
    """The stack, and one model registered on it through the gate by `train --register`."""
    d = tmp_path_factory.mktemp("stack")
    running = start_stack(d)
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("GANSTREAM_CACHE_DIR", str(d / "cache"))
            code = main(["--quiet", "train", str(small_csv), *FAST, "--out", str(d / "model"), "--register", NAME,
                         "--tracking-uri", running.tracking.uri, *LOOSE])
        assert code == 0, running.tracking.log.read_text()[-3000:]
        yield SimpleNamespace(dir=d, stack=running, pg=running.pg, uri=running.tracking.uri)
    finally:
        running.stop()


@pytest.fixture
def at(stack, monkeypatch, tmp_path):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", stack.uri)
    monkeypatch.setenv("GANSTREAM_CACHE_DIR", str(tmp_path / "cache"))
    return stack


def test_the_version_and_its_alias_are_rows_in_postgresql_and_its_files_objects_in_the_bucket(at):
    assert at.pg.query("SELECT name, version, status FROM model_versions") == [(NAME, 1, "READY")]
    assert at.pg.query("SELECT name, alias, version FROM registered_model_aliases") == [(NAME, "champion", 1)]
    assert at.pg.query("SELECT status FROM runs") == [("FINISHED",)]
    keys = at.stack.s3.keys()
    assert any(k.endswith("/model.json") for k in keys), keys
    assert any(k.endswith(".safetensors") for k in keys), keys
    assert any(k.endswith("/MLmodel") for k in keys), keys


def test_models_list_and_show(at, capsys):
    code, out, _ = run(["models", "list"], capsys)
    assert code == 0 and NAME in out and "champion" in out
    code, out, _ = run(["models", "show", NAME], capsys)
    assert code == 0 and "champion" in out


def test_sample_by_alias_and_the_pyfunc_flavour(at, small_csv, tmp_path, capsys):
    columns = list(pd.read_csv(small_csv, nrows=1).columns)
    code, _, err = run(["sample", f"models:/{NAME}@champion", "--rows", 120, "--seed", 1,
                        "--out", tmp_path / "s.csv"], capsys)
    assert code == 0, err
    assert list(pd.read_csv(tmp_path / "s.csv").columns) == columns and len(pd.read_csv(tmp_path / "s.csv")) == 120
    rows = mlflow.pyfunc.load_model(f"models:/{NAME}@champion").predict(pd.DataFrame({"rows": [80], "seed": [0]}))
    assert len(rows) == 80 and list(rows.columns) == columns


def test_a_bounded_stream_from_the_registry(at, tmp_path, capsys):
    code, _, err = run(["stream", f"models:/{NAME}@champion", "--rows", 900, "--shard-rows", 300, "--seed", 2,
                        "--sink", tmp_path / "out"], capsys)
    assert code == 0, err
    table = pq.read_table(tmp_path / "out")
    assert table.num_rows == 900 and set(table.column("model_version").to_pylist()) == {"1"}



def test_a_job_run_twice_on_the_stack_fits_once(at, small_csv, tmp_path, monkeypatch, capsys):
    """`ganstream run job.yaml` with the stack as its tracking URI: the first run fits, registers through the
    gate and streams; the second finds the data unchanged, skips the fit and streams the same version."""
    import yaml
    monkeypatch.chdir(tmp_path)
    pd.read_csv(small_csv).iloc[:600].to_csv(tmp_path / "data.csv", index=False)
    spec = {"name": "stack-job", "data": {"path": "data.csv", "missing_tokens": ["?"]},
            "model": {"kind": "tabular", "imputer_epochs": 1}, "fit": {"epochs": 1, "batch_size": 100, "seed": 0},
            "gate": {"detection_auc": "<= 1", "marginal_mean_distance": "<= 1"},
            "registry": {"name": "stack-job", "alias": "champion"}, "tracking": {"uri": at.uri},
            "state_dir": "state", "streams": [{"sink": "out/v{version}", "rows": 60, "seed": 1}]}
    (tmp_path / "job.yaml").write_text(yaml.safe_dump(spec))
    code, out, err = run(["run", "job.yaml"], capsys)
    assert code == 0 and "alias 'champion' -> 1" in out, err
    code, out, err = run(["run", "job.yaml"], capsys)
    assert code == 0 and "skipping the fit" in out, err
    assert at.pg.query("SELECT version FROM model_versions WHERE name='stack-job'") == [(1,)]
    assert sum(len(pd.read_parquet(f)) for f in (tmp_path / "out" / "v1").glob("*.parquet")) == 60


# ------------------------------------------------------------------------------------------ faults
def _when(condition, action, timeout: float = 180.0):
    """Run `action` (once) the moment `condition()` holds, from a thread: the fault lands mid-command."""
    import threading
    import time
    done = threading.Event()

    def watch():
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                hit = condition()
            except Exception:  # noqa: BLE001 - a store that does not answer yet is "not yet"
                hit = False
            if hit:
                action()
                done.set()
                return
            time.sleep(0.005)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread, done


def test_postgresql_stopped_during_a_registration_leaves_no_version_and_a_clean_retry(at, small_csv, tmp_path,
                                                                                   monkeypatch, capsys):
    """PostgreSQL stops (fast shutdown) the moment the registered model's row is committed. Whether the version's
    row landed before the database went down is a race; if it did, it carries the ganstream.incomplete tag it was
    created with and no alias points to it."""
    name = "pg-stopped"
    _register_under_fault(at, small_csv, tmp_path, monkeypatch, capsys, name, at.pg.stop, at.pg.start,
                          lambda: at.pg.query(f"SELECT count(*) FROM registered_models WHERE name='{name}'")[0][0] > 0)


def test_an_unbounded_stream_follows_the_alias_and_outlives_a_killed_tracking_server(at, small_csv, tmp_path,
                                                                                   capsys):
    """A second version is registered; the stream starts on version 1, the alias moves to 2 after three windows
    (hot swap: version 2's files come from the bucket through the server), then the tracking server is killed
    (SIGKILL) and, 6 s later, started again on the same port (in the background: a start takes 10-20 s here).
    Windows keep coming with version 2 throughout, and the stream says once that the registry does not answer
    and once that it answers again."""
    import os
    import signal
    import subprocess
    import sys
    import threading
    import time
    from mlflow import MlflowClient
    code, _, err = run(["train", small_csv, *FAST, "--seed", 1, "--out", tmp_path / "m2", "--register", NAME,
                        "--tracking-uri", at.uri, *LOOSE], capsys)
    assert code == 0, err
    client = MlflowClient(at.uri, at.uri)
    client.set_registered_model_alias(NAME, "champion", "1")
    rate, duration, window, check_s, down_s = 100, 44, 2, 1, 6
    sink = tmp_path / "live"
    env = {**os.environ, "GANSTREAM_THREADS": "1", "OMP_NUM_THREADS": "1", "GANSTREAM_CACHE_DIR": str(tmp_path / "c"),
           "MLFLOW_HTTP_REQUEST_TIMEOUT": "2", "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"}
    env.pop("MLFLOW_TRACKING_URI", None)
    proc = subprocess.Popen([sys.executable, "-m", "ganstream.pipeline.cli", "stream", f"models:/{NAME}@champion",
                             "--tracking-uri", at.uri, "--sink", str(sink), "--rate", str(rate), "--duration",
                             str(duration), "--window-s", str(window), "--swap-check-s", str(check_s)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    seen, moved_at, killed_at, back = {}, None, None, {}
    restarter = threading.Thread(target=lambda: (at.stack.restart_tracking(), back.setdefault("at", time.time())),
                                 daemon=True)

    def poll():
        for f in sorted(sink.glob("window-*.parquet")) if sink.is_dir() else []:
            if f.name not in seen:
                meta = pq.read_table(f).schema.metadata
                seen[f.name] = dict(at=time.time(), version=meta[b"ganstream.model_version"].decode())
    try:
        deadline = time.monotonic() + 180
        while proc.poll() is None and time.monotonic() < deadline:
            poll()
            if moved_at is None and len(seen) >= 3:
                client.set_registered_model_alias(NAME, "champion", "2")
                moved_at = time.time()
            if killed_at is None and any(w["version"] == "2" for w in seen.values()):
                os.killpg(at.stack.tracking.proc.pid, signal.SIGKILL)
                at.stack.tracking.proc.wait()
                killed_at = time.time()
            if not restarter.is_alive() and not back and killed_at is not None and time.time() - killed_at >= down_s:
                restarter.start()
            time.sleep(0.05)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        if restarter.is_alive():
            restarter.join(timeout=120)
        if at.stack.tracking.proc.poll() is not None:
            at.stack.restart_tracking()
    stderr = proc.stderr.read().decode()
    assert proc.returncode == 0, stderr[-3000:]
    poll()
    order = [w["version"] for w in sorted(seen.values(), key=lambda w: w["at"])]
    assert len(order) == duration // window and order[0] == "1" and order[-1] == "2" and order == sorted(order)
    assert killed_at is not None and "at" in back
    during = [w for w in seen.values() if killed_at + 1.0 <= w["at"] <= back["at"]]
    assert len(during) >= 2 and all(w["version"] == "2" for w in during), (killed_at, back, seen)
    assert "moved from version 1 to 2" in stderr
    assert stderr.count("the registry does not answer") == 1 and stderr.count("the registry answers again") == 1, \
        stderr[-3000:]


def test_the_s3_server_stopped_during_an_artifact_upload_registers_nothing_and_a_retry_is_clean(at, small_csv,
                                                                                             tmp_path, monkeypatch,
                                                                                             capsys):
    """The S3 server stops the moment the fit's first artifact lands in the bucket, so the model's own files
    cannot be uploaded. The new S3 server comes back empty (moto keeps objects in memory), which is why this test
    runs last."""
    before = set(at.stack.s3.keys())
    _register_under_fault(at, small_csv, tmp_path, monkeypatch, capsys, "s3-stopped", lambda: at.stack.s3.stop(),
                          at.stack.restart_s3, lambda: bool(set(at.stack.s3.keys()) - before))


def _register_under_fault(at, small_csv, tmp_path, monkeypatch, capsys, name, fault, recover, when):
    """`train --register NAME` with `fault()` striking the moment `when()` holds: one line, exit 4 (infrastructure:
    a scheduler retries), at most versions tagged ganstream.incomplete and no alias; after `recover()`, the same
    command registers a complete champion that samples."""
    import time
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    watcher, hit = _when(when, fault)
    args = ["train", small_csv, *FAST, "--register", name, "--tracking-uri", at.uri, *LOOSE]
    t0 = time.monotonic()
    try:
        code, _, err = run([*args, "--out", tmp_path / "m1"], capsys)
        elapsed = time.monotonic() - t0
    finally:
        watcher.join(timeout=30)
        recover()
    assert hit.is_set() and code == 4, (code, err)
    assert len(err.strip().splitlines()) == 1 and err.startswith("ganstream train: error: "), err
    assert elapsed < 120, elapsed
    incomplete = f"SELECT version FROM model_version_tags WHERE name='{name}' AND key='ganstream.incomplete'"
    versions = at.pg.query(f"SELECT version FROM model_versions WHERE name='{name}'")
    assert sorted(versions) == sorted(at.pg.query(incomplete)), versions  # none, or only incomplete ones
    assert at.pg.query(f"SELECT count(*) FROM registered_model_aliases WHERE name='{name}'") == [(0,)]
    code, _, err = run([*args, "--out", tmp_path / "m2"], capsys)
    assert code == 0, err
    ((champion,),) = at.pg.query(f"SELECT version FROM registered_model_aliases WHERE name='{name}'")
    assert (champion,) not in at.pg.query(incomplete)
    code, _, err = run(["sample", f"models:/{name}@champion", "--rows", 10, "--out", tmp_path / "s.csv"], capsys)
    assert code == 0, err
