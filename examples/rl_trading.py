"""Does an agent trained on GAN-generated market episodes do as well on unseen real data as the same agent
trained on the real history it was generated from?

Data: data/stock_data.csv (daily Google OHLCV, TimeGAN's "Stocks", bundled: data/README.md), as three
stationary features per day: log return of Close, log(High/Low) (the day's range) and the log change of
Volume. The first 75% of days train, the last 25% are held out.

Task (an exposure choice under risk aversion, where volatility clustering is the learnable signal):
each day the agent picks an exposure e in {0, 0.5, 1} for the next day; reward = e*r - LAMBDA*(e*r)^2,
r the next day's log return. A good agent cuts exposure when recent ranges/returns say tomorrow is risky.

Agent (small on purpose): a linear Q-function per action over hand-made features of the last WINDOW days,
fit by ridge regression on transitions collected with a uniformly random behaviour policy. The market is
exogenous (actions do not move prices), so the greedy policy of this one-step Q is the optimal policy of
the discounted problem too. Arms, same agent and same number of transitions:
  real          transitions from the real training days (24-day episodes, every start day)
  synthetic     transitions from a GeneratorEnv over the time-series GAN fit on the same training days
  continuation  a GeneratorEnv(history=...) that continues real training windows (SEQ_LEN days each, at
                every SEQ_LEN-th start day) by SEQ_LEN - WINDOW generated days
  both          real + synthetic together
Evaluated greedily on every 24-day episode of the held-out days through ArrayEpisodeEnv (same step and
reward semantics). Baselines: always 0, always 0.5, always 1. Repeated over --fits seeds: seed k fits the
GAN with seed k and draws behaviour actions and episodes with seed k, so every row is one independent
GAN fit. Writes benchmarks/results/rl_trading.json.

    .venv/bin/python examples/rl_trading.py [--epochs 20] [--fits 5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
STOCK = REPO / "data" / "stock_data.csv"
WINDOW, SEQ_LEN, LAMBDA = 5, 24, 2.0
EXPOSURE = np.array([0.0, 0.5, 1.0])
FEATURES = ["ret", "range", "dvol"]


def reward_fn(obs, action):
    """e*r - LAMBDA*(e*r)^2 with r the newest day's return; works on one obs or a batch (numpy broadcasting)."""
    r = np.asarray(obs)[..., -1, 0]
    pnl = EXPOSURE[np.asarray(action)] * r
    return pnl - LAMBDA * pnl ** 2


def phi(obs: np.ndarray) -> np.ndarray:
    """Features of [N, WINDOW, 3] observations: level, last day, |returns|, squared returns, ranges."""
    r, rng, dv = obs[..., 0], obs[..., 1], obs[..., 2]
    return np.concatenate([np.ones((len(obs), 1)), r[:, -1:], np.abs(r), r ** 2 * 100, rng, rng.mean(1, keepdims=True),
                           dv[:, -1:]], axis=1)


class LinearQ:
    def __init__(self, ridge: float = 1e-3):
        self.ridge, self.theta = ridge, None

    def fit(self, obs, actions, rewards):
        x = phi(obs)
        scale = np.abs(x).max(0) + 1e-12
        self.scale = scale
        x = x / scale
        self.theta = np.stack([np.linalg.solve(x[actions == a].T @ x[actions == a] + self.ridge * np.eye(x.shape[1]),
                                               x[actions == a].T @ rewards[actions == a]) for a in range(3)])
        return self

    def act(self, obs):
        obs = np.asarray(obs)
        single = obs.ndim == 2
        q = (phi(obs[None] if single else obs) / self.scale) @ self.theta.T
        a = q.argmax(1)
        return int(a[0]) if single else a


