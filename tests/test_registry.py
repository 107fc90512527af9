"""MLflow tracking + model registry end to end, on real components: MLflow's embedded sqlite store in a
tmp working dir, and a real `mlflow server` process (tests/mlflow_server.py). No mocks."""

import hashlib
import time
from types import SimpleNamespace

import mlflow
import pandas as pd
import pytest
import yaml
from mlflow import MlflowClient

import ganstream
from ganstream.pipeline.cli import main
from mlflow_server import start_many
from helpers import run
from mlflow_db import sqlite_uri

FAST = ["--missing-token", "?", "--epochs", "2", "--imputer-epochs", "1", "--batch-size", "100", "--seed", "0"]
LOOSE = ["--gate", "detection_auc<=1", "--gate", "marginal_mean_distance<=1"]  # a 2-epoch fit passes these



@pytest.fixture(scope="module")
def embedded(tmp_path_factory, small_csv):
    """`train --register adult` with NO tracking URI anywhere: MLflow's embedded sqlite default in the cwd."""
    d = tmp_path_factory.mktemp("embedded")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(d)
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        mp.setenv("GANSTREAM_CACHE_DIR", str(d / "cache"))
        code = main(["--quiet", "train", str(small_csv), *FAST, "--out", str(d / "model"), "--register", "adult",
                     *LOOSE])
    assert code == 0
    assert (d / "mlflow.db").is_file()
    return SimpleNamespace(dir=d, uri=sqlite_uri(d / 'mlflow.db'), model=d / "model")


@pytest.fixture(scope="module")
def doomed(tmp_path_factory):
    """Two real servers, started at once, for the four fault tests below, which take them down in stages (each
    start-up costs ~12 CPU-s on 2 cores: one per test was the slowest set-up of the suite). `chain` is frozen and
    thawed before a fit, then frozen during a registration and stopped, then met stopped, in file order; `dying`
    is killed after a fit."""
    chain, dying = start_many([tmp_path_factory.mktemp("chain"), tmp_path_factory.mktemp("dying")])
    yield SimpleNamespace(chain=chain, dying=dying)
    for server in (chain, dying):
        _thaw(server)
        server.stop()


