"""Console progress for long fits: one line per reported epoch. Trainers call `progress(metrics)` once per
epoch with at least {'epoch', 'epochs'}; an optional 'stage' (e.g. 'imputer' while holes are filled before GAN
training) labels the line, and 'epoch_s' (seconds of that epoch) makes the ETA ignore time spent before the
first epoch. Pass progress=None to stay silent (library use, tests).

The default line is compact (epoch, the losses, rows/s, ETA: about 100 characters); `verbose=True` prints
every numeric figure of the epoch's record (the command line's --verbose)."""

from __future__ import annotations

import sys
import time
from typing import Callable, TextIO

ProgressFn = Callable[[dict], None]
COMPACT_KEYS = ("d_loss", "g_loss", "sup_loss", "loss_d", "rec_holdout", "rows_per_s")


class ConsoleProgress:
    def __init__(self, label: str = "fit", stream: TextIO | None = None, min_interval_s: float = 1.0,
                 verbose: bool = False):
        self.label = label
        self.stream = stream or sys.stderr
        self.min_interval_s = min_interval_s
        self.verbose = verbose
        self.start = time.perf_counter()
        self._last = 0.0
        self._epoch_seconds: dict[str, float] = {}

    def __call__(self, metrics: dict) -> None:
        now = time.perf_counter()
        stage = metrics.get("stage", "")
        epoch, epochs = metrics["epoch"], metrics["epochs"]
        if "epoch_s" in metrics:
            self._epoch_seconds[stage] = self._epoch_seconds.get(stage, 0.0) + float(metrics["epoch_s"])
        if epoch < epochs and epoch != 1 and now - self._last < self.min_interval_s:
            return
        self._last = now
        elapsed = now - self.start
        spent = self._epoch_seconds.get(stage, elapsed)
        eta = spent / epoch * (epochs - epoch) if epoch else 0.0
        label = f"{self.label}:{stage}" if stage else self.label
        parts = [f"[{label}] epoch {epoch}/{epochs}"]
        keys = [k for k in metrics if k not in ("epoch", "epochs")] if self.verbose else \
            [k for k in COMPACT_KEYS if k in metrics]
        for k in keys:
            v = metrics[k]
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                continue
            name = "rows/s" if k == "rows_per_s" and not self.verbose else k
            parts.append(f"{name} {v:,.0f}" if abs(v) >= 1000 else f"{name} {v:.4g}")
        parts.append(f"eta {eta:.0f}s" if self.verbose is False else f"elapsed {elapsed:.0f}s eta {eta:.0f}s")
        print("  ".join(parts), file=self.stream, flush=True)


def staged(progress: ProgressFn | None, stage: str) -> ProgressFn | None:
    """Wrap a progress callback so every report carries `stage`."""
    if progress is None:
        return None
    return lambda metrics: progress({**metrics, "stage": stage})