def features(df: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame({"ret": np.log(df["Close"]).diff(), "range": np.log(df["High"] / df["Low"]),
                        "dvol": np.log(df["Volume"]).diff()})
    return out.iloc[1:].reset_index(drop=True)


def windows(values: np.ndarray, length: int) -> list[np.ndarray]:
    return [values[i:i + length] for i in range(len(values) - length + 1)]


def collect(env, n_transitions: int, rng: np.random.Generator, seed: int):
    """Random-behaviour transitions from a Gymnasium env (reset/step: the same loop any agent uses)."""
    obs_l, act_l, rew_l = [], [], []
    obs, _ = env.reset(seed=seed)
    while len(rew_l) < n_transitions:
        a = int(rng.integers(3))
        nxt, r, term, trunc, _ = env.step(a)
        obs_l.append(obs); act_l.append(a); rew_l.append(r)
        obs = env.reset()[0] if term or trunc else nxt
    return np.stack(obs_l), np.array(act_l), np.array(rew_l)


def evaluate(env, policy, n_episodes: int) -> dict:
    rewards, exposure = [], []
    for k in range(n_episodes):
        obs, _ = env.reset(seed=0 if k == 0 else None)
        done = False
        while not done:
            a = policy(obs)
            obs, r, term, trunc, _ = env.step(a)
            rewards.append(r); exposure.append(EXPOSURE[a])
            done = term or trunc
    return {"reward_bps": float(np.mean(rewards) * 1e4), "mean_exposure": float(np.mean(exposure)),
            "steps": len(rewards)}


def transitions_of(episodes, rng):
    """Random-behaviour transitions of given [T, F] episodes (the real arm)."""
    from ganstream.augment.replay import episode_transitions
    parts = [episode_transitions(ep, WINDOW, lambda o: rng.integers(3, size=len(o)), reward_fn) for ep in episodes]
    return tuple(np.concatenate([t[k] for t in parts]) for k in ("obs", "action", "reward"))


def history_windows(train: pd.DataFrame) -> pd.DataFrame:
    """Real training windows as separate series (id column `window`): the histories the continuation arm extends."""
    starts = range(0, len(train) - SEQ_LEN + 1, SEQ_LEN)
    return pd.concat([train.iloc[s:s + SEQ_LEN].assign(window=k) for k, s in enumerate(starts)], ignore_index=True)


def run_fit(k: int, train: pd.DataFrame, real_train, history: pd.DataFrame, test_env, n_test: int, args) -> dict:
    """One GAN fit (seed k) and the four arms' held-out rewards."""
    import gymnasium as gym
    from ganstream.augment.rl_env import GeneratorEnv
    from ganstream.trainers.timeseries.model import TimeSeriesGAN
    t0 = time.perf_counter()
    gan = TimeSeriesGAN(seq_len=SEQ_LEN, epochs=args.epochs, seed=k, id_col="window").fit(train.assign(window=0))
    fit_s = time.perf_counter() - t0
    actions = gym.spaces.Discrete(3)
    rng = np.random.default_rng(k)
    real = transitions_of(real_train, rng)
    n = len(real[2])
    synthetic = collect(GeneratorEnv(gan, reward_fn, actions, window=WINDOW, batch=512), n, rng, k)
    continued = collect(GeneratorEnv(gan, reward_fn, actions, window=WINDOW, history=history,
                                     horizon=SEQ_LEN - WINDOW, batch=4 * history["window"].nunique()), n, rng, k)
    arms = {"real": real, "synthetic": synthetic, "continuation": continued,
            "both": tuple(np.concatenate([a, b]) for a, b in zip(real, synthetic))}
    out = {"fit_seed": k, "gan_fit_s": fit_s, "transitions_per_arm": n,
           "kept_state": gan.training.get("held_out", {}).get("best"),  # keep-best: the state the fit kept
           "synthetic_ret_std": float(synthetic[0][:, -1, 0].std()),
           "synthetic_range_mean": float(synthetic[0][:, -1, 1].mean())}
    for name, (o, a, r) in arms.items():
        out[name] = evaluate(test_env, LinearQ().fit(o, a, r).act, n_test)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, default=20, help="time-series GAN epochs per fit (default 20)")
    ap.add_argument("--fits", type=int, default=5, help="independent GAN fits, seeds 0..N-1 (default 5)")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "rl_trading.json"))
    args = ap.parse_args()
    os.environ.setdefault("GANSTREAM_THREADS", "1")
    import gymnasium as gym
    import torch
    torch.set_num_threads(int(os.environ["GANSTREAM_THREADS"]))
    from ganstream.augment.rl_env import ArrayEpisodeEnv

    t_start = time.perf_counter()
    data = features(pd.read_csv(STOCK))
    split = int(len(data) * 0.75)
    train, test = data.iloc[:split].reset_index(drop=True), data.iloc[split:].reset_index(drop=True)
    real_train = windows(train.to_numpy(np.float32), SEQ_LEN)
    real_test = windows(test.to_numpy(np.float32), SEQ_LEN)
    test_env = ArrayEpisodeEnv(real_test, reward_fn, gym.spaces.Discrete(3), window=WINDOW, features=FEATURES)
    history = history_windows(train)  # the same real windows for every fit
    arms = ("real", "synthetic", "continuation", "both")
    print(f"{'fit seed':<9}" + "".join(f"{a + ' (bps)':>20}" for a in arms) + f"{'fit s':>8}", flush=True)
    fits = []
    for k in range(args.fits):
        row = run_fit(k, train, real_train, history, test_env, len(real_test), args)
        fits.append(row)
        kept = row["kept_state"] or {}
        print(f"{k:<9}" + "".join(f"{row[a]['reward_bps']:>+20.3f}" for a in arms) + f"{row['gan_fit_s']:>8.1f}"
              + f"   kept: epoch {kept.get('epoch', '?')}", flush=True)
    baselines = {f"always {EXPOSURE[a]:g}": evaluate(test_env, lambda o, a=a: a, len(real_test)) for a in range(3)}

    def agg(name):
        v = np.array([f[name]["reward_bps"] for f in fits])
        return {"reward_bps_mean": float(v.mean()), "reward_bps_std": float(v.std()),
                "mean_exposure": float(np.mean([f[name]["mean_exposure"] for f in fits]))}
    result = {
        "date": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "threads": torch.get_num_threads(), "data": "data/stock_data.csv", "train_days": len(train),
        "test_days": len(test), "window": WINDOW, "seq_len": SEQ_LEN, "lambda": LAMBDA, "gan_epochs": args.epochs,
        "test_episodes": len(real_test), "fits": fits, "arms": {a: agg(a) for a in arms}, "baselines": baselines,
        "real_train_ret_std": float(train["ret"].std()), "real_train_range_mean": float(train["range"].mean()),
        "total_s": time.perf_counter() - t_start,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(f"\nheld-out real episodes: {len(real_test)} x {SEQ_LEN - WINDOW} steps; reward per step in bps (1e-4), "
          f"mean +- std over {args.fits} GAN fits")
    for name, a in result["arms"].items():
        wins = sum(f[name]["reward_bps"] > f["real"]["reward_bps"] for f in fits)
        vs = "" if name == "real" else f"   beats real on {wins}/{len(fits)} fits"
        print(f"{'trained on ' + name:<26}{a['reward_bps_mean']:>+8.3f} +- {a['reward_bps_std']:.3f}   exposure "
              f"{a['mean_exposure']:.2f}{vs}")
    for name, b in baselines.items():
        print(f"{name:<26}{b['reward_bps']:>+8.3f}            exposure {b['mean_exposure']:.2f}")
    print(f"total {result['total_s']:.0f}s; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
