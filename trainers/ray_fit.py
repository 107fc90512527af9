"""Fit a TabularGAN with Ray Train: N workers, gloo DDP on CPU, each worker streaming its shard of DATA.

The driver (this process) never holds the rows. It validates DATA (trainers/partitioned.py), gathers the
encoder statistics in one parallel pass, fits the encoder and the hole-filling imputer on a bounded sample,
and starts a TorchTrainer. Each worker:

* rebuilds the same model (same seed -> same initial weights; DDP also broadcasts rank 0's), puts the
  generator, the discriminator (and the optional target classifier) through `prepare_model` separately;
* streams its shard in read batches of READ_BATCHES x batch_size rows (files in a seeded random order), fills holes with the imputer and
  encodes each batch with the fitted encoder (vectorized, one batch at a time);
* runs `TabularGAN.train_step` -- the very step the in-process `fit` runs -- len(batch) // batch_size
  times per read batch, so one epoch visits every row once across the workers, as in-process;
* keeps its encoded shard after the first epoch when it fits a memory budget (`shard_cache_rows`,
  --worker-cache-mb): later epochs then train on it in memory, as the in-process fit does on its encoded
  table, instead of restarting Ray Data's read pipeline (~10 s per epoch measured) to read it again;
* after each epoch, rank 0 writes a checkpoint (model dir + optimiser states, trainers/ray_checkpoint.py)
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
epoch); a checkpoint holds every trained state, so with the shard cache off a resumed fit trains on exactly
as an uninterrupted one would -- tested. With the cache on, the first epoch after a restart streams its
shard while the uninterrupted fit would train on its cached copy, so the two differ from there on). With
several workers, which blocks reach which worker is decided by Ray Data at run time.
"""

from __future__ import annotations

import os
import resource
import shutil
import tempfile
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd
import torch

from .conditioning import ConditionSampler
from .encoding import TableEncoder
from .errors import ConfigError, DataError, GanstreamError
from .partitioned import PartitionedSource, gather_stats, read_dataset, schema_from_stats, to_frame
from .progress import ProgressFn, staged
from .ray_address import check_ray_address
from .ray_checkpoint import MODEL_DIR, read_checkpoint, read_networks, restore_optimizers, write_checkpoint
from .ray_options import MIN_OBJECT_STORE_MB  # Ray refuses a smaller object store
from .runtime import seed_everything
from .tabular_gan import TabularGAN, TabularGANConfig, hot_deck

READ_BATCHES = 8  # steps' worth of rows per read batch: condition pools come from one read batch
READ_CPUS = 1.0  # CPUs left free for Ray Data's read tasks (none left -> read_parquet hangs, STACK.md)
MIN_WORKER_CPUS = 0.25  # below this a worker would be starved: refuse instead of crawling
MAX_FAILURES = 2  # worker-group restarts from the last checkpoint before the fit fails
TARGET_CLASSIFIER = "target_classifier"  # checkpoint name of --target's auxiliary classifier
CACHE_MB = 256.0  # default memory budget per worker for its encoded shard (see `shard_cache_rows`)


class DistributedFitError(GanstreamError):
    """The cluster cannot run the fit (unreachable, too few CPUs) or the fit failed on it."""


@dataclass
class RayFitOptions:
    workers: int = 1
    address: str | None = None  # join this cluster; None: start a local one and shut it down afterwards
    resume: bool = False
    storage: str | None = None  # checkpoint directory (absolute); default: beside the model, <OUT>.checkpoints
    run_name: str = "ganstream"
    max_failures: int = MAX_FAILURES
    max_steps_per_epoch: int | None = None  # benchmarks: stop stepping after this many steps, still stream every row
    cache_mb: float = CACHE_MB  # keep a worker's encoded shard after its first epoch when it fits (0: always stream)
    object_store_mb: float | None = None  # local cluster's object store in MB (None: Ray's sizing, 30% of memory)
    pid_dir: str | None = None  # workers append "<PID> <start epoch>" to <pid_dir>/rank<r>.pid (the fault test kills one)


