"""The worker side of a tabular Ray Train fit (the driver side: ray_tabular.py). Each worker rebuilds the
model from the driver's prepared parts, streams its shard of DATA from Ray Data in read batches, fills and
encodes each batch, and runs `TabularGAN.run_epoch` -- the very loop of the in-process fit -- on them.

Training-by-sampling on a stream: the whole table is not there to draw "a real row having category g"
from. Each read batch gets its own `BatchConditionSampler`: conditions are still drawn with the GLOBAL
log-frequencies (exact, from the merged counts), restricted to categories present in the batch, and the
matching real row is drawn from the batch (see ray_tabular.py's docstring for why and what it costs).
"""

from __future__ import annotations

import os
import resource
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ganstream.trainers.backends.checkpoint import MODEL_DIR, Resumed, write_checkpoint
from ganstream.trainers.backends.partitioned import to_frame
from ganstream.trainers.backends.ray_cluster import announce_placement, private_memory_mb, report_epoch, shared_memory_mb
from ganstream.trainers.encoding import TableEncoder
from ganstream.trainers.runtime import epoch_rng, seed_everything
from ganstream.trainers.tabular.conditioning import ConditionSampler
from ganstream.trainers.tabular.missingness import hot_deck
from ganstream.trainers.tabular.model import TARGET_CLASSIFIER, TabularGAN, TabularGANConfig

READ_BATCHES = 8  # steps' worth of rows per read batch: condition pools come from one read batch


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
        if span.role == "joint":  # a row with a hole in the block is placed by its other columns: mixture weights
            probs.append(np.asarray(encoder.joint["weights"], dtype=np.float64))
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


