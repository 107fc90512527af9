"""Fit a TimeSeriesGAN with Ray Train: N workers, gloo DDP on CPU, each drawing its batches from its own
shard of the training windows; per-epoch checkpoints, worker-failure recovery and --resume as for tabular
fits (trainers/backends/ray_tabular.py, whose cluster, CPU and progress plumbing this module reuses).

Why the driver reads the table (and not Ray Data, as tabular fits do): a window is seq_len consecutive steps of
one series, so series must be whole and in time order before any window exists, and the scaling, the critic's
difference scales and the least-squares backbone are fitted on all of them. The driver therefore runs the
model's own `prepare` (the very code of the in-process fit: same errors, same initial weights) and puts the
scaled series into Ray's object store once. Windows are never materialised (WindowBank: the series plus each
window's first row), so what travels and what a worker maps is the series' size, not seq_len times it; each
worker reads the shared arrays zero-copy and draws from windows rank, rank + N, ... Time-series tables are
small next to tabular ones (TimeGAN's Energy: 19,735 rows); DATA larger than the driver's memory is not
supported for this kind.

Each worker runs `TimeSeriesGAN.run_epoch` -- the step code of the in-process fit -- with the generator and
the critic each put through `prepare_model` (DDP averages their gradients). What needs care with N workers:
* the warm-up / adversarial switch and the CPU budget are decided on every rank at once (a flag all-reduced
  before each step when a budget is set), so every rank takes the same number of steps (DDP's collectives
  would otherwise wait forever);
* the innovation recalibration after the warm-up runs on rank 0 and its result is broadcast, so every rank
  samples with the same backbone;
* an epoch is ceil(windows / (batch x N)) steps per worker: together the workers visit about every window once.

Determinism: every epoch reseeds from (seed, rank, epoch) and a checkpoint holds every trained state
(generator, critic, the three Adam states, whether the warm-up is over), so a 1-worker fit resumed from a
checkpoint trains exactly as an uninterrupted one (tested). With a CPU budget the stopping step depends on
the machine, as in-process.
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ganstream.trainers.backends.checkpoint import MODEL_DIR, read_checkpoint, restore_optimizers, write_checkpoint
from ganstream.trainers.backends.storage import RayCheckpoints, ray_checkpoints
from ganstream.trainers.backends.options import FitOptions
from ganstream.trainers.backends.ray_address import check_ray_address
from ganstream.trainers.backends.ray_cluster import (announce_placement, cpus_per_worker, object_store_mb, ray_cluster, report_epoch,
                                                     run_trainers)
from ganstream.trainers.errors import ConfigError, DataError
from ganstream.trainers.progress import ProgressFn
from ganstream.trainers.runtime import epoch_rng
from ganstream.trainers.timeseries.data import WindowBank
from ganstream.trainers.timeseries.model import Budget, TimeSeriesGAN, TimeSeriesGANConfig


def fit_timeseries_on_ray(model: TimeSeriesGAN, table: pd.DataFrame, opts: FitOptions | None = None,
                          out: str | os.PathLike | None = None, progress: ProgressFn | None = None,
                          info=lambda msg: None) -> TimeSeriesGAN:
    """Fit `model` on `table` with Ray Train and return it fitted (loaded from the final checkpoint)."""
    opts = (opts or FitOptions()).validate("timeseries")
    _check_options(model, opts)
    bank = _prepared(model, table, opts.workers)  # a table the model cannot learn from fails here, before any output
    storage = ray_checkpoints(opts.checkpoint_dir, out)
    storage.prepare(opts.run_name, opts.resume)
    t0 = time.perf_counter()
    with ray_cluster(opts.ray_address, opts.object_store_mb):
        per_cpu = cpus_per_worker(opts.workers, read_cpus=0.0)
        info(f"Ray Train: {opts.workers} worker(s) x {per_cpu:g} CPU, {len(bank):,} windows of "
             f"{model.config.seq_len} steps, object store {object_store_mb():,.0f} MB, "
             f"checkpoints in {storage.run(opts.run_name)}")
        fitted = _run([(model, bank, opts)], per_cpu, storage, progress, info)[0]
    _finish(model, fitted, info)
    fitted.training.update(seconds=time.perf_counter() - t0, workers=opts.workers, backend="ray")
    return fitted


def fit_timeseries_per_partition(model: TimeSeriesGAN, table: pd.DataFrame, column: str,
                                 opts: FitOptions | None = None, out: str | os.PathLike | None = None,
                                 progress: ProgressFn | None = None, info=lambda msg: None) -> dict[str, TimeSeriesGAN]:
    """--per-partition COL for time series: one generator per value of COL (a hive partition key or any text
    column that is not the id or time column), all fitted at the same time on the cluster. COL is dropped from
    each partition's table unless it is one of the model's static columns."""
    from dataclasses import replace

    opts = (opts or FitOptions()).validate("timeseries")
    _check_options(model, opts)
    cfg = model.config
    if column not in table.columns:
        raise DataError(f"--per-partition '{column}' is not a column of the data (columns: "
                        f"{', '.join(map(str, table.columns))})")
    if column in (cfg.id_col, cfg.time_col):
        raise ConfigError(f"--per-partition '{column}' is the series id or time column; name a partition column")
    keys = table[column]
    if keys.isna().any():
        raise DataError(f"--per-partition '{column}' has missing values: every row needs a partition")
    text = keys.astype(str)
    values = sorted(text.unique())
    keep = [c for c in table.columns if c != column or column in cfg.static_cols]
    storage = ray_checkpoints(opts.checkpoint_dir, out)
    jobs, tables = [], {}
    for v in values:  # prepare every partition first: one bad partition fails the command before any fit
        m = TimeSeriesGAN(TimeSeriesGANConfig.from_json(cfg.to_json()))
        tables[v] = table.loc[text == v, keep].reset_index(drop=True)
        try:
            bank = _prepared(m, tables[v], opts.workers)
        except DataError as e:
            raise DataError(f"partition {column}={v}: {e}") from None
        jobs.append((m, bank, replace(opts, run_name=f"{opts.run_name}-{column}={v}")))
    for _, _, o in jobs:
        storage.prepare(o.run_name, opts.resume)
    t0 = time.perf_counter()
    with ray_cluster(opts.ray_address, opts.object_store_mb):
        per_cpu = cpus_per_worker(opts.workers * len(values), read_cpus=0.0)
        info(f"Ray Train: {len(values)} time-series models ({column}={', '.join(values)}), {opts.workers} "
             f"worker(s) each x {per_cpu:g} CPU, object store {object_store_mb():,.0f} MB, checkpoints in {storage}")
        fitted = _run(jobs, per_cpu, storage, progress, info)
    for (prepared, _, _), m in zip(jobs, fitted):
        _finish(prepared, m, info)
    seconds = time.perf_counter() - t0
    for v, m in zip(values, fitted):
        m.training.update(seconds=seconds, workers=opts.workers, backend="ray")
        m.stats_sample = tables[v]  # this partition's table, for its quality report
    return dict(zip(values, fitted))


def _check_options(model: TimeSeriesGAN, opts: FitOptions) -> None:
    model.config.validate()
    check_ray_address(opts.ray_address)  # before anything is written: Ray alone retries a dead address for minutes


def _prepared(model: TimeSeriesGAN, table: pd.DataFrame, workers: int) -> WindowBank:
    """The model's own `prepare`, then the keep-best check's score of the starting state (the backbone)."""
    bank = model.prepare(table)
    if len(bank) < workers:
        raise DataError(f"training data: {len(bank)} window(s) of --seq-len {model.config.seq_len} cannot be "
                        f"shared by {workers} workers: lower --workers")
    model._held_out_start()
    return bank


def _finish(prepared: TimeSeriesGAN, fitted: TimeSeriesGAN, info) -> None:
    """The in-process fit's `_finish_held_out` on the driver, which holds the held-out windows and the check:
    score the final state against the start, keep the better, fit the continuation gains. On Ray the check
    compares the start and the end only (in-process it also checks every `check_every_steps` steps)."""
    fitted._held_out, fitted._check, fitted._check_ref = prepared._held_out, prepared._check, prepared._check_ref
    held = fitted._finish_held_out()
    fitted.training["held_out"] = held
    if held.get("restored_earlier_state"):
        info(f"keep-best check: the starting state scored {held['best_score']:.3f}, better than the trained one: "
             f"kept the start")

def _run(jobs, per_cpu: float, storage: RayCheckpoints, progress: ProgressFn | None, info=None) -> list[TimeSeriesGAN]:
    try:
        results = run_trainers(lambda queue: [_trainer(m, bank, o, per_cpu, storage, queue) for m, bank, o in jobs],
                               progress, multi=len(jobs) > 1, note=info)
    except BaseException:  # a failed fit keeps only checkpoints --resume can use (Ray Train's copy is not atomic)
        for job in jobs:
            storage.remove_damaged(job[2].run_name)
        raise
    fitted = []
    for r in results:
        with r.checkpoint.as_directory() as d:
            fitted.append(TimeSeriesGAN.load(Path(d) / MODEL_DIR))
    return fitted


def _trainer(model: TimeSeriesGAN, bank: WindowBank, opts: FitOptions, per_cpu: float, storage: RayCheckpoints, queue):
    import ray
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    storage_path, filesystem = storage.ray_storage()

    meta, networks = model.to_state()
    config = {"meta": meta, "networks": networks, "values": ray.put(bank.values), "first": ray.put(bank.first),
              "owner": ray.put(bank.owner), "static": ray.put(bank.static), "fit_id": uuid.uuid4().hex,
              "pid_dir": opts.pid_dir, "run": opts.run_name, "queue": queue, "max_steps": opts.max_steps_per_epoch}
    return TorchTrainer(
        _train_worker, train_loop_config=config,
        scaling_config=ScalingConfig(num_workers=opts.workers, use_gpu=False, resources_per_worker={"CPU": per_cpu},
                                     placement_strategy="SPREAD"),  # one worker per node where there are several
        run_config=RunConfig(name=opts.run_name, storage_path=storage_path, storage_filesystem=filesystem,
                             failure_config=FailureConfig(max_failures=opts.max_failures),
                             checkpoint_config=CheckpointConfig(num_to_keep=2)))


# ------------------------------------------------------------------------------------- worker side
def _train_worker(config: dict) -> None:
    import ray
    import ray.train
    import ray.train.torch

    torch.set_num_threads(1)
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    announce_placement(rank, world, config)
    planned = TimeSeriesGANConfig.from_json(config["meta"]["config"])
    state = {"epoch": 0, "restarts": 0, "fit_id": config["fit_id"], "adversarial": False, "calibrated": False,
             "cpu_s": 0.0}
    checkpoint = ray.train.get_checkpoint()
    old = None
    if checkpoint:  # a restart after a failure, or --resume: the checkpoint's weights and states win
        with checkpoint.as_directory() as d:
            model = TimeSeriesGAN.load(Path(d) / MODEL_DIR)
            old, tensors = read_checkpoint(Path(d))
        model.config.epochs, model.config.cpu_budget_s = planned.epochs, planned.cpu_budget_s  # --resume may extend
        state.update({k: old[k] for k in ("epoch", "adversarial", "calibrated", "cpu_s")},
                     restarts=old["restarts"] + (old["fit_id"] == config["fit_id"]))
    else:
        model = TimeSeriesGAN.from_state(config["meta"], config["networks"])
    cfg = model.config
    training = dict(config["meta"]["training"])
    if model.backbone is None:
        state["calibrated"] = True
    bank = WindowBank(ray.get(config["values"]), ray.get(config["first"]), ray.get(config["owner"]),
                      ray.get(config["static"]), cfg.seq_len)
    windows = len(bank)
    shard = bank.shard(rank, world)
    opts = model.optimizers()
    if old is not None:
        restore_optimizers(opts, tensors, old["param_groups"])
    if config["pid_dir"]:  # "<pid> <epoch resumed from>", one line per worker start
        with open(Path(config["pid_dir"]) / f"rank{rank}.pid", "a") as f:
            f.write(f"{os.getpid()} {state['epoch']}\n")
    plain = (model.generator, model.critic)
    model.generator.train(); model.critic.train()
    model.generator = ray.train.torch.prepare_model(model.generator)
    model.critic = ray.train.torch.prepare_model(model.critic)
    agree = _Agreement(world)
    budget = Budget(cfg.cpu_budget_s, None)
    budget.cpu0 -= state["cpu_s"]  # a resumed fit has spent part of its budget already
    stop = (lambda: agree.any(budget.cpu_spent())) if budget.cpu_s is not None else (lambda: False)
    steps = model.steps_per_epoch(windows, world)
    if config["max_steps"]:
        steps = min(steps, config["max_steps"])
    cpu_before = time.process_time()
    for epoch in range(state["epoch"] + 1, cfg.epochs + 1):
        rng = epoch_rng(cfg.seed, rank, epoch)
        in_warmup = (not state["adversarial"] and epoch <= model.warmup_epochs()
                     and not agree.any(budget.cpu_share_past(cfg.warmup_share)))
        if not in_warmup and not state["calibrated"]:
            if rank == 0:
                model.recalibrate_innovations(shard, rng)
            agree.broadcast_module(model.backbone)
            state["calibrated"] = True
        metrics = model.run_epoch(shard, rng, opts, epoch, in_warmup, steps, stop, workers=world)
        if metrics is None:
            break
        state.update(epoch=epoch, adversarial=state["adversarial"] or not in_warmup,
                     cpu_s=state["cpu_s"] + time.process_time() - cpu_before)
        cpu_before = time.process_time()
        metrics["restarts"] = state["restarts"]
        model.history.append(metrics)

        def checkpoint(tmp: Path) -> None:
            wrapped = (model.generator, model.critic)
            model.generator, model.critic = plain  # a DDP wrapper prefixes every weight name
            model.training = {**training, "epochs_run": len(model.history), "final": metrics,
                              "cpu_seconds": state["cpu_s"], "restarts": state["restarts"], "workers": world}
            try:
                write_checkpoint(tmp, model, opts, state)
            finally:
                model.generator, model.critic = wrapped
        report_epoch(rank, metrics, config, checkpoint)
        if metrics["steps"] < steps:  # the CPU budget ran out during this epoch (on every rank: agreed)
            break


class _Agreement:
    """Decisions every rank must take together (or DDP's collectives wait forever): a flag is true on all
    ranks when it is true on any; a module's parameters and buffers are copied from rank 0."""

    def __init__(self, world: int):
        self.world = world

    def any(self, flag: bool) -> bool:
        if self.world == 1:
            return flag
        import torch.distributed as dist
        t = torch.tensor([1.0 if flag else 0.0])
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item() > 0)

    def broadcast_module(self, module: torch.nn.Module | None) -> None:
        if self.world == 1 or module is None:
            return
        import torch.distributed as dist
        with torch.no_grad():
            for t in [*module.parameters(), *module.buffers()]:
                dist.broadcast(t.data, src=0)