class BatchConditionSampler(ConditionSampler):
    """Training-by-sampling within one streamed batch (see the module docstring): the global sampler's
    log-frequencies, masked to the categories this batch holds, and row pools from this batch."""

    def __init__(self, global_sampler: ConditionSampler, X: np.ndarray, total_rows: int):
        soft = global_sampler.spans
        codes = (np.stack([X[:, s.start:s.stop].argmax(axis=1) for s in soft], axis=1) if soft
                 else np.zeros((len(X), 0), np.int64))
        probs = [global_sampler.freq[j, :w] for j, w in enumerate(global_sampler.widths)]
        super().__init__(soft, probs, codes)
        if soft:
            present = np.zeros_like(self.freq, dtype=bool)
            for j in range(len(soft)):
                present[j, :self.widths[j]] = np.bincount(codes[:, j], minlength=self.widths[j]) > 0
            logf = np.log1p(self.freq * total_rows) * present
            self.log_freq = logf / logf.sum(axis=1, keepdims=True)


def global_sampler(encoder: TableEncoder, rows: int, spans=None) -> ConditionSampler:
    """Exact category frequencies of every softmax span of `spans` (default: all of the encoder's), from the
    schema's merged counts; a numeric mode span's from its mixture weights (holes encode as the heaviest mode)."""
    probs, spans = [], encoder.spans if spans is None else spans
    for span in spans:
        if span.kind != "softmax":
            continue
        spec = encoder.schema[span.column]
        if span.role == "mode":
            w = np.asarray(encoder.numeric_params[span.column]["weights"]) * (1.0 - spec.missing_rate)
            w[int(np.argmax(w))] += spec.missing_rate
            probs.append(w)
        elif span.role == "missing":
            probs.append(np.array([1.0 - spec.missing_rate, spec.missing_rate]))
        else:
            p = np.asarray(spec.frequencies, dtype=np.float64) * (1.0 - spec.missing_rate)
            probs.append(np.append(p, spec.missing_rate) if span.width > len(p) else p)
    sampler = ConditionSampler(spans, probs)
    _exact_log_frequencies(sampler, rows)
    return sampler


# ------------------------------------------------------------------------------------- cluster
def check_store_request(opts: RayFitOptions) -> None:
    """--object-store-mb (see trainers/ray_options.py for why one would bound the store) applies to the local
    cluster only: refuse it with --ray-address instead of silently ignoring it, and refuse a size Ray would
    reject, before anything is written."""
    mb = opts.object_store_mb
    if mb is None:
        return
    if opts.address:
        raise ConfigError("--object-store-mb sizes the local cluster ganstream starts; the object store of a "
                          "--ray-address cluster is set by whoever started it")
    if not MIN_OBJECT_STORE_MB <= mb < float("inf"):
        raise ConfigError(f"--object-store-mb must be >= {MIN_OBJECT_STORE_MB:g} (Ray's minimum) (got {mb:g})")


def object_store_mb() -> float:
    """The joined or started cluster's object store, in MB (what Ray reports; for the console and tests)."""
    import ray
    return float(ray.cluster_resources().get("object_store_memory", 0.0)) / 2**20


@contextmanager
def ray_cluster(address: str | None = None, store_mb: float | None = None) -> Iterator[None]:
    """Join ADDR, or start a local cluster sized to this machine (object store: `store_mb`, None: Ray's sizing)
    and shut it down afterwards. A joined cluster's store belongs to its operator: `store_mb` is not applied.
    A Ray already initialised in this process is used as it is and left running; so is the one started here
    when $GANSTREAM_RAY_KEEP=1 (the test suite shares one cluster and shuts it down at the end)."""
    import ray

    if ray.is_initialized():
        yield
        return
    os.environ.setdefault("RAY_TRAIN_V2_ENABLED", "1")
    try:
        if address:
            ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
        else:
            os.environ.setdefault("RAY_AUTH_MODE", "disabled")
            _local_train_settings()
            store = int(store_mb * 2**20) if store_mb else None
            ray.init(num_cpus=os.cpu_count() or 1, object_store_memory=store, include_dashboard=False,
                     log_to_driver=False, logging_level="ERROR")
    except (ConnectionError, RuntimeError, ValueError) as e:
        where = f"Ray cluster at {address}" if address else "a local Ray cluster"
        raise DistributedFitError(f"cannot start or join {where} ({str(e).splitlines()[0]})") from None
    _quiet_ray_data()
    try:
        yield
    finally:
        if os.environ.get("GANSTREAM_RAY_KEEP") != "1":
            ray.shutdown()


