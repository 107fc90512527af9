"""How long a tabular fit trains, from the table it gets: the batch size a small table can fill, the passes that
give it enough optimiser steps, and the passes of the hole-filling imputer. Every function reads and sets a
TabularGANConfig; `TabularGAN.prepare` calls them once the row count (per worker) is known."""

from __future__ import annotations

from typing import Callable

from ganstream.trainers.errors import DataError
from ganstream.trainers.tabular.config import DEFAULT_EPOCHS, MIN_STEPS, TabularGANConfig

FILL_IMPUTER_MAX_EPOCHS = 40  # imputer_epochs=0: min(epochs, this) passes over the rows
MIN_ROWS = 10  # fewer rows than this cannot train (nor give the quality checks a test split)

InfoFn = Callable[[str], None]


def adapt_batch_size(cfg: TabularGANConfig, rows: int, info: InfoFn | None = None, workers: int = 1) -> None:
    """A table with fewer rows than a batch trains with the largest multiple of `pac` it can fill (per worker), so
    any table of MIN_ROWS rows trains with the defaults."""
    if rows < MIN_ROWS:
        raise DataError(f"table has {rows} rows; at least {MIN_ROWS} are needed to train")
    per_worker = rows // workers
    if per_worker >= cfg.batch_size:
        return
    fitting = (per_worker // cfg.pac) * cfg.pac
    if not cfg.adapt_batch_size or fitting < cfg.pac:
        raise DataError(f"table has {rows} rows, fewer than --batch-size {cfg.batch_size} x {workers} worker(s): "
                        f"lower --batch-size or --workers")
    if info:
        info(f"batch size {cfg.batch_size} -> {fitting}: the table has {rows:,} rows"
             + (f" for {workers} workers" if workers > 1 else ""))
    cfg.batch_size = fitting


def resolve_epochs(cfg: TabularGANConfig, rows: int, info: InfoFn | None = None, workers: int = 1) -> None:
    """epochs=None: DEFAULT_EPOCHS passes, or enough passes for MIN_STEPS optimiser steps (per worker, one step per
    batch), whichever is more: the number of steps, not of passes, is what the game needs to converge."""
    if cfg.epochs is not None:
        return
    steps_per_epoch = max(1, (rows // workers) // cfg.batch_size)
    cfg.epochs = max(DEFAULT_EPOCHS, -(-MIN_STEPS // steps_per_epoch))
    if info and cfg.epochs > DEFAULT_EPOCHS:
        info(f"epochs {DEFAULT_EPOCHS} -> {cfg.epochs:,}: {steps_per_epoch} step(s) per pass over {rows:,} rows, "
             f"and a fit makes at least {MIN_STEPS:,} steps (set --epochs to choose)")


def imputer_epochs(cfg: TabularGANConfig) -> int:
    """Passes of the hole-filling imputer over the rows: `imputer_epochs`, else min(epochs, 40). Why it follows the
    GAN's epochs: its fills only have to be plausible, and a 2-epoch trial fit must not spend minutes there (a fixed
    2,000 steps took 237 of a 296-s fit of a 2,000-row table); 40 passes is what a full fit used."""
    return cfg.imputer_epochs or min(cfg.epochs, FILL_IMPUTER_MAX_EPOCHS)