@pytest.fixture
def at(embedded, monkeypatch, tmp_path):
    """Point MLflow (env) at the embedded store, with a fresh download cache."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", embedded.uri)
    monkeypatch.setenv("GANSTREAM_CACHE_DIR", str(tmp_path / "cache"))
    return embedded


def test_register_then_load_champion_and_sample(at, small_csv, tmp_path, capsys):
    client = MlflowClient(at.uri, at.uri)
    assert [str(v.version) for v in client.search_model_versions("name='adult'")] == ["1"]
    assert str(client.get_model_version_by_alias("adult", "champion").version) == "1"

    columns = list(pd.read_csv(small_csv).columns)
    gen = mlflow.pyfunc.load_model("models:/adult@champion")
    rows = gen.predict(pd.DataFrame({"rows": [300], "seed": [0]}))
    assert len(rows) == 300 and list(rows.columns) == columns
    rich = gen.predict(pd.DataFrame({"rows": [40], "seed": [1], "condition": ["sex=Female"], "missing": ["fill"]}))
    assert len(rich) == 40 and (rich["sex"].str.strip() == "Female").all() and not rich.isna().any().any()
    holes = pd.read_csv(small_csv, na_values=[" ?"]).head(200)
    assert holes.isna().any().any()
    filled = gen.predict(holes, params={"draws": 2, "seed": 1})  # data in: the generator's imputer fills it
    assert list(filled.columns) == ["draw", *columns] and len(filled) == 400 and not filled.isna().any().any()
    observed = holes.notna()
    for k in (0, 1):
        draw = filled[filled["draw"] == k].drop(columns="draw").reset_index(drop=True)
        assert ((draw == holes) | ~observed).all().all()  # observed cells untouched

    # the registered model is the trained one: same rows as the local model directory for the same seed
    for ref, name in ((at.model, "local.csv"), ("models:/adult@champion", "champion.csv"),
                      ("models:/adult/1", "v1.csv")):
        code, _, err = run(["sample", ref, "--rows", 200, "--seed", 3, "--out", tmp_path / name], capsys)
        assert code == 0, err
    local = (tmp_path / "local.csv").read_bytes()
    assert (tmp_path / "champion.csv").read_bytes() == local == (tmp_path / "v1.csv").read_bytes()
    # ganstream.load: the same one resolution path in Python, for an alias, a version, and a directory
    by_alias = ganstream.load("models:/adult@champion")
    assert by_alias.sample(200, seed=3).equals(ganstream.load(at.model).sample(200, seed=3))
    assert ganstream.load("models:/adult/1", tracking_uri=at.uri).kind == "tabular"

    code, _, err = run(["impute", small_csv, "--missing-token", "?", "--model", "models:/adult@champion",
                        "--out", tmp_path / "i.csv"], capsys)
    assert code == 0, err
    assert not pd.read_csv(tmp_path / "i.csv").isin([" ?"]).any().any()

    run_id = client.get_model_version("adult", "1").run_id
    code, _, err = run(["sample", f"runs:/{run_id}/generator", "--rows", 200, "--seed", 3,
                        "--out", tmp_path / "run.csv"], capsys)
    assert code == 0, err
    assert (tmp_path / "run.csv").read_bytes() == local


def test_run_records_metrics_plots_and_lineage(at, small_csv):
    client = MlflowClient(at.uri, at.uri)
    mv = client.get_model_version("adult", "1")
    run = client.get_run(mv.run_id)
    assert [m.step for m in client.get_metric_history(run.info.run_id, "d_loss")] == [1, 2]
    for key in ("g_loss", "cond_loss", "rows_per_s"):
        assert len(client.get_metric_history(run.info.run_id, key)) == 2
    for key in ("detection_auc", "marginal_mean_distance", "association_distance", "dcr_ratio", "exact_copies"):
        assert key in run.data.metrics
    assert run.data.params["epochs"] == "2" and run.data.params["seed"] == "0"
    plots = {f.path for f in client.list_artifacts(run.info.run_id, "plots")}
    assert plots == {"plots/loss_curves.png", "plots/marginals.png", "plots/associations.png"}
    sha = hashlib.sha256(small_csv.read_bytes()).hexdigest()
    for tags in (run.data.tags, mv.tags):
        assert tags["data.sha256"] == sha and tags["seed"] == "0" and tags["code.version"] == ganstream.__version__
        assert tags["gate"] == "passed"
    assert float(mv.tags["gate.detection_auc"]) == pytest.approx(run.data.metrics["detection_auc"], rel=1e-4)


def test_logged_generator_contains_no_pickle(at, tmp_path):
    local = mlflow.artifacts.download_artifacts(artifact_uri="models:/adult/1", dst_path=str(tmp_path / "dl"))
    files = [p for p in (tmp_path / "dl").rglob("*") if p.is_file()]
    assert not [p for p in files if p.suffix in (".pkl", ".pickle", ".cloudpickle", ".pt", ".pth")]
    assert {p.name for p in files} >= {"MLmodel", "model.json", "generator.safetensors"}
    pyfunc = yaml.safe_load((tmp_path / "dl" / "MLmodel").read_text())["flavors"]["python_function"]
    # models-from-code: MLflow runs a logged source file, there is no python_model.pkl to unpickle
    assert pyfunc["loader_module"] == "mlflow.pyfunc.loaders.code_model" and "python_model" not in pyfunc
    assert (tmp_path / "dl" / "ganstream_pyfunc_entry.py").is_file()
    assert (tmp_path / "dl" / "code" / "ganstream" / "deploy" / "pyfunc_model.py").is_file()
    assert (tmp_path / "dl" / "code" / "ganstream" / "trainers" / "tabular" / "model.py").is_file()
    assert local


def test_gate_failure_keeps_run_but_registers_nothing(at, small_csv, tmp_path, capsys):
    client = MlflowClient(at.uri, at.uri)
    runs_before = len(client.search_runs([client.get_experiment_by_name("ganstream").experiment_id]))
    code, _, err = run(["train", small_csv, *FAST, "--epochs", 1, "--out", tmp_path / "m", "--register", "adult",
                        "--gate", "detection_auc<=0.9"], capsys)
    assert code == 3
    assert "quality gate failed" in err and "detection_auc" in err and "alias 'champion' unchanged" in err
    runs = client.search_runs([client.get_experiment_by_name("ganstream").experiment_id],
                              order_by=["attributes.start_time DESC"])
    assert len(runs) == runs_before + 1
    assert runs[0].data.tags["gate"] == "failed" and "detection_auc" in runs[0].data.tags["gate.failures"]
    assert [str(v.version) for v in client.search_model_versions("name='adult'")] == ["1"]
    assert str(client.get_model_version_by_alias("adult", "champion").version) == "1"


def test_default_gate_rejects_a_one_epoch_model(tmp_path, small_csv, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # a sqlite store keeps run artifacts in ./mlruns of the working dir
    uri = sqlite_uri(tmp_path / 'g.db')
    code, _, err = run(["train", small_csv, *FAST, "--epochs", 1, "--target", "income", "--out", tmp_path / "m",
                        "--register", "weak", "--tracking-uri", uri], capsys)
    assert code == 3 and "detection_auc" in err and "utility_ratio" in err
    assert MlflowClient(uri, uri).search_registered_models() == []


@pytest.mark.parametrize("ref, message", [("models:/adult@nope", "has no alias 'nope' (aliases: champion->1)"),
                                          ("models:/adult/9", "has no version 9"),
                                          ("models:/ghost@champion", "no registered model 'ghost'")])
def test_unknown_model_alias_or_version_is_a_clear_error(at, ref, message, tmp_path, capsys):
    code, _, err = run(["sample", ref, "--rows", 5, "--out", tmp_path / "x.csv"], capsys)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x.csv").exists()


def test_models_list_and_show(at, capsys):
    code, out, _ = run(["models", "list"], capsys)
    assert code == 0 and "adult" in out and "champion->1" in out
    code, out, _ = run(["models", "show", "adult"], capsys)
    assert code == 0
    assert "version 1" in out and "champion" in out and "detection_auc=" in out and "sha256=" in out
    assert "git_commit=" in out or f"version={ganstream.__version__}" in out
    code, _, err = run(["models", "show", "ghost"], capsys)
    assert code == 2 and "no registered model 'ghost'" in err


def test_models_list_and_show_create_no_store(tmp_path, monkeypatch, capsys):
    """Read-only commands on the embedded default of a directory without a store: an answer, no mlflow.db."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    code, out, _ = run(["models", "list"], capsys)
    assert code == 0 and "no store there yet" in out
    code, _, err = run(["models", "show", "adult"], capsys)
    assert code == 2 and "no registered model 'adult'" in err and len(err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_bad_gate_option_fails_before_training(tmp_path, small_csv, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code, _, err = run(["train", small_csv, *FAST, "--out", tmp_path / "m", "--register", "x",
                        "--tracking-uri", f"sqlite:///{tmp_path / 'b.db'}", "--gate", "auc<0.5"], capsys)
    assert code == 2 and "--gate must look like" in err and not (tmp_path / "m").exists()


# ------------------------------------------------------------------------------------ a real server
def test_real_server_register_load_sample(mlflow_server, small_csv, tmp_path, monkeypatch, capsys):
    # the session's server (conftest.py): model 'adult-srv' is this test's alone
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("GANSTREAM_CACHE_DIR", str(tmp_path / "cache"))
    code, _, err = run(["train", small_csv, *FAST, "--out", tmp_path / "m", "--register", "adult-srv",
                        "--tracking-uri", mlflow_server.uri, "--experiment", "srv", *LOOSE], capsys)
    assert code == 0, err
    client = MlflowClient(mlflow_server.uri, mlflow_server.uri)
    assert str(client.get_model_version_by_alias("adult-srv", "champion").version) == "1"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.uri)
    rows = mlflow.pyfunc.load_model("models:/adult-srv@champion").predict(pd.DataFrame({"rows": [123], "seed": [0]}))
    assert len(rows) == 123 and list(rows.columns) == list(pd.read_csv(small_csv).columns)
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    code, _, err = run(["sample", "models:/adult-srv@champion", "--tracking-uri", mlflow_server.uri, "--rows", 77,
                        "--out", tmp_path / "s.parquet"], capsys)
    assert code == 0, err
    assert len(pd.read_parquet(tmp_path / "s.parquet")) == 77


def _freeze(server):
    """SIGSTOP the whole server process group: the port stays open and accepts connections, but nothing
    answers — a real hung server, the case an endless retry loop would never leave."""
    import os
    import signal
    os.killpg(server.proc.pid, signal.SIGSTOP)


def _thaw(server):
    import os
    import signal
    try:
        os.killpg(server.proc.pid, signal.SIGCONT)
    except ProcessLookupError:
        pass


def _thaw_and_stop(server):
    _thaw(server)
    server.stop()


def test_hung_server_fails_fast_before_the_fit(doomed, tmp_path, small_csv, monkeypatch, capsys):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    s = doomed.chain
    assert s.proc.poll() is None
    _freeze(s)
    try:
        t0 = time.monotonic()
        code, _, err = run(["train", small_csv, *FAST, "--out", tmp_path / "m", "--register", "adult",
                            "--tracking-uri", s.uri, *LOOSE], capsys)
        elapsed = time.monotonic() - t0
    finally:
        _thaw(s)  # it answers again: the next test freezes it mid-registration
    assert code == 4 and elapsed < 30, (code, elapsed, err)
    assert "unreachable" in err and "timed out" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "m").exists()
    assert MlflowClient(s.backend_uri, s.backend_uri).search_registered_models() == []