def _local_train_settings() -> None:
    """Ray Train settings for a cluster started here (its processes inherit this environment; a joined cluster
    keeps its operator's). The controller collects workers' reports every 2 s by default and a worker's next
    report waits until the previous one is collected, so every epoch shorter than that was stretched to ~2 s
    (measured: 1.7 s of waiting after each 0.3-s epoch; an 18-epoch test fit took 56 s, 20 s at 0.25). No node
    of a local cluster is preempted: no watcher actor for it."""
    os.environ.setdefault("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", "0.25")
    os.environ.setdefault("RAY_TRAIN_ENABLE_PREEMPTION_WATCHER", "0")


def _quiet_ray_data() -> None:
    import ray.data
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False if hasattr(ctx, "print_on_execution_start") else None
    import logging
    logging.getLogger("ray.data").setLevel(logging.ERROR)
    logging.getLogger("ray.train").setLevel(logging.ERROR)


def cpus_per_worker(total_workers: int, wait_s: float | None = None, read_cpus: float = READ_CPUS) -> float:
    """CPUs to ask per worker so that `read_cpus` stay free for Ray Data's readers (0 when no Ray Data
    pipeline feeds the workers). Fails at once when the
    cluster is too small for every worker to get MIN_WORKER_CPUS (Ray would otherwise wait forever for
    resources); when it is big enough but busy (tasks of an earlier job still finishing, another fit), waits
    up to `wait_s` ($GANSTREAM_RAY_WAIT_S, default 30) for CPUs to free, then fails with the same message."""
    import time

    import ray
    need = read_cpus + MIN_WORKER_CPUS * total_workers
    wait_s = float(os.environ.get("GANSTREAM_RAY_WAIT_S", "30")) if wait_s is None else wait_s
    total = float(ray.cluster_resources().get("CPU", 0.0))
    deadline = time.monotonic() + (wait_s if total >= need else 0.0)
    while True:
        available = float(ray.available_resources().get("CPU", 0.0))
        per = min(1.0, (available - read_cpus) / total_workers)
        if per >= MIN_WORKER_CPUS:
            return round(per, 3)
        if time.monotonic() >= deadline:
            busy = f" ({total - available:g} of {total:g} busy)" if total >= need else f" (the cluster has {total:g})"
            reading = f" + {read_cpus:g} for reading" if read_cpus else ""
            raise DistributedFitError(f"{total_workers} worker(s) need at least {need:g} free CPUs on the Ray cluster "
                                      f"({MIN_WORKER_CPUS:g} per worker{reading}), but only "
                                      f"{available:g} are free{busy}: lower --workers")
        time.sleep(0.5)


# ------------------------------------------------------------------------------------- driver side
def prepare_model(model: TabularGAN, src: PartitionedSource, ds, missing_tokens, workers: int,
                  progress: ProgressFn | None = None) -> pd.DataFrame:
    """Fit schema, encoder, imputer and the global condition sampler from one statistics pass. Returns the
    bounded sample (for quality reports)."""
    cfg = model.config.validate()
    stats = gather_stats(src, ds, missing_tokens, cfg.seed)
    schema = schema_from_stats(stats)
    model._check_target(schema)
    if stats.rows < cfg.batch_size * workers:
        raise DataError(f"{src.name}: {stats.rows} rows cannot give {workers} worker(s) a batch of "
                        f"{cfg.batch_size} rows each: lower --batch-size or --workers")
    rng = seed_everything(cfg.seed)
    model._fill_holes(stats.sample, schema, rng, progress)  # fits model.imputer on the sample
    model.encoder = model.new_encoder().fit(stats.sample, schema)  # numeric modes: mixture fit on the same sample
    model.sampler = global_sampler(model.encoder, stats.rows, model.condition_spans())
    return stats.sample


