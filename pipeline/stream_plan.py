"""What each shard of a stream holds, decided up front in the driver (pure arithmetic, no model, no Beam).

A job is a list of *streams* (all synthetic rows; or real rows + synthetic rows of each class; or real rows
to impute; or sequences) with exact totals. Every stream is split over the K shards by cumulative floors,
so the shard counts add up to exactly the totals, whatever K is. A shard's randomness comes only from
`derive_seed(seed, shard, part)`, so a shard is the same bytes whichever worker makes it, whenever, and a
re-run of one shard (after a kill) reproduces it exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ganstream.trainers.runtime import derive_seed  # noqa: F401  (re-exported: the stream's seeds)

IN_PROCESS_RUNNERS = ("FnApiRunner", "DirectRunner", "BundleBasedDirectRunner", "SwitchingDirectRunner")

# part kinds
SYNTHETIC = "synthetic"  # n rows from the generator (optionally conditioned on one class)
REAL = "real"            # rows [start, stop) of the seeded permutation of the real table
IMPUTE = "impute"        # rows [start, stop) of the real table (in order), holes filled by the model
EPISODES = "episodes"    # n sequences from a time-series generator, numbered from `start`


@dataclass(frozen=True)
class Part:
    kind: str
    n: int
    start: int = 0                 # REAL / IMPUTE / EPISODES: offset of the first row (sequence) of this part
    condition: tuple | None = None  # SYNTHETIC: (column, value)


@dataclass(frozen=True)
class Shard:
    index: int
    count: int                  # number of shards of the job (file name: shard-IIIII-of-KKKKK)
    seed: int                   # the job seed; parts derive theirs from (seed, index, part number)
    parts: tuple[Part, ...] = field(default_factory=tuple)

    @property
    def rows(self) -> int:
        return sum(p.n for p in self.parts)

    @property
    def name(self) -> str:
        return f"shard-{self.index:05d}-of-{self.count:05d}.parquet"


@dataclass(frozen=True)
class StreamSpec:
    """One stream of the job: `total` items of one kind, spread over all shards."""
    kind: str
    total: int
    condition: tuple | None = None


def split_even(total: int, k: int) -> list[int]:
    """`total` split into k counts that differ by at most one and add up to `total` exactly."""
    return [total * (i + 1) // k - total * i // k for i in range(k)]


def plan_shards(streams: list[StreamSpec], seed: int, shard_rows: int) -> list[Shard]:
    total = sum(s.total for s in streams)
    k = max(1, -(-total // shard_rows))
    per_stream = [split_even(s.total, k) for s in streams]
    offsets = [0] * len(streams)
    shards = []
    for i in range(k):
        parts = []
        for j, s in enumerate(streams):
            n = per_stream[j][i]
            if n:
                parts.append(Part(s.kind, n, start=offsets[j], condition=s.condition))
            offsets[j] += n
        shards.append(Shard(i, k, seed, tuple(parts)))
    return shards


def balanced_counts(classes: list, rows: int, have: dict | None = None) -> dict:
    """Synthetic rows per class. Without `have`: `rows` split evenly over the classes. With `have` (real
    class counts): enough rows of each minority class to reach the majority count."""
    if have is None:
        return dict(zip(classes, split_even(rows, len(classes))))
    from ganstream.augment.lift import top_up_counts
    counts = top_up_counts({**{c: 0 for c in classes}, **have})
    return {c: counts[c] for c in classes if c in counts}


def window_rows(rate: float, window_s: float, k: int, duration: float | None) -> int:
    """Rows of window k (covering [k*w, (k+1)*w) seconds after the start, clipped at the duration), by
    cumulative floors so that any run of windows holds floor(rate * elapsed) rows in total."""
    start = k * window_s
    end = (k + 1) * window_s if duration is None else min((k + 1) * window_s, duration)
    return max(0, int(rate * end + 1e-9) - int(rate * start + 1e-9))
