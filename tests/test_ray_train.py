"""Ray Train fits on a real local Ray cluster (one per test session, started by conftest's `ray_first_fit`
with --object-store-mb 80) and real hive-partitioned Parquet: the object-store option sizes the cluster it
starts and the data streams through it; 1 vs 2 workers give the same quality, a worker SIGKILLed mid-fit is
replaced and the fit resumes from its last checkpoint; --resume continues a fit exactly as if it had not
stopped (generator, discriminator, optimisers and --target's classifier all restored); --per-partition fits and
registers one model per partition value; bad requests (a dead --ray-address too) fail fast with one line.
Small data, tiny networks; every Ray Train run here costs ~15-40 s of Ray's own start-up, so there are few."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from ganstream.augment.metrics import association_distance, marginal_distances, mean_marginal_distance
from ganstream.pipeline.cli import main
from ganstream.trainers.column_values import datetimes_as_numbers
from ganstream.trainers.backends.options import FitOptions
from ganstream.trainers.backends.ray_tabular import fit_on_ray
from ganstream.trainers.tabular.model import TabularGAN
from ray_checkpoints import interrupted_after
from ray_data import RAY_FIT_ARGS, region_table
from worker_kill import fit_with_a_killed_worker
from mlflow_db import sqlite_uri
from helpers import run

pytestmark = [pytest.mark.xdist_group("ray"),  # one xdist worker runs every Ray test, on one shared cluster
              pytest.mark.usefixtures("ray_first_fit")]

SMALL = dict(generator_hidden=(64, 64), discriminator_hidden=(64, 64), batch_size=200, imputer_epochs=2, seed=0)
CLI_SMALL = ["--batch-size", "200", "--imputer-epochs", "2", "--seed", "0"]


@pytest.fixture(scope="module")
def hive(ray_first_fit):
    return ray_first_fit.hive


@pytest.fixture(scope="module")
def real(hive):
    return pd.concat([pd.read_parquet(f).assign(region=f.parent.parent.name.split("=")[1], day=f.parent.name.split("=")[1])
                      for f in sorted(hive.rglob("*.parquet"))], ignore_index=True)


def quality(model, real) -> dict:
    """Compared on the learned columns (the event id is not one), timestamps as numbers (as `evaluate` does)."""
    schema = model.encoder.schema
    synthetic = datetimes_as_numbers(model.sample(len(real), seed=1), schema)
    real = datetimes_as_numbers(real[schema.names], schema)
    return {"marginal": mean_marginal_distance(marginal_distances(real, synthetic)),
            "association": association_distance(real, synthetic)}


@pytest.fixture(scope="module")
def one_worker(ray_first_fit):
    """The session's first Ray fit (conftest): 1 worker, 2 epochs, --backend ray through the CLI."""
    return ray_first_fit.model_dir


def test_cli_fit_writes_a_model_with_checkpoints(one_worker, real):
    model = TabularGAN.load(one_worker)
    assert [h["epoch"] for h in model.history] == [1, 2]
    assert model.training["backend"] == "ray" and model.training["workers"] == 1
    assert all(h["rows_per_s"] > 0 and h["peak_rss_mb"] > 0 and "target_loss" in h for h in model.history)
    assert set(model.encoder.schema.names) == {"x", "k", "c", "seen", "region", "day"}
    assert list(model.encoder.schema.dropped) == ["event_id"]  # an identifier: never learned, never sampled
    assert model.encoder.schema["region"].categories == ["eu", "us"]
    ckpts = sorted((one_worker.parent / "model.checkpoints" / "ganstream").glob("checkpoint_*"))
    assert ckpts, "per-epoch checkpoints are kept for --resume"
    rows = model.sample(500, seed=3, condition={"region": "us"})
    assert (rows["region"] == "us").all() and len(rows) == 500
    assert str(rows["seen"].dtype) == "datetime64[us]" and "event_id" not in rows.columns
    assert rows["seen"].between(pd.Timestamp("2026-11-01"), pd.Timestamp("2026-12-01")).all()