def worker_config(model: TabularGAN, src: PartitionedSource, missing_tokens, opts: RayFitOptions,
                  fit_id: str, progress_queue) -> dict:
    imputer = model.imputer.state() if model.imputer is not None else None
    return {"config": model.config.to_json(), "encoder": model.encoder.to_json(),
            "probs": [model.sampler.freq[j, :w].tolist() for j, w in enumerate(model.sampler.widths)],
            "rows": src.rows, "imputer": imputer, "columns": src.columns, "partition_keys": src.partition_keys,
            "tokens": list(missing_tokens), "fit_id": fit_id, "pid_dir": opts.pid_dir, "run": opts.run_name,
            "max_steps": opts.max_steps_per_epoch, "queue": progress_queue,
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


def _trainer(model, src, ds, missing_tokens, opts: RayFitOptions, per_cpu: float, storage: Path, queue):
    from ray.train import CheckpointConfig, DataConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    fit_id = uuid.uuid4().hex
    ingest = DataConfig.default_ingest_options()
    ingest.preserve_order = True  # blocks in the (seeded) file order: a 1-worker fit is reproducible
    return TorchTrainer(
        _train_worker,
        train_loop_config=worker_config(model, src, missing_tokens, opts, fit_id, queue),
        scaling_config=ScalingConfig(num_workers=opts.workers, use_gpu=False, resources_per_worker={"CPU": per_cpu}),
        run_config=RunConfig(name=opts.run_name, storage_path=str(storage),
                             failure_config=FailureConfig(max_failures=opts.max_failures),
                             checkpoint_config=CheckpointConfig(num_to_keep=2)),
        datasets={"train": ds}, dataset_config=DataConfig(execution_options=ingest))


def default_storage(out: str | os.PathLike) -> Path:
    p = Path(out).resolve()
    return p.with_name(p.name + ".checkpoints")


def _prepare_storage(storage: Path, run_name: str, resume: bool) -> None:
    run_dir = storage / run_name
    if resume:
        if not run_dir.is_dir():
            raise ConfigError(f"--resume: no checkpoints to resume from in {run_dir}")
    elif run_dir.exists():
        shutil.rmtree(run_dir)  # a fresh fit must not silently continue an old one
    storage.mkdir(parents=True, exist_ok=True)


def fit_on_ray(model: TabularGAN, data, missing_tokens=(), opts: RayFitOptions | None = None,
               out: str | os.PathLike | None = None, progress: ProgressFn | None = None,
               info=lambda msg: None) -> TabularGAN:
    """Fit `model` on DATA with Ray Train and return it fitted (loaded from the final checkpoint). The
    bounded statistics sample is left in `model.stats_sample` for quality reports."""
    from .partitioned import discover

    opts = opts or RayFitOptions()
    model.config.validate()
    check_store_request(opts)
    check_ray_address(opts.address)  # before anything is written: Ray alone retries a dead address for minutes
    src = discover(data, missing_tokens)
    if src.skipped:
        info(f"skipping {len(src.skipped)} empty Parquet file(s): {', '.join(src.skipped[:3])}"
             + (" ..." if len(src.skipped) > 3 else ""))
    storage = Path(opts.storage).resolve() if opts.storage else default_storage(out or "model")
    _prepare_storage(storage, opts.run_name, opts.resume)
    t0 = time.perf_counter()
    with ray_cluster(opts.address, opts.object_store_mb):
        per_cpu = cpus_per_worker(opts.workers)
        ds = read_dataset(src, seed=model.config.seed)
        info(f"Ray Train: {opts.workers} worker(s) x {per_cpu:g} CPU, {src.rows:,} rows in "
             f"{max(1, len(src.files))} file(s), object store {object_store_mb():,.0f} MB, "
             f"checkpoints in {storage / opts.run_name}")
        sample = prepare_model(model, src, ds, missing_tokens, opts.workers, progress)
        fitted = _run([(model, src, ds, opts)], missing_tokens, per_cpu, storage, progress)[0]
    fitted.training.update(seconds=time.perf_counter() - t0, workers=opts.workers, backend="ray")
    fitted.stats_sample = sample
    return fitted


def fit_per_partition(model: TabularGAN, data, column: str, missing_tokens=(), opts: RayFitOptions | None = None,
                      out: str | os.PathLike | None = None, progress: ProgressFn | None = None,
                      info=lambda msg: None) -> dict[str, TabularGAN]:
    """One generator per value of partition column `column`, all fitted at the same time on the cluster."""
    from dataclasses import replace
    from .partitioned import discover

    opts = opts or RayFitOptions()
    model.config.validate()
    check_store_request(opts)
    check_ray_address(opts.address)
    src = discover(data, missing_tokens)
    values = src.partition_values(column)
    storage = Path(opts.storage).resolve() if opts.storage else default_storage(out or "model")
    jobs_opts = {v: replace(opts, run_name=f"{opts.run_name}-{column}={v}") for v in values}
    for o in jobs_opts.values():
        _prepare_storage(storage, o.run_name, opts.resume)
    t0 = time.perf_counter()
    with ray_cluster(opts.address, opts.object_store_mb):
        per_cpu = cpus_per_worker(opts.workers * len(values))
        info(f"Ray Train: {len(values)} models ({column}={', '.join(values)}), {opts.workers} worker(s) each "
             f"x {per_cpu:g} CPU, object store {object_store_mb():,.0f} MB, checkpoints in {storage}")
        jobs, samples = [], []
        for v in values:
            sub = src.restrict(column, v)
            m = TabularGAN(TabularGANConfig.from_json(model.config.to_json()))
            ds = read_dataset(sub, seed=m.config.seed)
            samples.append(prepare_model(m, sub, ds, missing_tokens, opts.workers, staged(progress, f"{column}={v}")))
            jobs.append((m, sub, ds, jobs_opts[v]))
        fitted = _run(jobs, missing_tokens, per_cpu, storage, progress)
    seconds = time.perf_counter() - t0
    for m, sample in zip(fitted, samples):
        m.training.update(seconds=seconds, workers=opts.workers, backend="ray")
        m.stats_sample = sample  # this partition's bounded sample, for its quality report
    return dict(zip(values, fitted))


def _run(jobs, missing_tokens, per_cpu: float, storage: Path, progress: ProgressFn | None) -> list[TabularGAN]:
    """Run one TorchTrainer per job concurrently and load each fitted model from its last checkpoint."""
    results = run_trainers(lambda queue: [_trainer(m, src, ds, missing_tokens, o, per_cpu, storage, queue)
                                          for m, src, ds, o in jobs], progress, multi=len(jobs) > 1)
    fitted = []
    for r in results:
        with r.checkpoint.as_directory() as d:
            m = TabularGAN.load(Path(d) / MODEL_DIR)
            m.training = dict(m.training)
        fitted.append(m)
    return fitted


def run_trainers(build, progress: ProgressFn | None, multi: bool = False) -> list:
    """Run the TorchTrainers `build(queue)` returns concurrently (threads: `fit()` blocks), relaying rank 0's
    per-epoch metrics (put on `queue` by the workers) to the console progress line while they run; with
    `multi`, each line is tagged with its run's partition. Returns the trainers' results; a failure in any
    is raised (a user error keeps its type and message, see `_explain`). Shared by tabular and time-series fits."""
    from ray.util.queue import Empty, Queue

    queue = Queue(actor_options={"num_cpus": 0})
    trainers = build(queue)
    results: list = [None] * len(trainers)
    errors: list = [None] * len(trainers)

    def run(i):
        try:
            results[i] = trainers[i].fit()
        except BaseException as e:  # reported below, in the calling thread
            errors[i] = e

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(len(trainers))]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        try:
            metrics = queue.get(timeout=0.5)
        except Empty:
            continue
        if progress:
            run_name = metrics.pop("run", None)
            progress({**metrics, "stage": run_name.split("-", 1)[1]} if multi and run_name else metrics)
    for t in threads:
        t.join()
    try:
        queue.shutdown()
    except Exception:
        pass
    for e in errors:
        if e is not None:
            raise _explain(e)
    return results