def test_server_hanging_during_registration_fails_in_bounded_time(doomed, tmp_path, small_csv, monkeypatch, capsys):
    """The server freezes (not dies) right after the fit: MLflow's HTTP timeout and capped retries end the
    command, and the registry holds no version (and no alias) afterwards."""
    import threading
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "3")
    s = doomed.chain
    assert s.proc.poll() is None, "the fault tests share this server in file order"
    out = tmp_path / "m"

    def freeze_when_model_written():
        deadline = time.monotonic() + 120
        while not (out / "model.json").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        _freeze(s)

    freezer = threading.Thread(target=freeze_when_model_written, daemon=True)
    freezer.start()
    try:
        code, _, err = run(["train", small_csv, *FAST, "--out", out, "--register", "adult",
                            "--tracking-uri", s.uri, *LOOSE], capsys)
        t_fail = time.time()
    finally:
        freezer.join(timeout=30)
        _thaw_and_stop(s)
    # Which request meets the frozen server first is a race (the post-fit reachability probe, or a logging /
    # registry call): both end in one line naming the server, which is what a user needs.
    assert code == 4 and err.startswith("ganstream train: error: ") and s.uri in err, err
    assert "unreachable (timed out)" in err or "MLflow at " + s.uri in err, err
    assert len(err.strip().splitlines()) == 1
    print(f"failed {t_fail - (out / 'model.json').stat().st_mtime:.1f}s after the fit: {err.strip()}")
    assert t_fail - (out / "model.json").stat().st_mtime < 60
    client = MlflowClient(s.backend_uri, s.backend_uri)
    assert [m for m in client.search_registered_models() if m.latest_versions] == []


