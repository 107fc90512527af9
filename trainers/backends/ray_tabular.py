"""Fit a TabularGAN with Ray Train: N workers, gloo DDP on CPU, each worker streaming its shard of DATA.

The driver (this process) never holds the rows. It validates DATA (backends/partitioned.py), gathers the
encoder statistics in one parallel pass, fits the encoder and the hole-filling imputer on a bounded sample,
and starts a TorchTrainer. Each worker:

* rebuilds the same model (same seed -> same initial weights; DDP also broadcasts rank 0's), puts the
  generator, the discriminator (and the optional target classifier) through `prepare_model` separately;
* streams its shard in read batches of READ_BATCHES x batch_size rows (files in a seeded random order), fills holes with the imputer and
  encodes each batch with the fitted encoder (vectorized, one batch at a time);
* runs `TabularGAN.run_epoch` -- the very loop the in-process `fit` runs -- on its read batches
  (len(batch) // batch_size steps each), so one epoch visits every row once across the workers, as in-process;
* keeps its encoded shard after the first epoch when it fits a memory budget (`shard_cache_rows`,
  --worker-cache-mb): later epochs then train on it in memory, as the in-process fit does on its encoded
  table, instead of restarting Ray Data's read pipeline (~10 s per epoch measured) to read it again;
* after each epoch, rank 0 writes a checkpoint (model dir + optimiser states, backends/checkpoint.py)
  and all ranks `report`; a worker that dies makes Ray Train restart the group (FailureConfig) from it.

Training-by-sampling on a stream: the whole table is not there to draw "a real row having category g"
from. Each read batch gets its own `BatchConditionSampler`: conditions are still drawn with the GLOBAL
log-frequencies (exact, from the merged counts), restricted to categories present in the batch, and the
matching real row is drawn from the batch. A rare category is therefore up-weighted exactly as in-process
whenever the batch holds it; read batches are large (8 steps' worth, files in a seeded random order) so
that most categories are present in most batches, and rows of a category absent from a batch are learnt
in the batches that hold them. Known limit: a read batch comes from one or two files, so with large
single-partition files the discriminator sees one partition per step (partitions alternate between
steps); a local shuffle buffer would mix them at a CPU cost (not built).

Determinism: sampling a fitted model is deterministic for a seed. The fit itself is deterministic with one
worker (blocks arrive in the seeded file order: `preserve_order`; every epoch reseeds from (seed, rank,
epoch), runtime.epoch_rng; a checkpoint holds every trained state, so with the shard cache off a resumed fit trains on exactly
as an uninterrupted one would -- tested. With the cache on, the first epoch after a restart streams its
shard while the uninterrupted fit would train on its cached copy, so the two differ from there on). With
several workers, which blocks reach which worker is decided by Ray Data at run time.
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd

from ganstream.trainers.backends.checkpoint import MODEL_DIR
from ganstream.trainers.backends.storage import RayCheckpoints, ray_checkpoints
from ganstream.trainers.backends.options import FitOptions
from ganstream.trainers.backends.partitioned import (PartitionedSource, gather_stats, read_dataset, read_whole,
                                                     schema_from_stats, source_bytes)
from ganstream.trainers.backends.ray_address import check_ray_address
from ganstream.trainers.backends.ray_cluster import cpus_per_worker, object_store_mb, ray_cluster, run_trainers
from ganstream.trainers.backends.ray_tabular_worker import READ_BATCHES, _train_worker, global_sampler
from ganstream.trainers.progress import ProgressFn, staged
from ganstream.trainers.tabular.model import TabularGAN, TabularGANConfig


def prepare_model(model: TabularGAN, src: PartitionedSource, ds, missing_tokens, workers: int,
                  progress: ProgressFn | None = None, info=None) -> pd.DataFrame:
    """Fit schema, encoder, imputer and the global condition sampler from one statistics pass. Returns the
    bounded sample (for quality reports)."""
    cfg = model.config.validate()
    stats = gather_stats(src, ds, missing_tokens, cfg.seed)
    # the imputer and the encoder (numeric modes: a mixture fit) learn from the bounded sample
    model.prepare(stats.sample, schema=schema_from_stats(stats, cfg.categorical), rows=stats.rows, workers=workers, info=info,
                  progress=progress)
    model.sampler = global_sampler(model.encoder, stats.rows, model.condition_spans())
    if cfg.dp_epsilon is not None and model.privacy is None:  # a worker's steps draw from one read batch at a time
        from ganstream.trainers.tabular import dp_training as dp
        model.privacy = dp.plan_fit(cfg, stats.rows, draw_rows=cfg.batch_size * READ_BATCHES)
        model.sampler = dp.noisy_sampler(model.sampler, stats.rows, model.privacy,
                                         dp.secret_rng())
    return stats.sample


def worker_config(model: TabularGAN, src: PartitionedSource, missing_tokens, opts: FitOptions,
                  fit_id: str, progress_queue) -> dict:
    imputer = model.imputer.state() if model.imputer is not None else None
    return {"config": model.config.to_json(), "encoder": model.encoder.to_json(),
            "probs": [model.sampler.freq[j, :w].tolist() for j, w in enumerate(model.sampler.widths)],
            "rows": src.rows, "imputer": imputer, "holes": model.holes.to_json() if model.holes else None, "columns": src.columns, "partition_keys": src.partition_keys,
            "tokens": list(missing_tokens), "fit_id": fit_id, "pid_dir": opts.pid_dir, "run": opts.run_name,
            "max_steps": opts.max_steps_per_epoch, "queue": progress_queue,
            "privacy": model.privacy.to_json() if model.privacy else None, "dp_fill": model.dp_fill,
            "cache_rows": shard_cache_rows(src.rows, opts.workers, model.encoder.output_dim, opts.cache_mb)}


def shard_cache_rows(rows: int, workers: int, width: int, budget_mb: float) -> int:
    """Rows a worker may keep encoded after its first epoch (0: stream every epoch). Ray Data restarts the
    read pipeline at every epoch (~10 s per epoch measured, whatever the epoch's size); a shard whose encoded
    form (float32, plus the condition sampler's row pools) fits the budget is instead read once, and later
    epochs train on it in memory as the in-process fit does. Every rank computes the same answer from the
    same numbers, so all ranks take the same path (DDP needs the same number of steps on every rank)."""
    per_worker = -(-rows // workers)
    bytes_per_row = 4 * width + 8 * 2 * max(1, width // 4)  # X + codes/pool indices (generous)
    return per_worker if budget_mb > 0 and per_worker * bytes_per_row <= budget_mb * 2**20 else 0


def _trainer(model, src, ds, missing_tokens, opts: FitOptions, per_cpu: float, storage: RayCheckpoints, queue):
    from ray.train import CheckpointConfig, DataConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    fit_id = uuid.uuid4().hex
    storage_path, filesystem = storage.ray_storage()
    ingest = DataConfig.default_ingest_options()
    ingest.preserve_order = True  # blocks in the (seeded) file order: a 1-worker fit is reproducible
    return TorchTrainer(
        _train_worker,
        train_loop_config=worker_config(model, src, missing_tokens, opts, fit_id, queue),
        scaling_config=ScalingConfig(num_workers=opts.workers, use_gpu=False, resources_per_worker={"CPU": per_cpu},
                                     placement_strategy="SPREAD"),  # one worker per node where there are several
        run_config=RunConfig(name=opts.run_name, storage_path=storage_path, storage_filesystem=filesystem,
                             failure_config=FailureConfig(max_failures=opts.max_failures),
                             checkpoint_config=CheckpointConfig(num_to_keep=2)),
        datasets={"train": ds}, dataset_config=DataConfig(execution_options=ingest))


def materialize(src: PartitionedSource, opts: FitOptions, missing_tokens, info, seed: int = 0) -> PartitionedSource:
    """Small DATA (FitOptions.materialize_mb) is read once here and trained from Ray's object store: each
    streamed epoch would restart Ray Data's read tasks, and the statistics pass would read it once more. Its rows
    are shuffled (seeded): the files' order would otherwise give each read batch one partition's rows. Returns
    the source with its table (a new source; `src` is left as it was), or `src` itself when DATA streams."""
    from dataclasses import replace

    size = source_bytes(src)
    if src.table is not None or size > opts.materialize_mb * 2**20:
        return src
    table = read_whole(src, missing_tokens)
    order = np.random.default_rng([int(seed), 0x5A11]).permutation(len(table))
    info(f"{src.name}: {size / 2**20:.1f} MB, read once into Ray's object store (--materialize-mb "
         f"{opts.materialize_mb:g}; larger data streams from its files at every epoch)")
    return replace(src, table=table.iloc[order].reset_index(drop=True))


def fit_on_ray(model: TabularGAN, data, missing_tokens=(), opts: FitOptions | None = None,
               out: str | os.PathLike | None = None, progress: ProgressFn | None = None,
               info=lambda msg: None) -> TabularGAN:
    """Fit `model` on DATA with Ray Train and return it fitted (loaded from the final checkpoint). The
    bounded statistics sample is left in `model.stats_sample` for quality reports."""
    from ganstream.trainers.backends.partitioned import discover

    opts = (opts or FitOptions()).validate()
    model.config.validate()
    check_ray_address(opts.ray_address)  # before anything is written: Ray alone retries a dead address for minutes
    src = discover(data, missing_tokens)
    if src.skipped:
        info(f"skipping {len(src.skipped)} empty Parquet file(s): {', '.join(src.skipped[:3])}"
             + (" ..." if len(src.skipped) > 3 else ""))
    src = materialize(src, opts, missing_tokens, info, model.config.seed)
    storage = ray_checkpoints(opts.checkpoint_dir, out)
    storage.prepare(opts.run_name, opts.resume)
    t0 = time.perf_counter()
    with ray_cluster(opts.ray_address, opts.object_store_mb):
        per_cpu = cpus_per_worker(opts.workers)
        ds = read_dataset(src, seed=model.config.seed)
        info(f"Ray Train: {opts.workers} worker(s) x {per_cpu:g} CPU, {src.rows:,} rows in "
             f"{max(1, len(src.files))} file(s), object store {object_store_mb():,.0f} MB, "
             f"checkpoints in {storage.run(opts.run_name)}")
        sample = prepare_model(model, src, ds, missing_tokens, opts.workers, progress, info)
        fitted = _run([(model, src, ds, opts)], missing_tokens, per_cpu, storage, progress, info)[0]
    fitted.training.update(seconds=time.perf_counter() - t0, workers=opts.workers, backend="ray")
    fitted.stats_sample = sample
    return fitted


def fit_per_partition(model: TabularGAN, data, column: str, missing_tokens=(), opts: FitOptions | None = None,
                      out: str | os.PathLike | None = None, progress: ProgressFn | None = None,
                      info=lambda msg: None) -> dict[str, TabularGAN]:
    """One generator per value of partition column `column`, all fitted at the same time on the cluster."""
    from dataclasses import replace
    from ganstream.trainers.backends.partitioned import discover

    opts = (opts or FitOptions()).validate()
    model.config.validate()
    check_ray_address(opts.ray_address)
    src = discover(data, missing_tokens)
    values = src.partition_values(column)
    storage = ray_checkpoints(opts.checkpoint_dir, out)
    jobs_opts = {v: replace(opts, run_name=f"{opts.run_name}-{column}={v}") for v in values}
    for o in jobs_opts.values():
        storage.prepare(o.run_name, opts.resume)
    t0 = time.perf_counter()
    with ray_cluster(opts.ray_address, opts.object_store_mb):
        per_cpu = cpus_per_worker(opts.workers * len(values))
        info(f"Ray Train: {len(values)} models ({column}={', '.join(values)}), {opts.workers} worker(s) each "
             f"x {per_cpu:g} CPU, object store {object_store_mb():,.0f} MB, checkpoints in {storage}")
        jobs, samples = [], []
        for v in values:
            sub = src.restrict(column, v)
            sub = materialize(sub, opts, missing_tokens, info, model.config.seed)
            m = TabularGAN(TabularGANConfig.from_json(model.config.to_json()))
            ds = read_dataset(sub, seed=m.config.seed)
            samples.append(prepare_model(m, sub, ds, missing_tokens, opts.workers, staged(progress, f"{column}={v}"),
                                         info))
            jobs.append((m, sub, ds, jobs_opts[v]))
        fitted = _run(jobs, missing_tokens, per_cpu, storage, progress, info)
    seconds = time.perf_counter() - t0
    for m, sample in zip(fitted, samples):
        m.training.update(seconds=seconds, workers=opts.workers, backend="ray")
        m.stats_sample = sample  # this partition's bounded sample, for its quality report
    return dict(zip(values, fitted))


def _run(jobs, missing_tokens, per_cpu: float, storage: RayCheckpoints, progress: ProgressFn | None, info=None) -> list[TabularGAN]:
    """Run one TorchTrainer per job concurrently and load each fitted model from its last checkpoint."""
    try:
        results = run_trainers(lambda queue: [_trainer(m, src, ds, missing_tokens, o, per_cpu, storage, queue)
                                              for m, src, ds, o in jobs], progress, multi=len(jobs) > 1, note=info)
    except BaseException:  # a failed fit keeps only checkpoints --resume can use (Ray Train's copy is not atomic)
        for job in jobs:
            storage.remove_damaged(job[3].run_name)
        raise
    fitted = []
    for r in results:
        with r.checkpoint.as_directory() as d:
            m = TabularGAN.load(Path(d) / MODEL_DIR)
            m.training = dict(m.training)
        fitted.append(m)
    return fitted