def test_a_ray_fit_prints_no_warning_of_ray_itself(ray_first_fit):
    """Ray warns about its own use of its deprecated options on every fit (RayDeprecationWarning); the console
    of `train --backend ray` has ganstream's lines only."""
    assert "Warning" not in ray_first_fit.console and "warn" not in ray_first_fit.console.lower(), ray_first_fit.console


def test_object_store_option_sizes_the_cluster_it_starts_and_data_streams_through_it(ray_first_fit):
    """The session's cluster was started by that fit's `--object-store-mb 80`: Ray reports an 80 MB store, the
    fit said so, and its DATA went through that store to a model (read once: it is small; the per-partition test
    below streams from the files)."""
    import ray
    assert float(ray.cluster_resources()["object_store_memory"]) / 2**20 == pytest.approx(80, abs=0.5)
    assert "object store 80 MB" in ray_first_fit.console, ray_first_fit.console
    assert "read once into Ray's object store" in ray_first_fit.console
    model = TabularGAN.load(ray_first_fit.model_dir)
    assert model.training["rows"] == 6000 and not any(h["cached"] for h in model.history)


def test_two_workers_match_one_worker_quality_and_survive_a_killed_worker(hive, real, one_worker, tmp_path):
    """2-worker fit on the hive dir as the 1-worker reference is fitted (read once into the object store, no shard
    cache, so each epoch re-reads it and lasts long enough to be interrupted); one worker is SIGKILLed after the
    first checkpoint. Ray Train replaces the worker group, training continues from that
    checkpoint, and the model's quality matches the 1-worker fit (same epochs, same data) within noise."""
    pid_dir = tmp_path / "pids"
    pid_dir.mkdir()
    storage = tmp_path / "ckpt"
    opts = FitOptions(backend="ray", workers=2, checkpoint_dir=str(storage), pid_dir=str(pid_dir), worker_cache_mb=0)
    same = TabularGAN.load(one_worker).config  # the reference's settings: only the number of workers differs
    model = fit_with_a_killed_worker(lambda: fit_on_ray(TabularGAN(same), hive, opts=opts),
                                     storage, pid_dir)
    assert model.training["restarts"] >= 1, "the fit records its restart"
    assert [h["epoch"] for h in model.history] == [1, 2], "resumed after the last checkpoint, no epoch lost or repeated"

    q1, q2 = quality(TabularGAN.load(one_worker), real), quality(model, real)
    assert abs(q1["marginal"] - q2["marginal"]) <= 0.05, (q1, q2)
    assert abs(q1["association"] - q2["association"]) <= 0.1, (q1, q2)
    assert q2["marginal"] < 0.3, q2


def test_resume_continues_the_fit_exactly(one_worker, hive, tmp_path):
    """The 2-epoch fit's checkpoints cut back to epoch 1 (a fit stopped there: tests/ray_checkpoints.py), then
    --resume: epoch 2 must train exactly as in the straight fit (1 worker is reproducible): it only can if the
    checkpoint brought back G, D, both Adam states AND --target's auxiliary classifier with its optimiser (a
    fresh classifier gives another target_loss)."""
    out = tmp_path / "model"
    interrupted_after(one_worker.parent / "model.checkpoints", tmp_path / "model.checkpoints", epoch=1)
    assert main(["--quiet", "train", str(hive), *RAY_FIT_ARGS, "--out", str(out), "--resume"]) == 0
    straight, resumed = TabularGAN.load(one_worker), TabularGAN.load(out)
    assert [h["epoch"] for h in resumed.history] == [1, 2]
    assert resumed.history[0] == straight.history[0], "epoch 1 is the checkpoint's record (timings too), not re-run"
    assert resumed.history[1]["epoch_s"] != straight.history[1]["epoch_s"], "epoch 2 was trained by the resume"
    losses = ("d_loss", "g_loss", "cond_loss", "target_loss")
    for a, b in zip(straight.history, resumed.history):
        assert {k: a[k] for k in losses} == {k: b[k] for k in losses}, (a["epoch"], a, b)
    for name, weight in straight.generator.state_dict().items():
        assert torch.equal(weight, resumed.generator.state_dict()[name]), name


