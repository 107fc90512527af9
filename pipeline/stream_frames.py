"""Turning one planned shard (pipeline/stream_plan.py) into a DataFrame: whole batches from the model's
vectorized `sample` / `impute` (never a Python dict per row), real rows by positional slices.

`ShardMaker` is plain Python (no Beam) so that the same code runs inside a DoFn, in tests and in the
benchmark. It is built in the driver, pickled to the workers, and `setup()` there loads the model once and
the real table once (when the job has one).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ganstream.pipeline.stream_model import ModelHandle, ModelId
from ganstream.pipeline.stream_plan import EPISODES, IMPUTE, REAL, SYNTHETIC, Shard, derive_seed
from ganstream.pipeline.stream_sink import SYNTHETIC_COLUMN, VERSION_COLUMN, table_schema, to_arrow


@dataclass
class StreamJob:
    model: ModelId
    tracking_uri: str | None
    seed: int = 0
    missing: str = "keep"              # synthetic rows: realistic holes (keep) or complete (fill)
    real_path: str | None = None       # --mix / --impute: the real table
    missing_tokens: tuple = ()
    mark_synthetic: bool = False       # add the is_synthetic column (--mix)
    episodes: bool = False             # --format episodes (time-series models)
    follow_alias: bool = False         # unbounded streams follow models:/NAME@ALIAS
    swap_check_s: float = 10.0
    threads: int | None = None

    def manifest(self, **extra) -> dict:
        return {"model": self.model.ref, "model_name": self.model.name, "seed": self.seed,
                "missing": self.missing, "real": self.real_path, **extra}


def permutation(n: int, seed: int) -> np.ndarray:
    """The order in which --mix takes real rows (a seeded shuffle, so shards take disjoint rows)."""
    return np.random.default_rng(derive_seed(seed, "real-order")).permutation(n)


class ShardMaker:
    def __init__(self, job: StreamJob):
        self.job = job
        self.handle: ModelHandle | None = None
        self.real: pd.DataFrame | None = None
        self.order: np.ndarray | None = None
        self.schema = None

    def setup(self) -> "ShardMaker":
        from ganstream.trainers.runtime import set_threads
        set_threads(self.job.threads)
        self.handle = ModelHandle(self.job.model, self.job.tracking_uri, self.job.follow_alias, self.job.swap_check_s)
        self.handle.load()
        self.schema = table_schema(self.handle.model) if self.handle.model.kind == "tabular" else None
        if self.job.real_path:
            from ganstream.trainers.table_io import read_table
            real = read_table(self.job.real_path, self.job.missing_tokens)
            names = self.handle.model.encoder.schema.names
            self.real = real[names].reset_index(drop=True)
            self.order = permutation(len(self.real), self.job.seed)
        return self

    def frame(self, shard: Shard) -> tuple[pd.DataFrame, str]:
        """The rows of `shard` and the model version that made them."""
        model, version = self.handle.current()
        frames, synthetic = [], []
        for j, part in enumerate(shard.parts):
            seed = derive_seed(shard.seed, shard.index, j)
            if part.kind == SYNTHETIC:
                condition = {part.condition[0]: part.condition[1]} if part.condition else None
                df = model.sample(part.n, seed=seed, condition=condition, missing=self.job.missing)
            elif part.kind == REAL:
                df = self.real.iloc[self.order[part.start:part.start + part.n]]
            elif part.kind == IMPUTE:
                df = model.impute(self.real.iloc[part.start:part.start + part.n].reset_index(drop=True),
                                  draws=1, seed=seed)[0]
            elif part.kind == EPISODES:
                df = episodes(model.sample(part.n, seed=seed), first_id=part.start)
            else:
                raise ValueError(f"unknown part kind {part.kind!r}")
            frames.append(df.reset_index(drop=True))
            synthetic.append(np.full(len(df), part.kind == SYNTHETIC))
        out = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
        if self.job.mark_synthetic:
            out[SYNTHETIC_COLUMN] = np.concatenate(synthetic)
            order = np.random.default_rng(derive_seed(shard.seed, shard.index, "order")).permutation(len(out))
            out = out.iloc[order].reset_index(drop=True)  # real and synthetic rows interleaved
        out[VERSION_COLUMN] = version
        return out, version

    def table(self, plan: Shard, **metadata):
        """The shard as an Arrow table with the model and job recorded in its metadata."""
        df, version = self.frame(plan)
        meta = {"model_name": self.job.model.name, "model_version": version, "model_ref": self.job.model.ref,
                "seed": plan.seed, "rows": len(df), **metadata}
        return to_arrow(df, self.schema, meta)


def episodes(long: pd.DataFrame, first_id: int) -> pd.DataFrame:
    """A time-series generator's long table (series_id, step, features) as offline-RL episodes:
    episode_id (numbered from `first_id` so shards never collide), step, the observation columns, and
    `done` on each episode's last step."""
    codes, _ = pd.factorize(long["series_id"], sort=True)
    out = long.drop(columns=["series_id"]).copy()
    out.insert(0, "episode_id", codes.astype(np.int64) + int(first_id))
    out = out.sort_values(["episode_id", "step"], kind="stable").reset_index(drop=True)
    last = out["episode_id"].to_numpy()
    out["done"] = np.append(last[1:] != last[:-1], True)
    return out
