"""Feeding a replay buffer from the Beam stream's `--format episodes` output (pipeline/stream.py): an
off-policy agent learns from a directory that a running `ganstream stream` keeps filling.

The stream writes Parquet files with `episode_id`, `step`, the observation columns and `done` (plus model
provenance columns), each renamed into place only when complete, so `EpisodeFeeder.poll()` reads every
new visible file exactly once and never a partial one. Episodes never straddle files (a shard or a
window holds whole sequences).

Because the series is exogenous (actions do not move it, see augment/rl_env.py), one recorded episode
yields transitions for whatever actions a behaviour policy picks: `episode_transitions` turns an episode
into (observation, action, reward, next_observation, truncated) arrays with the same window and reward
semantics as GeneratorEnv, in one vectorized pass. `reward_fn` is therefore called on batches:
`reward_fn(next_observations [N, window, F], actions [N]) -> [N]` — write it with numpy broadcasting
over the leading axis and the same function serves the env one step at a time.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ganstream.trainers.errors import ConfigError, DataError

NON_OBSERVATION = {"episode_id", "step", "done", "model_name", "model_version", "model_ref", "is_synthetic",
                   "series_id", "draw"}


@dataclass
class Episode:
    episode_id: int
    observations: np.ndarray  # [T, F] float32, in step order
    source: str               # the file it came from


def episodes_from_frame(df: pd.DataFrame, columns: list[str] | None = None, source: str = "") -> list[Episode]:
    """Episodes of an `--format episodes` table, observation columns in `columns` order (default: every
    column that is not an index/provenance column, in file order)."""
    if "episode_id" not in df.columns or "step" not in df.columns:
        raise DataError(f"{source or 'table'}: not an episodes table (needs episode_id and step columns; "
                        f"write it with `ganstream stream --format episodes`)")
    cols = columns or [c for c in df.columns if c not in NON_OBSERVATION]
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise DataError(f"{source or 'table'}: no observation column(s) {', '.join(missing)}")
    df = df.sort_values(["episode_id", "step"], kind="stable")
    values = df[cols].to_numpy(np.float32)
    ids = df["episode_id"].to_numpy()
    cuts = np.flatnonzero(ids[1:] != ids[:-1]) + 1
    return [Episode(int(chunk_ids[0]), chunk, source)
            for chunk_ids, chunk in zip(np.split(ids, cuts), np.split(values, cuts)) if len(chunk)]


@dataclass
class EpisodeFeeder:
    """Reads a stream sink's complete Parquet files, each once (hidden temp files are never read)."""
    sink: str | os.PathLike
    columns: list[str] | None = None
    seen: set[str] = field(default_factory=set)

    def poll(self) -> list[Episode]:
        sink = Path(self.sink)
        if not sink.is_dir():
            raise DataError(f"{sink}: no such stream sink directory")
        out = []
        for path in sorted(sink.rglob("*.parquet")):
            if path.name.startswith(".") or str(path) in self.seen:
                continue
            df = pd.read_parquet(path)
            if self.columns is None:  # fixed by the first file, so every episode has the same layout
                self.columns = [c for c in df.columns if c not in NON_OBSERVATION]
            out += episodes_from_frame(df, self.columns, source=path.name)
            self.seen.add(str(path))
        return out


def episode_transitions(observations: np.ndarray, window: int, policy: Callable[[np.ndarray], np.ndarray],
                        reward_fn: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> dict[str, np.ndarray]:
    """All transitions of one episode for the actions `policy(obs_batch) -> actions` picks."""
    T = len(observations)
    if T <= window:
        raise ConfigError(f"an episode of {T} steps has no transition with window={window}")
    windows = np.lib.stride_tricks.sliding_window_view(observations, window, axis=0)  # [T-w+1, F, w]
    windows = np.ascontiguousarray(windows.transpose(0, 2, 1))                        # [T-w+1, w, F]
    obs, nxt = windows[:-1], windows[1:]
    actions = np.asarray(policy(obs))
    rewards = np.asarray(reward_fn(nxt, actions), dtype=np.float32).reshape(len(obs))
    truncated = np.zeros(len(obs), bool)
    truncated[-1] = True
    return {"obs": obs, "action": actions, "reward": rewards, "next_obs": nxt, "truncated": truncated}


class ReplayBuffer:
    """A fixed-capacity ring buffer of transitions (numpy arrays), uniform sampling with a given Generator."""

    def __init__(self, capacity: int):
        if capacity < 1:
            raise ConfigError(f"capacity must be >= 1 (got {capacity})")
        self.capacity, self.size, self._next = int(capacity), 0, 0
        self._data: dict[str, np.ndarray] | None = None

    def __len__(self) -> int:
        return self.size

    def add(self, batch: dict[str, np.ndarray]) -> None:
        n = len(batch["reward"])
        if self._data is None:
            self._data = {k: np.zeros((self.capacity, *np.asarray(v).shape[1:]), np.asarray(v).dtype)
                          for k, v in batch.items()}
        if n > self.capacity:
            batch = {k: v[-self.capacity:] for k, v in batch.items()}
            n = self.capacity
        idx = (self._next + np.arange(n)) % self.capacity
        for k, v in batch.items():
            self._data[k][idx] = v
        self._next = (self._next + n) % self.capacity
        self.size = min(self.capacity, self.size + n)

    def sample(self, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        if self.size == 0:
            raise ConfigError("the replay buffer is empty")
        idx = rng.integers(0, self.size, size=n)
        return {k: v[idx] for k, v in self._data.items()}

    def arrays(self) -> dict[str, np.ndarray]:
        """Everything held, in no particular order (for batch learners)."""
        return {k: v[:self.size] for k, v in (self._data or {}).items()}


def fill_from_stream(buffer: ReplayBuffer, feeder: EpisodeFeeder, window: int, policy, reward_fn) -> int:
    """Add the transitions of every new episode in the sink; returns how many transitions were added."""
    added = 0
    for ep in feeder.poll():
        batch = episode_transitions(ep.observations, window, policy, reward_fn)
        buffer.add(batch)
        added += len(batch["reward"])
    return added