def _explain(e: BaseException) -> BaseException:
    """A user error raised in a worker keeps its type and message; anything else becomes one line."""
    seen = set()
    stack = [e]
    while stack:
        x = stack.pop()
        if x is None or id(x) in seen:
            continue
        seen.add(id(x))
        if isinstance(x, GanstreamError):
            return x
        failures = getattr(x, "worker_failures", None) or {}
        stack.extend(failures.values())
        stack.extend([getattr(x, "cause", None), x.__cause__, x.__context__,
                      getattr(x, "controller_failure", None)])
    first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return DistributedFitError(f"distributed fit failed: {first}")


# ------------------------------------------------------------------------------------- worker side
def _train_worker(config: dict) -> None:
    import ray.train
    import ray.train.torch

    torch.set_num_threads(1)
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    state = {"epoch": 0, "restarts": 0, "fit_id": config["fit_id"]}
    checkpoint = ray.train.get_checkpoint()
    old, tensors, networks = None, None, {}
    if checkpoint:  # a restart after a failure, or --resume: the checkpoint's encoder and weights win
        with checkpoint.as_directory() as d:
            model = TabularGAN.load(Path(d) / MODEL_DIR)
            old, tensors = read_checkpoint(Path(d))
            networks = read_networks(Path(d))
        model.config.epochs = TabularGANConfig.from_json(config["config"]).epochs  # --resume may extend the fit
        _exact_log_frequencies(model.sampler, config["rows"])
        state.update(epoch=old["epoch"], restarts=old["restarts"] + (old["fit_id"] == config["fit_id"]))
    else:
        model = _rebuild(config)
    cfg = model.config
    sampler = model.sampler
    model.generator.train(); model.discriminator.train()
    opt_g, opt_d = model.optimizers()
    aux = model._target_parts()
    optimizers = {"generator": opt_g, "discriminator": opt_d, **({"target": aux[1]} if aux else {})}
    if aux and TARGET_CLASSIFIER in networks:
        aux[0].load_state_dict(networks[TARGET_CLASSIFIER])
    if old is not None:
        restore_optimizers(optimizers, tensors, old["param_groups"])
    if config["pid_dir"]:  # "<pid> <epoch resumed from>", one line per worker start
        with open(Path(config["pid_dir"]) / f"rank{rank}.pid", "a") as f:
            f.write(f"{os.getpid()} {state['epoch']}\n")
    plain = (model.generator, model.discriminator, aux)
    model.generator = ray.train.torch.prepare_model(model.generator)
    model.discriminator = ray.train.torch.prepare_model(model.discriminator)
    if aux:
        aux = (ray.train.torch.prepare_model(aux[0]), *aux[1:])
    shard = ray.train.get_dataset_shard("train")
    B, read_rows = cfg.batch_size, cfg.batch_size * READ_BATCHES
    cache = ShardCache(config["cache_rows"]) if config["cache_rows"] and cfg.epochs - state["epoch"] > 1 else None
    reported = 0.0  # seconds the previous epoch's checkpoint + report took (outside epoch_s)
    for epoch in range(state["epoch"] + 1, cfg.epochs + 1):
        rng = np.random.default_rng([cfg.seed, rank, epoch])
        torch.manual_seed(cfg.seed * 100_003 + rank * 1009 + epoch)
        t0, cpu0, rows, steps, sums = time.perf_counter(), time.process_time(), 0, 0, {}
        peak_private = private_memory_mb()
        timer = {"waited": 0.0, "prepared": 0.0}  # seconds waiting for Ray Data / filling + encoding (the rest: steps)
        cached = cache is not None and cache.ready
        if cached:
            batches = cache.epoch()  # the whole shard, in memory: no read pipeline to restart
        else:
            batches = _streamed_batches(shard, model, sampler, config, rng, read_rows, timer, cache)
        for Xt, batch_sampler in batches:
            model.sampler = batch_sampler
            peak_private = max(peak_private, private_memory_mb())
            cap = config.get("max_steps")
            todo = len(Xt) // B if cap is None else min(len(Xt) // B, cap - steps)
            for _ in range(todo):
                for k, v in model.train_step(Xt, rng, opt_g, opt_d, aux).items():
                    sums[k] = sums.get(k, 0.0) + v
                steps += 1
            rows += len(Xt)
        if cache is not None and not cache.ready:
            cache.seal(sampler, config["rows"])
        waited, prepared = timer["waited"], timer["prepared"]
        seconds = time.perf_counter() - t0
        metrics = {"epoch": epoch, "epochs": cfg.epochs, **{k: v / max(steps, 1) for k, v in sums.items()},
                   "rows_per_s": rows * world / seconds, "epoch_s": seconds,
                   "epoch_cpu_s": time.process_time() - cpu0, "checkpoint_s": reported, "data_wait_s": waited,
                   "prepare_s": prepared, "steps": steps, "restarts": state["restarts"],
                   "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                   "peak_private_mb": peak_private, "shared_mb": shared_memory_mb(), "cached": cached}
        model.history.append(metrics)
        state["epoch"] = epoch
        t_report = time.perf_counter()

        def checkpoint(tmp: Path) -> None:
            with _plain_networks(model, plain, sampler):
                model.training = {"rows": config["rows"], "columns": len(config["columns"]), "epochs": cfg.epochs,
                                  "final": metrics, "restarts": state["restarts"], "workers": world}
                write_checkpoint(tmp, model, optimizers, state, {TARGET_CLASSIFIER: plain[2][0]} if plain[2] else None)
        report_epoch(rank, metrics, config, checkpoint)
        reported = time.perf_counter() - t_report


def report_epoch(rank: int, metrics: dict, config: dict, checkpoint) -> None:
    """End of an epoch on a worker: rank 0 relays its metrics to the console queue, writes a checkpoint with
    `checkpoint(tmp_dir)` and reports it; the other ranks report their metrics only (Ray Train keeps rank 0's
    checkpoint). Shared by the tabular and the time-series workers."""
    import ray.train

    if rank != 0:
        ray.train.report(metrics)
        return
    if config["queue"] is not None:
        try:
            config["queue"].put_nowait({**metrics, "run": config["run"]})
        except Exception:
            pass
    with tempfile.TemporaryDirectory(prefix="ganstream-ckpt-") as tmp:
        checkpoint(Path(tmp))
        ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(tmp))