def test_server_frozen_right_after_creating_the_version_leaves_no_usable_version(mlflow_server, small_csv, tmp_path,
                                                                                  monkeypatch, capsys):
    """The server is frozen (SIGSTOP) the moment its store holds the new version: the create request landed, its
    answer may never come. The command ends in bounded time with one line that says what is left; after a thaw
    the version exists tagged ganstream.incomplete, no alias points to it, and ganstream refuses to load it."""
    import sqlite3
    import threading
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "3")
    s = mlflow_server  # the session's server: thawed below, and this test's model name is its alone
    db = s.backend_uri.removeprefix("sqlite:///")
    frozen = threading.Event()

    def freeze_when_the_version_is_stored():
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                with sqlite3.connect(db, timeout=1) as c:
                    stored = c.execute("select count(*) from model_versions where name='half'").fetchone()[0]
            except sqlite3.Error:
                stored = 0
            if stored:
                _freeze(s)
                frozen.set()
                return
            time.sleep(0.005)

    freezer = threading.Thread(target=freeze_when_the_version_is_stored, daemon=True)
    freezer.start()
    t0 = time.monotonic()
    try:
        code, _, err = run(["train", small_csv, *FAST, "--out", tmp_path / "m", "--register", "half",
                            "--tracking-uri", s.uri, *LOOSE], capsys)
        elapsed = time.monotonic() - t0
    finally:
        freezer.join(timeout=30)
        _thaw(s)
    assert frozen.is_set() and code == 4, (code, err)
    line = err.strip()
    assert len(line.splitlines()) == 1 and line.startswith("ganstream train: error: "), err
    assert "ganstream.incomplete" in line and "alias 'champion' unchanged" in line and "left RUNNING" in line, line
    assert elapsed < 120, elapsed
    client = MlflowClient(s.uri, s.uri)
    (version,) = client.search_model_versions("name='half'")
    assert version.tags.get("ganstream.incomplete") == "true"
    assert not client.get_registered_model("half").aliases
    code, _, err = run(["sample", f"models:/half/{version.version}", "--tracking-uri", s.uri, "--rows", 5,
                        "--out", tmp_path / "s.csv"], capsys)
    assert code == 2 and "is incomplete" in err and not (tmp_path / "s.csv").exists(), err


