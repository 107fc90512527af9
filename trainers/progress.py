"""Console progress for long fits: one line per reported epoch with losses, throughput and ETA.
Trainers call `progress(metrics)` once per epoch with at least {'epoch', 'epochs'}; anything numeric
else in the dict is printed. Pass progress=None to stay silent (library use, tests)."""

from __future__ import annotations

import sys
import time
from typing import Callable, TextIO

ProgressFn = Callable[[dict], None]


class ConsoleProgress:
    def __init__(self, label: str = "fit", stream: TextIO | None = None, min_interval_s: float = 1.0):
        self.label = label
        self.stream = stream or sys.stderr
        self.min_interval_s = min_interval_s
        self.start = time.perf_counter()
        self._last = 0.0

    def __call__(self, metrics: dict) -> None:
        now = time.perf_counter()
        epoch, epochs = metrics["epoch"], metrics["epochs"]
        if epoch < epochs and epoch != 1 and now - self._last < self.min_interval_s:
            return
        self._last = now
        elapsed = now - self.start
        eta = elapsed / epoch * (epochs - epoch) if epoch else 0.0
        parts = [f"[{self.label}] epoch {epoch}/{epochs}"]
        for k, v in metrics.items():
            if k in ("epoch", "epochs") or not isinstance(v, (int, float)):
                continue
            parts.append(f"{k} {v:,.0f}" if abs(v) >= 1000 else f"{k} {v:.4g}")
        parts.append(f"elapsed {elapsed:.0f}s eta {eta:.0f}s")
        print("  ".join(parts), file=self.stream, flush=True)