@contextmanager
def _plain_networks(model: TabularGAN, plain, sampler):
    """Save the unwrapped networks and the global sampler (a DDP wrapper prefixes every weight name)."""
    wrapped = (model.generator, model.discriminator, model.sampler)
    model.generator, model.discriminator, model.sampler = plain[0], plain[1], sampler
    try:
        yield
    finally:
        model.generator, model.discriminator, model.sampler = wrapped


def _streamed_batches(shard, model, sampler, config, rng, read_rows: int, timer: dict, cache):
    """This epoch's read batches from Ray Data, filled and encoded, each with its own condition sampler;
    copied into `cache` (when given) as they pass."""
    batches = iter(shard.iter_batches(batch_size=read_rows, batch_format="pyarrow"))
    while True:
        t_wait = time.perf_counter()
        batch = next(batches, None)
        t_prep = time.perf_counter()
        timer["waited"] += t_prep - t_wait
        if batch is None:
            return
        X = encode_batch(model, to_frame(batch, config["columns"], config["partition_keys"], config["tokens"]), rng)
        del batch
        if cache is not None:
            cache.add(X)
        batch_sampler = BatchConditionSampler(sampler, X, config["rows"])
        timer["prepared"] += time.perf_counter() - t_prep
        yield torch.from_numpy(X), batch_sampler