def _train_worker(config: dict) -> None:
    import ray.train
    import ray.train.torch

    torch.set_num_threads(1)
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    announce_placement(rank, world, config)
    state = {"epoch": 0, "restarts": 0, "fit_id": config["fit_id"]}
    checkpoint = ray.train.get_checkpoint()
    resumed = None
    if checkpoint:  # a restart after a failure, or --resume: the checkpoint's encoder and weights win
        with checkpoint.as_directory() as d:
            model = TabularGAN.load(Path(d) / MODEL_DIR)
            resumed = Resumed(Path(d))
            old = resumed.state()
            model.config.epochs = TabularGANConfig.from_json(config["config"]).epochs  # --resume may extend the fit
            _exact_log_frequencies(model.sampler, config["rows"])
            optimizers, aux = model.training_parts()
            resumed.restore(optimizers, {TARGET_CLASSIFIER: aux[0]} if aux else {})
        state.update(epoch=old["epoch"], restarts=old["restarts"] + (old["fit_id"] == config["fit_id"]))
    else:
        model = _rebuild(config)
        optimizers, aux = model.training_parts()
    cfg = model.config
    sampler = model.sampler
    model.generator.train(); model.discriminator.train()
    if config["pid_dir"]:  # "<pid> <epoch resumed from>", one line per worker start
        with open(Path(config["pid_dir"]) / f"rank{rank}.pid", "a") as f:
            f.write(f"{os.getpid()} {state['epoch']}\n")
    plain = (model.generator, model.discriminator, aux)
    model.generator = ray.train.torch.prepare_model(model.generator)
    if model.privacy is None:
        model.discriminator = ray.train.torch.prepare_model(model.discriminator)
        if aux:
            aux = (ray.train.torch.prepare_model(aux[0]), *aux[1:])
    else:  # DP: the noised critic gradients are averaged by dp_training itself (the same seed gave the same weights)
        model.dp_workers, model.dp_fill = world, config["dp_fill"]
    shard = ray.train.get_dataset_shard("train")
    read_rows = cfg.batch_size * READ_BATCHES
    cache = ShardCache(config["cache_rows"]) if config["cache_rows"] and cfg.epochs - state["epoch"] > 1 else None
    reported = 0.0  # seconds the previous epoch's checkpoint + report took (outside epoch_s)
    for epoch in range(state["epoch"] + 1, cfg.epochs + 1):
        if model.privacy is not None and model.privacy.spent_out:  # DP: the planned epochs are the budget
            break
        rng = epoch_rng(cfg.seed, rank, epoch)
        t0, cpu0 = time.perf_counter(), time.process_time()
        memory = {"peak_private": private_memory_mb()}
        timer = {"waited": 0.0, "prepared": 0.0}  # seconds waiting for Ray Data / filling + encoding (the rest: steps)
        cached = cache is not None and cache.ready
        if cached:
            batches = cache.epoch()  # the whole shard, in memory: no read pipeline to restart
        else:
            batches = _streamed_batches(shard, model, sampler, config, rng, read_rows, timer, cache)
        if model.privacy is not None:  # every step draws from one read batch's rows (the plan's sampling rate)
            batches = _read_batch_chunks(batches, read_rows)
        sums, steps, rows = model.run_epoch(_watch_memory(batches, memory), rng, optimizers, aux,
                                            max_steps=config.get("max_steps"))
        if model.privacy is not None:
            model.privacy.epochs_done += 1
        if cache is not None and not cache.ready:
            cache.seal(sampler, config["rows"])
        seconds = time.perf_counter() - t0
        metrics = {"epoch": epoch, "epochs": cfg.epochs, **{k: v / max(steps, 1) for k, v in sums.items()},
                   "rows_per_s": rows * world / seconds, "epoch_s": seconds,
                   "epoch_cpu_s": time.process_time() - cpu0, "checkpoint_s": reported, "data_wait_s": timer["waited"],
                   "prepare_s": timer["prepared"], "steps": steps, "restarts": state["restarts"],
                   "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                   "peak_private_mb": memory["peak_private"], "shared_mb": shared_memory_mb(), "cached": cached}
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


def _watch_memory(batches, memory: dict):
    """Pass the batches through, noting the peak private memory while each is trained on."""
    for batch in batches:
        memory["peak_private"] = max(memory["peak_private"], private_memory_mb())
        yield batch


@contextmanager
def _plain_networks(model: TabularGAN, plain, sampler):
    """Save the unwrapped networks and the global sampler (a DDP wrapper prefixes every weight name)."""
    wrapped = (model.generator, model.discriminator, model.sampler)
    model.generator, model.discriminator, model.sampler = plain[0], plain[1], sampler
    try:
        yield
    finally:
        model.generator, model.discriminator, model.sampler = wrapped


def _read_batch_chunks(batches, read_rows: int):
    """The batches cut to at most `read_rows` rows (the cached shard is one batch): a DP plan's sampling rate is
    batch_size / read_rows, so no step may draw from more rows than that."""
    for X, sampler in batches:
        for start in range(0, len(X), read_rows):
            yield X[start:start + read_rows], sampler


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
    from ganstream.trainers.tabular.imputer import TabularImputer
    from ganstream.trainers.tabular.missingness import HolePatterns

    model = TabularGAN(TabularGANConfig.from_json(config["config"]))
    model.encoder = TableEncoder.from_json(config["encoder"])
    model.sampler = ConditionSampler(model.condition_spans(), [np.asarray(p) for p in config["probs"]])
    _exact_log_frequencies(model.sampler, config["rows"])
    if config["imputer"] is not None:
        model.imputer = TabularImputer.from_state(*config["imputer"])
    if config.get("holes"):
        model.holes = HolePatterns.from_json(config["holes"])
    if config.get("privacy"):
        from ganstream.trainers.tabular.dp_accounting import DPPlan
        model.privacy, model.dp_fill = DPPlan.from_json(config["privacy"]), config["dp_fill"]
    seed_everything(model.config.seed)  # same initial weights on every rank
    model._build_networks()
    return model


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
    if holes.any() and model.privacy is not None:
        from ganstream.trainers.tabular.dp_training import central_fill
        completed = central_fill(df, model.dp_fill)
    elif holes.any() and model.imputer is None:
        completed = hot_deck(df, rng)
    elif holes.any():  # the imputer fills row by row: run it on the rows with holes only (a few % usually)
        filled = model.imputer.transform(df.loc[holes].reset_index(drop=True), draws=1, seed=int(rng.integers(2**31)),
                                         calibrated=False)[0]
        completed = df.copy()
        for col in df.columns[mask.any().to_numpy()]:
            values = completed[col].to_numpy(dtype=object if completed[col].dtype != np.float64 else np.float64, copy=True)
            values[holes] = filled[col].to_numpy()
            completed[col] = pd.Series(values, index=df.index).astype(filled[col].dtype, errors="ignore")
    return model.encoder.transform(completed, missing_mask=mask, rng=rng)