@pytest.fixture(scope="module")
def two_regions(tmp_path_factory):
    """region=us: continuous x, a generator never copies a row; region=eu: 8 distinct rows only, so nearly every
    synthetic row is an exact copy of a training row and the exact-copy gate (<= 5%) must refuse it."""
    root = tmp_path_factory.mktemp("two_regions")
    rng = np.random.default_rng(5)
    n = 400
    tables = {"us": pd.DataFrame({"x": rng.normal(0, 1, n), "k": rng.integers(0, 2, n), "c": rng.choice(["a", "b"], n)}),
              "eu": pd.DataFrame({"x": rng.choice([1.5, 2.5], n), "k": rng.integers(0, 2, n), "c": rng.choice(["a", "b"], n)})}
    for region, df in tables.items():
        (root / f"region={region}").mkdir()
        pq.write_table(pa.Table.from_pandas(df, preserve_index=False), root / f"region={region}" / "part-0.parquet")
    return root


def test_per_partition_fits_and_registers_one_model_per_value(two_regions, tmp_path, monkeypatch, capsys):
    """--per-partition region --register NAME: each partition is its own MLflow run and, if it passes the gate,
    a version of NAME-<value>; region=eu fails the gate: no version, exit 3, and the message names it. The
    workers stream their partition from its files (--materialize-mb 0) and keep it after epoch 1."""
    from mlflow import MlflowClient

    monkeypatch.chdir(tmp_path)
    uri = sqlite_uri(tmp_path / 'mlflow.db')
    out = tmp_path / "by_region"
    code = main(["--quiet", "train", str(two_regions), "--epochs", "2", *CLI_SMALL, "--per-partition", "region",
                 "--materialize-mb", "0",
                 "--out", str(out), "--tracking-uri", uri, "--register", "sales",
                 "--gate", "detection_auc=off", "--gate", "marginal_mean_distance=off", "--gate", "dcr_ratio=off"])
    err = capsys.readouterr().err
    assert code == 3, err
    last = err.strip().splitlines()[-1]  # (MLflow itself prints its "Created version" lines for region=us)
    assert err.count("error:") == 1 and "quality gate failed for 1 of 2 partitions" in last, err
    assert "region=eu (exact_copy_rate=" in last and "region=us -> sales-us version 1" in last, err

    for region in ("eu", "us"):  # both fitted and written; only one registered
        model = TabularGAN.load(out / f"region={region}")
        assert model.encoder.schema["region"].categories == [region] and model.training["rows"] == 400
        assert [h["cached"] for h in model.history] == [False, True], "epoch 2 trains on the worker's cached shard"
    client = MlflowClient(uri, uri)
    assert {m.name for m in client.search_registered_models()} == {"sales-us"}
    version = client.get_model_version_by_alias("sales-us", "champion")
    assert str(version.version) == "1" and version.tags["partition.value"] == "us"
    runs = client.search_runs([client.get_experiment_by_name("ganstream").experiment_id])
    assert sorted(r.data.tags["partition.value"] for r in runs) == ["eu", "us"]
    assert {r.data.tags["partition.value"]: r.data.tags["gate"] for r in runs} == {"eu": "failed", "us": "passed"}

    import mlflow
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    rows = mlflow.pyfunc.load_model("models:/sales-us@champion").predict(pd.DataFrame({"rows": [20], "seed": [0]}))
    assert len(rows) == 20 and (rows["region"] == "us").all()


def test_partition_model_names_are_sanitised_and_unique():
    from ganstream.deploy.registry import partition_model_names
    from ganstream.trainers.errors import ConfigError

    assert partition_model_names("m", ["eu", "us west", "a/b"]) == {"eu": "m-eu", "us west": "m-us_west", "a/b": "m-a_b"}
    with pytest.raises(ConfigError, match="'a/b' and 'a:b' would both be registered as 'm-a_b'"):
        partition_model_names("m", ["a/b", "a:b"])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _train_at(address: str, hive, tmp_path, capsys):
    """`train --ray-address ADDR` (tracked, to show no MLflow store is created): (exit code, stderr, seconds)."""
    t0 = time.monotonic()
    code = main(["--quiet", "train", str(hive), "--epochs", "1", "--ray-address", address, "--out", str(tmp_path / "m"),
                 "--register", "never", "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}"])
    return code, capsys.readouterr().err, time.monotonic() - t0


