"""Ray Train fits on a real local Ray cluster (one per test session, see conftest.py) and real hive-
partitioned Parquet: 1 vs 2 workers give the same quality, a worker SIGKILLed mid-fit is replaced and the
fit resumes from its last checkpoint, --resume continues a finished/interrupted fit, --per-partition fits
one model per partition value, and bad requests fail fast with one line. Small data, tiny networks."""

import os
import signal
import threading
import time

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from augment.metrics import association_distance, marginal_distances, mean_marginal_distance
from pipeline.cli import main
from trainers.ray_fit import RayFitOptions, fit_on_ray
from trainers.tabular_gan import TabularGAN

SMALL = dict(generator_hidden=(64, 64), discriminator_hidden=(64, 64), batch_size=200, imputer_epochs=2, seed=0)
CLI_SMALL = ["--batch-size", "200", "--imputer-epochs", "2", "--seed", "0"]


def region_table(region: str, n: int, seed: int) -> pd.DataFrame:
    """Rows whose distribution depends on the partition: x's mean and c's mix change with the region."""
    rng = np.random.default_rng(seed)
    shift = {"eu": 0.0, "us": 3.0}[region]
    c = rng.choice(["a", "b", "c"], n, p=[0.6, 0.3, 0.1] if region == "eu" else [0.2, 0.3, 0.5])
    x = rng.normal(shift, 1.0, n) + (c == "c") * 2.0
    df = pd.DataFrame({"x": x, "k": rng.integers(0, 4, n), "c": c})
    df.loc[rng.random(n) < 0.05, "x"] = np.nan
    return df


@pytest.fixture(scope="module")
def hive(tmp_path_factory):
    root = tmp_path_factory.mktemp("hive")
    seed = 0
    for region in ("eu", "us"):
        for day in ("2026-11-01", "2026-11-02"):
            d = root / f"region={region}" / f"day={day}"
            d.mkdir(parents=True)
            seed += 1
            pq.write_table(pa.Table.from_pandas(region_table(region, 1500, seed), preserve_index=False), d / "part-0.parquet")
    return root


@pytest.fixture(scope="module")
def real(hive):
    return pd.concat([pd.read_parquet(f).assign(region=f.parent.parent.name.split("=")[1], day=f.parent.name.split("=")[1])
                      for f in sorted(hive.rglob("*.parquet"))], ignore_index=True)


def quality(model, real) -> dict:
    synthetic = model.sample(len(real), seed=1)
    return {"marginal": mean_marginal_distance(marginal_distances(real, synthetic)),
            "association": association_distance(real, synthetic)}


@pytest.fixture(scope="module")
def one_worker(hive, tmp_path_factory):
    """A 1-worker fit through the CLI (the default path), reused by the quality and --resume tests."""
    out = tmp_path_factory.mktemp("one") / "model"
    assert main(["train", str(hive), "--epochs", "3", *CLI_SMALL, "--workers", "1", "--out", str(out)]) == 0
    return out


def test_cli_fit_writes_a_model_with_checkpoints(one_worker, real):
    model = TabularGAN.load(one_worker)
    assert [h["epoch"] for h in model.history] == [1, 2, 3]
    assert model.training["backend"] == "ray" and model.training["workers"] == 1
    assert all(h["rows_per_s"] > 0 and h["peak_rss_mb"] > 0 for h in model.history)
    assert set(model.encoder.schema.names) == {"x", "k", "c", "region", "day"}
    assert model.encoder.schema["region"].categories == ["eu", "us"]
    ckpts = sorted((one_worker.parent / "model.checkpoints" / "ganstream").glob("checkpoint_*"))
    assert ckpts, "per-epoch checkpoints are kept for --resume"
    rows = model.sample(500, seed=3, condition={"region": "us"})
    assert (rows["region"] == "us").all() and len(rows) == 500


def test_two_workers_match_one_worker_quality_and_survive_a_killed_worker(hive, real, one_worker, tmp_path):
    """2-worker fit on the hive dir; one worker is SIGKILLed after the first checkpoint. Ray Train replaces
    the worker group, training continues from that checkpoint, and the model's quality matches the
    1-worker fit (same epochs, same data) within noise."""
    pid_dir = tmp_path / "pids"
    pid_dir.mkdir()
    storage = tmp_path / "ckpt"
    opts = RayFitOptions(workers=2, storage=str(storage), pid_dir=str(pid_dir))
    result = {}

    def fit():
        try:
            result["model"] = fit_on_ray(TabularGAN(epochs=3, **SMALL), hive, opts=opts)
        except BaseException as e:  # surfaced below
            result["error"] = e

    t = threading.Thread(target=fit)
    t.start()
    deadline = time.monotonic() + 600
    committed = storage / "ganstream" / "checkpoint_manager_snapshot.json"  # written once a checkpoint is registered
    while not committed.exists() and t.is_alive() and time.monotonic() < deadline:
        time.sleep(0.1)
    victim_file = pid_dir / "rank1.pid"
    assert t.is_alive() and victim_file.exists(), f"fit ended before the kill: {result}"
    victim = int(victim_file.read_text().split()[0])
    os.kill(victim, signal.SIGKILL)
    t.join(timeout=900)
    assert not t.is_alive() and "error" not in result, result.get("error")
    model = result["model"]
    starts = [line.split() for line in victim_file.read_text().splitlines()]
    assert len(starts) >= 2 and starts[0][0] != starts[-1][0], "the killed worker was replaced"
    assert int(starts[-1][1]) >= 1, "the replacement started from a checkpoint, not from scratch"
    assert model.training["restarts"] >= 1, "the fit records its restart"
    assert [h["epoch"] for h in model.history] == [1, 2, 3], "resumed after the last checkpoint, no epoch lost or repeated"

    q1, q2 = quality(TabularGAN.load(one_worker), real), quality(model, real)
    assert abs(q1["marginal"] - q2["marginal"]) <= 0.05, (q1, q2)
    assert abs(q1["association"] - q2["association"]) <= 0.1, (q1, q2)
    assert q2["marginal"] < 0.3, q2


def test_resume_continues_the_fit(one_worker, hive, tmp_path):
    out = tmp_path / "model"
    import shutil
    shutil.copytree(one_worker.parent / "model.checkpoints", tmp_path / "model.checkpoints")
    first = TabularGAN.load(one_worker).history
    assert main(["--quiet", "train", str(hive), "--epochs", "4", *CLI_SMALL, "--resume", "--out", str(out)]) == 0
    history = TabularGAN.load(out).history
    assert [h["epoch"] for h in history] == [1, 2, 3, 4]
    assert [h["d_loss"] for h in history[:3]] == [h["d_loss"] for h in first], "epochs 1-3 come from the checkpoint"


def test_per_partition_fits_one_model_per_value(hive, tmp_path):
    out = tmp_path / "by_region"
    assert main(["--quiet", "train", str(hive), "--epochs", "1", *CLI_SMALL, "--per-partition", "region",
                 "--out", str(out)]) == 0
    for region in ("eu", "us"):
        model = TabularGAN.load(out / f"region={region}")
        assert model.encoder.schema["region"].categories == [region]
        assert model.training["rows"] == 3000
        assert (model.sample(50, seed=0)["region"] == region).all()


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
    assert not (tmp_path / "m").exists() and time.monotonic() - t0 < 120


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
    from trainers.encoding import TableEncoder
    from trainers.ray_fit import BatchConditionSampler, global_sampler
    from trainers.schema import infer_schema

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
