"""Seeds and CPU threads. On 2-core machines an oversubscribed torch runs 10-30x slower
(../shared/STACK.md), so every entry point sets its thread count explicitly instead of trusting defaults."""

from __future__ import annotations

import os
import random

import numpy as np
import torch


def set_threads(n: int | None = None) -> int:
    """Use `n` intra-op threads (default: $GANSTREAM_THREADS, else 1). One thread is the safe default: on a
    shared 2-core machine a 2-thread torch was measured 10-30x slower, while on an idle one the small GAN
    networks gain little from a second thread (benchmarks/RESULTS.md). Returns the number set."""
    if n is None:
        n = int(os.environ.get("GANSTREAM_THREADS", "1"))
    n = max(1, int(n))
    torch.set_num_threads(n)
    return n


def seed_everything(seed: int) -> np.random.Generator:
    """Seed python, numpy and torch; return a numpy Generator to pass around explicitly."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    return np.random.default_rng(seed)