def test_dead_ray_address_fails_fast_and_writes_nothing(hive, tmp_path, capsys):
    """Ray itself retries a dead address for ~2 minutes. Nothing listening, and a port that accepts but is not
    Ray: one line naming the address, exit 4, within seconds, no model, checkpoints or tracking store. The
    session's own Ray cluster is untouched (later tests keep using it)."""
    import ray
    was_up = ray.is_initialized()
    port = _free_port()
    code, err, seconds = _train_at(f"127.0.0.1:{port}", hive, tmp_path, capsys)
    assert code == 4 and seconds < 30, (code, seconds, err)
    assert err.count("\n") == 1 and f"Ray cluster 127.0.0.1:{port} is unreachable" in err and "--ray-address" in err, err
    with socket.socket() as silent:  # accepts connections, never speaks gRPC
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        address = f"ray://127.0.0.1:{silent.getsockname()[1]}"
        code, err, seconds = _train_at(address, hive, tmp_path, capsys)
    assert code == 4 and seconds < 30 and f"Ray cluster {address} is unreachable" in err, (code, seconds, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == [], "no model, checkpoint dir or MLflow store"
    assert ray.is_initialized() == was_up


def test_stopped_ray_head_fails_fast(hive, tmp_path, capsys):
    """A real Ray head (`ray start --head`, its own temp dir, so no other process is pointed at it) passes the
    probe while it runs; once its processes are killed, `train --ray-address` to it fails in seconds."""
    from ganstream.trainers.backends.ray_address import check_ray_address

    port = _free_port()
    temp = Path(f"/tmp/gsr-{os.getpid()}")
    env = {**os.environ, "RAY_TMPDIR": str(temp), "RAY_ADDRESS": ""}
    head = subprocess.Popen([str(Path(sys.executable).parent / "ray"), "start", "--head", "--block", f"--port={port}",
                             "--num-cpus=0", "--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={temp}"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                check_ray_address(f"127.0.0.1:{port}")
                break
            except Exception:
                assert head.poll() is None and time.monotonic() < deadline, "the Ray head did not come up"
                time.sleep(1)
    finally:
        for sig in (signal.SIGTERM, signal.SIGKILL):  # the head and every process it started (its own session)
            try:
                os.killpg(head.pid, sig)
            except ProcessLookupError:
                break
            try:
                head.wait(timeout=15)
            except subprocess.TimeoutExpired:
                continue
        shutil.rmtree(temp, ignore_errors=True)
    time.sleep(1)
    code, err, seconds = _train_at(f"127.0.0.1:{port}", hive, tmp_path, capsys)
    assert code == 4 and seconds < 30 and f"Ray cluster 127.0.0.1:{port} is unreachable" in err, (code, seconds, err)
    assert not (tmp_path / "m").exists() and not (tmp_path / "m.checkpoints").exists()


@pytest.mark.parametrize("args, message", [
    (["--workers", "64"], "free CPUs"),
    (["--resume"], "no checkpoints to resume from"),
    (["--per-partition", "c"], "'c' is not a partition column"),
])
def test_bad_requests_fail_fast_with_one_line(hive, tmp_path, capsys, args, message):
    t0 = time.monotonic()
    code = main(["--quiet", "train", str(hive), "--epochs", "1", *args, "--out", str(tmp_path / "m")])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1, err
    assert sorted(tmp_path.iterdir()) == [] and time.monotonic() - t0 < 120, "no model, no checkpoint dir"


def test_bad_partitions_fail_before_any_training(hive, tmp_path, capsys):
    import shutil
    data = tmp_path / "data"
    shutil.copytree(hive, data)
    bad = data / "region=us" / "day=2026-11-03"
    bad.mkdir()
    region_table("us", 10, 9).assign(k=lambda d: d["k"].astype(float)).to_parquet(bad / "part-0.parquet")
    code = main(["--quiet", "train", str(data), "--epochs", "1", "--out", str(tmp_path / "m")])
    err = capsys.readouterr().err
    assert code == 2 and "day=2026-11-03/part-0.parquet: column 'k' is double, but int64" in err


def test_batch_condition_sampler_uses_global_weights_and_rows_of_the_batch():
    """Training-by-sampling on a streamed batch: a drawn condition always comes with a batch row that has it;
    categories missing from the batch are never drawn; the others keep the global log-frequency weights."""
    from ganstream.trainers.encoding import TableEncoder
    from ganstream.trainers.backends.ray_tabular_worker import BatchConditionSampler, global_sampler
    from ganstream.trainers.schema import infer_schema

    rng = np.random.default_rng(0)
    full = pd.DataFrame({"c": rng.choice(["a", "b", "rare"], 10_000, p=[0.7, 0.29, 0.01]), "x": rng.normal(size=10_000)})
    encoder = TableEncoder("quantile", "indicator", small_integers=True).fit(full, infer_schema(full))
    sampler = global_sampler(encoder, len(full))
    batch = full[full["c"] != "rare"].iloc[:800].reset_index(drop=True)
    X = encoder.transform(batch)
    cond, span, g, rows = BatchConditionSampler(sampler, X, len(full)).sample_train(20_000, rng)
    chosen = np.asarray(encoder.schema["c"].categories)[g]
    assert (batch["c"].to_numpy()[rows] == chosen).all()
    assert "rare" not in set(chosen)
    w = np.log1p(np.array(encoder.schema["c"].frequencies) * len(full))[:2]
    assert (chosen == "a").mean() == pytest.approx(w[0] / w.sum(), abs=0.02)


@pytest.mark.parametrize("args, message", [
    (["--object-store-mb", "50"], "--object-store-mb must be >= 75 (got 50.0)"),
    (["--object-store-mb", "lots"], "--object-store-mb must be a number (got 'lots')"),
    (["--object-store-mb", "inf"], "--object-store-mb must be >= 75 (Ray's minimum) (got inf)"),
    (["--object-store-mb", "100", "--ray-address", "127.0.0.1:6379"], "sizes the local cluster ganstream starts"),
])
def test_bad_object_store_requests_exit_2(hive, tmp_path, capsys, args, message):
    """A size Ray would refuse is a usage error (argparse: exit 2); a size with --ray-address (whose store is
    its operator's) is refused with one line before any Ray work, and nothing is written."""
    argv = ["--quiet", "train", str(hive), "--epochs", "1", *args, "--out", str(tmp_path / "m")]
    try:
        code = main(argv)
    except SystemExit as e:  # argparse usage errors exit 2 themselves (usage line + error line)
        code = e.code
    err = capsys.readouterr().err
    assert code == 2 and message in err, err
    assert err.strip().splitlines()[-1].count("error:") == 1
    if "--ray-address" in args:
        assert err.count("\n") == 1, err
    assert not (tmp_path / "m").exists() and not (tmp_path / "m.checkpoints").exists()


def _descendants(root: int) -> dict[int, str]:
    """pid -> command of every process below `root` (from /proc)."""
    children: dict[int, list[int]] = {}
    names = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            children.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(entry.name))
            try:
                names[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()[:120]
            except OSError:
                names[int(entry.name)] = ""
    out, todo = {}, [root]
    while todo:
        for pid in children.get(todo.pop(), []):
            out[pid] = names[pid]
            todo.append(pid)
    return out


def test_a_killed_job_leaves_no_ray_process_behind(hive, tmp_path):
    """SIGKILL on a job running its own local Ray cluster: every process it started (GCS, raylet, Ray's agents,
    workers) is gone within seconds (trainers/backends/reaper.py), not 61 s later."""
    cli = Path(sys.executable).with_name("ganstream")
    job = subprocess.Popen([str(cli), "--quiet", "train", str(hive), *RAY_FIT_ARGS, "--epochs", "200",
                            "--out", str(tmp_path / "m")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           env={**os.environ, "GANSTREAM_RAY_KEEP": "0"})
    try:
        deadline = time.monotonic() + 120
        while not any("raylet" in n for n in _descendants(job.pid).values()):
            assert job.poll() is None and time.monotonic() < deadline, "the job did not start its Ray cluster"
            time.sleep(0.5)
        time.sleep(3)  # the agents start after the raylet
        started = _descendants(job.pid)
        assert any("Agent" in n for n in started.values()), started
    finally:
        job.kill()
        job.wait()
    deadline = time.monotonic() + 15
    while (alive := [p for p in started if Path(f"/proc/{p}").exists()]) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not alive, {p: started[p] for p in alive}


def test_dp_fit_on_two_workers_accounts_per_read_batch(hive, tmp_path):
    """`dp_epsilon` on Ray: two workers (the critic outside DDP, its noised gradients averaged by dp_training, each
    worker drawing half the noise variance), every step drawing from one read batch. The plan's sampling rate is
    batch / read-batch rows, and the accountant's epsilon stays within the request."""
    from ganstream.trainers.backends.ray_tabular_worker import READ_BATCHES
    opts = FitOptions(backend="ray", workers=2, checkpoint_dir=str(tmp_path / "ckpt"), worker_cache_mb=0)
    model = fit_on_ray(TabularGAN(**SMALL, epochs=2, dp_epsilon=3.0, target="c"), hive, opts=opts)
    plan = model.privacy
    rows = model.training["rows"]
    assert plan.sample_rate == pytest.approx(min(1.0, 200 / min(rows, 200 * READ_BATCHES)))
    assert plan.epochs_done == 2 and plan.spent() <= 3.0
    assert model.holes is None and model.imputer is None
    rows_out = model.sample(500, seed=0)
    assert len(rows_out) == 500 and rows_out.notna().any().all()


def test_checkpoints_on_s3_and_resume_from_there(hive, tmp_path, monkeypatch, capsys):
    """--checkpoint-dir s3://... on a real S3 server (moto on 127.0.0.1, tests/prod_stack.py): Ray Train writes the
    checkpoints to the bucket (no shared disk), --resume continues from the newest one there with a larger --epochs,
    a successful fit without --keep-checkpoints removes its prefix, and --resume from an empty prefix is one line."""
    from prod_stack import BUCKET, S3_ENV, start_s3
    s3 = start_s3(tmp_path)
    try:
        for key, value in {**S3_ENV, "AWS_ENDPOINT_URL": s3.endpoint}.items():
            monkeypatch.setenv(key, value)
        uri = f"s3://{BUCKET}/fits"
        base = ["train", hive, *CLI_SMALL, "--backend", "ray", "--worker-cache-mb", "0", "--checkpoint-dir", uri]
        code, _, err = run([*base, "--epochs", "1", "--out", tmp_path / "m1", "--keep-checkpoints"], capsys)
        assert code == 0, err
        saved = [k for k in s3.keys() if k.startswith("fits/ganstream/checkpoint_")]
        assert any(k.endswith("model/model.json") for k in saved) and any(k.endswith("state.json") for k in saved)
        code, _, err = run([*base, "--epochs", "2", "--out", tmp_path / "m2", "--resume"], capsys)
        assert code == 0, err
        resumed = TabularGAN.load(tmp_path / "m2")
        assert [h["epoch"] for h in resumed.history] == [1, 2]
        assert resumed.history[0] == TabularGAN.load(tmp_path / "m1").history[0], "epoch 1 came from the bucket"
        assert not [k for k in s3.keys() if k.startswith("fits/ganstream/")], "removed after the fit"
        code, _, err = run([*base, "--epochs", "2", "--out", tmp_path / "m3", "--resume"], capsys)
        assert code == 2 and "no checkpoints to resume from in s3://" in err and len(err.strip().splitlines()) == 1
        assert not (tmp_path / "m3").exists()
    finally:
        s3.stop()


def test_s3_checkpoints_need_the_ray_backend(hive, tmp_path, capsys):
    code, _, err = run(["train", hive, *CLI_SMALL, "--epochs", "1", "--checkpoint-dir", "s3://b/p",
                        "--out", tmp_path / "m"], capsys)
    assert code == 2 and "add --backend ray" in err and not (tmp_path / "m").exists()
