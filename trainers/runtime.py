"""Seeds and CPU threads. On 2-core machines an oversubscribed torch runs 10-30x slower
(../shared/STACK.md), so every entry point sets its thread count explicitly instead of trusting defaults.

Seeds are derived here and nowhere else, so that a stream of random numbers depends only on the user's seed
and on where it is used (a shard, a training epoch on a worker), never on the order in which work happens:
that is what makes a resumed fit continue exactly, and a re-run shard the same bytes."""

from __future__ import annotations

import hashlib
import os
import random
import time

import numpy as np


def set_threads(n: int | None = None) -> int:
    """Use `n` intra-op threads (default: $GANSTREAM_THREADS, else 1). One thread is the safe default: on a
    shared 2-core machine a 2-thread torch was measured 10-30x slower, while on an idle one the small GAN
    networks gain little from a second thread (benchmarks/RESULTS.md). Returns the number set."""
    if n is None:
        n = int(os.environ.get("GANSTREAM_THREADS", "1"))
    n = max(1, int(n))
    import torch
    torch.set_num_threads(n)
    return n


def seed_everything(seed: int) -> np.random.Generator:
    """Seed python, numpy and torch; return a numpy Generator to pass around explicitly."""
    import torch
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    return np.random.default_rng(seed)


def derive_seed(seed: int, *path: int | str) -> int:
    """A 63-bit seed for (seed, *path), e.g. (seed, shard, part): independent streams, stable across runs and
    machines (a hash, not Python's salted `hash`)."""
    digest = hashlib.sha256(repr((int(seed), *path)).encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def epoch_rng(seed: int, rank: int, epoch: int) -> np.random.Generator:
    """The random streams of one training epoch on one worker (rank 0 in-process): reseeds torch's global
    generator and returns the numpy Generator for batches and conditions. Every backend calls this at the start
    of every epoch, so a fit resumed from a checkpoint at epoch e draws exactly what an uninterrupted fit draws
    from epoch e + 1 on. Only the CPU generator is reseeded: `torch.manual_seed` would also walk the lazy CUDA,
    XPU and MTIA seeding paths (each formats a stack trace), ~2 ms per call, which on a small table (one step per
    epoch) was 6% of a fit; the CPU stream is the same."""
    import torch
    torch.default_generator.manual_seed(int(seed) * 100_003 + int(rank) * 1009 + int(epoch))
    return np.random.default_rng([int(seed), int(rank), int(epoch)])


class Budget:
    """Training budgets: process CPU seconds (contention-robust: a busy machine slows the wall clock, not the
    work done per CPU second) and/or wall seconds (not reproducible); None = unlimited."""

    def __init__(self, cpu_s: float | None, wall_s: float | None):
        self.cpu_s, self.wall_s = cpu_s, wall_s
        self.cpu0, self.wall0 = time.process_time(), time.perf_counter()

    def cpu_spent(self) -> bool:
        return self.cpu_s is not None and time.process_time() - self.cpu0 > self.cpu_s

    def cpu_share_past(self, share: float) -> bool:
        return self.cpu_s is not None and time.process_time() - self.cpu0 > share * self.cpu_s

    def wall_spent(self) -> bool:
        return self.wall_s is not None and time.perf_counter() - self.wall0 > self.wall_s
