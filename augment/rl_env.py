"""A Gymnasium environment whose episodes come from a time-series generator, so an agent can train on as
many plausible trajectories as it needs instead of the few that history gave.

`reset()` serves a synthetic episode drawn by the generator's `sample` — or, given real histories, a
continuation of one of them drawn by the generator's `extend` (the episode starts from the real past and
runs into a generated future). `step(action)` advances one step; the reward is the user's
`reward_fn(observation, action)`, called with the observation *after* the step (it holds the value the
action was exposed to) and the action taken. The series is exogenous: actions do not change it, which is
what trading, inventory control against demand, or energy dispatch against load look like.

Observations are the last `window` steps of the feature columns, shape (window, n_features), float32.
An episode of T generated steps gives T - window steps; its end is a time limit of the data, not a failure,
so it is reported as `truncated` (bootstrapping agents should keep bootstrapping there).

Efficiency: episodes are generated `batch` at a time in one vectorized generator call and served one per
reset. Seeding: `reset(seed=s)` re-seeds the env's np_random and drops the batch, so the same seed gives the
same episodes (each batch's generator seed is drawn from np_random).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import pandas as pd

from ganstream.trainers.errors import ConfigError, ModelError

RewardFn = Callable[[np.ndarray, Any], float]
INDEX_COLUMNS = ("series_id", "draw", "step")


def load_generator(model, tracking_uri: str | None = None):
    """A fitted time-series model from an object, a model directory, or models:/ / runs:/ URI."""
    if not isinstance(model, (str, os.PathLike)):
        loaded = model
    else:
        from ganstream.deploy.models import load
        loaded = load(model, tracking_uri)
    if getattr(loaded, "kind", None) != "timeseries":
        raise ModelError(f"{model}: a {getattr(loaded, 'kind', '?')} model; the RL env needs a time-series generator")
    return loaded


def _episodes_from_long(long: pd.DataFrame, features: list[str], keys: list[str]) -> list[np.ndarray]:
    """[T, F] float32 arrays, one per group of `keys`, in step order (a long frame to episodes, no row loop)."""
    long = long.sort_values([*keys, "step"], kind="stable")
    values = long[features].to_numpy(np.float32)
    group = long.groupby(keys, sort=False).ngroup().to_numpy()
    cuts = np.flatnonzero(np.diff(group)) + 1
    return np.split(values, cuts)


class GeneratorEnv(gym.Env):
    """Episodes from a time-series generator; reward from a user function. See the module docstring.

    model: a fitted time-series generator, a model directory, or `models:/NAME@ALIAS` (with tracking_uri).
    reward_fn: fn(observation, action) -> float.
    action_space: any gymnasium space (e.g. Discrete(3)).
    window: steps of context in each observation (>= 1).
    length: steps per synthetic episode (default: the generator's --seq-len); must exceed `window`.
    history: optional real histories (the model's training layout: id/time columns and features);
        each reset then continues a random one of them by `horizon` steps. `reset(options={"history": df})`
        continues exactly that history for one episode.
    batch: episodes generated per generator call.
    """

    metadata = {"render_modes": []}

    def __init__(self, model, reward_fn: RewardFn, action_space: gym.Space, window: int = 1, length: int | None = None,
                 history: pd.DataFrame | None = None, horizon: int | None = None, batch: int = 64,
                 tracking_uri: str | None = None):
        self.model = load_generator(model, tracking_uri)
        self.features = list(self.model.layout.features)
        self.reward_fn = reward_fn
        self.action_space = action_space
        self.window = int(window)
        self.length = int(length or self.model.config.seq_len)
        self.history = history
        self.horizon = int(horizon or self.length)
        self.batch = int(batch)
        if self.window < 1:
            raise ConfigError(f"window must be >= 1 (got {window})")
        if self.batch < 1:
            raise ConfigError(f"batch must be >= 1 (got {batch})")
        if history is None and self.length <= self.window:
            raise ConfigError(f"length {self.length} must exceed window {self.window} (an episode needs a step)")
        if history is not None:
            missing = [c for c in self.features if c not in history.columns]
            if missing:
                raise ConfigError(f"history lacks the model's feature column(s) {', '.join(missing)}")
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, shape=(self.window, len(self.features)),
                                                dtype=np.float32)
        self._queue: list[np.ndarray] = []
        self._episode: np.ndarray | None = None
        self._t = 0

    # ------------------------------------------------------------------ episode sources
    def _draw_seed(self) -> int:
        return int(self.np_random.integers(0, 2**31 - 1))

    def _synthetic_batch(self) -> list[np.ndarray]:
        long = self.model.sample(self.batch, seed=self._draw_seed(), length=self.length)
        return _episodes_from_long(long, self.features, ["series_id"])

    def _continuations(self, history: pd.DataFrame, draws: int) -> list[np.ndarray]:
        """Each history series' last `window` real steps followed by `draws` generated futures of it."""
        future = self.model.extend(history, horizon=self.horizon, draws=draws, seed=self._draw_seed())
        id_col, time_col = self.model.layout.id_col, self.model.layout.time_col
        hist = history.copy()
        if id_col is None:
            hist["series_id"] = 0
            id_col = "series_id"
        if time_col is not None:
            hist = hist.sort_values([id_col, time_col], kind="stable")
        tails = {sid: g[self.features].to_numpy(np.float32)[-self.window:] for sid, g in hist.groupby(id_col, sort=False)}
        short = [sid for sid, t in tails.items() if len(t) < self.window]
        if short:
            raise ConfigError(f"history series {short[0]!r} has fewer than window={self.window} steps")
        futures = _episodes_from_long(future, self.features, ["series_id", "draw"])
        keys = future.drop_duplicates(["series_id", "draw"]).sort_values(["series_id", "draw"], kind="stable")["series_id"]
        return [np.concatenate([tails[sid], f]) for sid, f in zip(keys, futures)]

    def _next_episode(self, options: dict | None) -> np.ndarray:
        if options and options.get("history") is not None:
            return self._continuations(options["history"], draws=1)[0]
        if not self._queue:
            batch = (self._continuations(self.history, draws=max(1, self.batch // max(1, self._n_series())))
                     if self.history is not None else self._synthetic_batch())
            order = self.np_random.permutation(len(batch))
            self._queue = [batch[i] for i in order]
        return self._queue.pop()

    def _n_series(self) -> int:
        id_col = self.model.layout.id_col
        return int(self.history[id_col].nunique()) if id_col and id_col in self.history.columns else 1

    # ---------------------------------------------------------------------- gym API
    def _observation(self) -> np.ndarray:
        return self._episode[self._t - self.window + 1:self._t + 1]

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        if seed is not None:
            self._queue = []
        self._episode = self._next_episode(options)
        self._t = self.window - 1
        return self._observation(), {"episode_length": len(self._episode) - self.window}

    def step(self, action):
        if self._episode is None or self._t >= len(self._episode) - 1:
            raise RuntimeError("step() called before reset() or after the episode ended")
        self._t += 1
        obs = self._observation()
        reward = float(self.reward_fn(obs, action))
        truncated = self._t >= len(self._episode) - 1
        return obs, reward, False, truncated, {"t": self._t}


class ArrayEpisodeEnv(GeneratorEnv):
    """The same env over given episodes ([T, F] arrays, e.g. held-out real windows), served in order and
    then cyclically: evaluate an agent trained in a GeneratorEnv on real data with identical semantics."""

    def __init__(self, episodes: list[np.ndarray], reward_fn: RewardFn, action_space: gym.Space, window: int = 1,
                 features: list[str] | None = None):
        self.episodes = [np.asarray(e, np.float32) for e in episodes]
        if not self.episodes or any(len(e) <= window for e in self.episodes):
            raise ConfigError(f"every episode needs more than window={window} steps")
        n_features = self.episodes[0].shape[1]
        self.features = features or [f"x{j}" for j in range(n_features)]
        self.reward_fn, self.action_space, self.window = reward_fn, action_space, int(window)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, shape=(self.window, n_features), dtype=np.float32)
        self._next, self._episode, self._t = 0, None, 0

    def _next_episode(self, options):
        episode = self.episodes[self._next % len(self.episodes)]
        self._next += 1
        return episode

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        if seed is not None:
            self._next = 0
        return super().reset(seed=seed, options=options)