class ShardCache:
    """A worker's encoded shard, kept after the first epoch it streams (see `shard_cache_rows`). Later
    epochs train on it as the in-process fit trains on its encoded table: one condition sampler over all
    the shard's rows (so a step's conditions and rows come from every partition the shard holds, not from
    one read batch), the holes filled and the numbers encoded once."""

    def __init__(self, capacity: int):
        self.capacity, self.rows, self.X, self.sampler = capacity, 0, None, None

    @property
    def ready(self) -> bool:
        return self.sampler is not None

    def add(self, X: np.ndarray) -> None:
        if self.X is None:
            self.X = np.empty((self.capacity, X.shape[1]), dtype=X.dtype)
        self.X[self.rows:self.rows + len(X)] = X  # equal shards: never more than ceil(rows / workers)
        self.rows += len(X)

    def seal(self, global_sampler: ConditionSampler, total_rows: int) -> None:
        self.X = self.X[:self.rows]
        self.sampler = BatchConditionSampler(global_sampler, self.X, total_rows)

    def epoch(self):
        yield torch.from_numpy(self.X), self.sampler


def _rebuild(config: dict) -> TabularGAN:
    from .imputer import TabularImputer

    model = TabularGAN(TabularGANConfig.from_json(config["config"]))
    model.encoder = TableEncoder.from_json(config["encoder"])
    model.sampler = ConditionSampler(model.condition_spans(), [np.asarray(p) for p in config["probs"]])
    _exact_log_frequencies(model.sampler, config["rows"])
    if config["imputer"] is not None:
        model.imputer = TabularImputer.from_state(*config["imputer"])
    seed_everything(model.config.seed)  # same initial weights on every rank
    model._build_networks()
    return model