def test_server_dying_after_the_fit_fails_in_bounded_time(doomed, tmp_path, small_csv, monkeypatch, capsys):
    """The server is killed while `train --register` logs the run (right after the model dir is written)."""
    import threading
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    s = doomed.dying
    out = tmp_path / "m"

    def kill_when_model_written():
        deadline = time.monotonic() + 120
        while not (out / "model.json").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        s.stop()

    killer = threading.Thread(target=kill_when_model_written, daemon=True)
    killer.start()
    try:
        code, _, err = run(["train", small_csv, *FAST, "--out", out, "--register", "adult",
                            "--tracking-uri", s.uri, *LOOSE], capsys)
        t_fail = time.time()
    finally:
        killer.join(timeout=30)
        s.stop()
    # Which request meets the frozen server first is a race (the post-fit reachability probe, or a logging /
    # registry call): both end in one line naming the server, which is what a user needs.
    assert code == 4 and err.startswith("ganstream train: error: ") and s.uri in err, err
    assert ("unreachable" in err or "stopped answering" in err) and ("nothing was registered" in err or
                                                                     "ganstream.incomplete" in err), err
    after_fit = t_fail - (out / "model.json").stat().st_mtime
    print(f"failed {after_fit:.1f}s after the model was written: {err.strip().splitlines()[-1]}")
    assert after_fit < 60
    assert MlflowClient(s.backend_uri, s.backend_uri).search_registered_models() == []


def test_stopped_server_fails_fast_and_registers_nothing(doomed, tmp_path, small_csv, monkeypatch, capsys):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    s = doomed.chain  # stopped by the test above (SIGTERM): the server is gone, its store stays
    s.stop()
    assert s.proc.poll() is not None
    t0 = time.monotonic()
    code, _, err = run(["train", small_csv, *FAST, "--out", tmp_path / "m", "--register", "adult",
                        "--tracking-uri", s.uri, *LOOSE], capsys)
    elapsed = time.monotonic() - t0
    assert code == 4 and elapsed < 60
    assert "unreachable" in err and s.uri in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "m").exists()  # checked before the fit: no work wasted
    assert MlflowClient(s.backend_uri, s.backend_uri).search_registered_models() == []
    code, _, err = run(["sample", "models:/adult@champion", "--tracking-uri", s.uri, "--rows", 5,
                        "--out", tmp_path / "x.csv"], capsys)
    assert code == 4 and "unreachable" in err and not (tmp_path / "x.csv").exists()