def private_memory_mb() -> float:
    """This process's private resident memory (RssAnon). Peak RSS also counts the pages of Ray's shared
    object store the worker has touched (RssShmem, `shared_memory_mb`), which grow with how far Ray Data
    reads ahead (up to half the store: see --object-store-mb): private memory is what the worker itself holds."""
    return _status_mb("RssAnon")


def shared_memory_mb() -> float:
    """Resident shared memory (RssShmem): pages of Ray's object store this process has mapped and touched."""
    return _status_mb("RssShmem")


def _status_mb(field: str) -> float:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def _exact_log_frequencies(sampler: ConditionSampler, rows: int) -> None:
    """Training-by-sampling weights log(1 + count): counts are frequencies x the table's row count."""
    logf = np.log1p(sampler.freq * rows)
    sampler.log_freq = logf / np.maximum(logf.sum(axis=1, keepdims=True), 1e-12)


def encode_batch(model: TabularGAN, df: pd.DataFrame, rng: np.random.Generator) -> np.ndarray:
    """Fill a batch's holes (imputer, or hot-deck when the sample had none to fit one on) and encode it;
    the indicators still mark the original holes."""
    mask = df.isna()
    holes = mask.to_numpy().any(axis=1)
    completed = df
    if holes.any() and model.imputer is None:
        completed = hot_deck(df, rng)
    elif holes.any():  # the imputer fills row by row: run it on the rows with holes only (a few % usually)
        filled = model.imputer.transform(df.loc[holes].reset_index(drop=True), draws=1, seed=int(rng.integers(2**31)))[0]
        completed = df.copy()
        for col in df.columns[mask.any().to_numpy()]:
            values = completed[col].to_numpy(dtype=object if completed[col].dtype != np.float64 else np.float64, copy=True)
            values[holes] = filled[col].to_numpy()
            completed[col] = pd.Series(values, index=df.index).astype(filled[col].dtype, errors="ignore")
    return model.encoder.transform(completed, missing_mask=mask, rng=rng)


class PerPartitionModels:
    """The result of --per-partition: one fitted model per partition value, saved as MODEL_DIR/COL=VALUE/
    (each an ordinary model directory) plus a model.json of kind 'partitioned' listing them, written
    atomically as one directory. With tracking, each is its own MLflow run and, with --register NAME, its own
    registered model NAME-VALUE (deploy/tracking.py `finish_partitions`)."""

    kind = "partitioned"

    def __init__(self, column: str, models: dict[str, TabularGAN]):
        self.column, self.models = column, models
        self.training = {"seconds": max((m.training.get("seconds", 0.0) for m in models.values()), default=0.0),
                         "partitions": sorted(models)}

    def save(self, path: str | os.PathLike) -> None:
        from .persistence import save_model_dir

        p = Path(path)
        staging = Path(tempfile.mkdtemp(prefix=f".{p.name}.parts.", dir=p.resolve().parent))
        try:
            for value, m in self.models.items():
                m.save(staging / f"{self.column}={value}")
            meta = {"kind": self.kind, "column": self.column,
                    "models": {v: f"{self.column}={v}" for v in sorted(self.models)}}
            save_model_dir(staging / "_index", meta, {})
            index = staging / "_index"
            for f in index.iterdir():
                os.replace(f, staging / f.name)
            index.rmdir()
            if p.exists():
                old = p.with_name(f".{p.name}.old")
                shutil.rmtree(old, ignore_errors=True)
                os.replace(p, old)
                os.replace(staging, p)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(staging, p)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
