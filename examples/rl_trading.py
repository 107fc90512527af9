"""Does an agent trained on GAN-generated market episodes do as well on unseen real data as the same agent
trained on the real history it was generated from?

Data: ../shared/datasets/timegan/stock_data.csv (daily Google OHLCV, TimeGAN's "Stocks"), as three
stationary features per day: log return of Close, log(High/Low) (the day's range) and the log change of
Volume. The first 75% of days train, the last 25% are held out.

Task (an exposure choice under risk aversion, where volatility clustering is the learnable signal):
each day the agent picks an exposure e in {0, 0.5, 1} for the next day; reward = e*r - LAMBDA*(e*r)^2,
r the next day's log return. A good agent cuts exposure when recent ranges/returns say tomorrow is risky.

Agent (small on purpose): a linear Q-function per action over hand-made features of the last WINDOW days,
fit by ridge regression on transitions collected with a uniformly random behaviour policy. The market is
exogenous (actions do not move prices), so the greedy policy of this one-step Q is the optimal policy of
the discounted problem too. Arms, same agent and same number of transitions:
  real       transitions from the real training days (24-day episodes, every start day)
  synthetic  transitions from a GeneratorEnv over the time-series GAN fit on the same training days
  both       the two together
Evaluated greedily on every 24-day episode of the held-out days through ArrayEpisodeEnv (same step and
reward semantics). Baselines: always 0, always 0.5, always 1. Repeated over seeds (behaviour actions and
synthetic draws; the GAN is fit once). Writes benchmarks/results/rl_trading.json.

    .venv/bin/python examples/rl_trading.py [--epochs 20] [--seeds 5]
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
STOCK = REPO.parent / "shared" / "datasets" / "timegan" / "stock_data.csv"
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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "rl_trading.json"))
    args = ap.parse_args()
    os.environ.setdefault("GANSTREAM_THREADS", "1")
    import gymnasium as gym
    import torch
    torch.set_num_threads(int(os.environ["GANSTREAM_THREADS"]))
    from ganstream.augment.replay import episode_transitions
    from ganstream.augment.rl_env import ArrayEpisodeEnv, GeneratorEnv
    from ganstream.trainers.timeseries.model import TimeSeriesGAN

    t_start = time.perf_counter()
    data = features(pd.read_csv(STOCK))
    split = int(len(data) * 0.75)
    train, test = data.iloc[:split].reset_index(drop=True), data.iloc[split:].reset_index(drop=True)
    t0 = time.perf_counter()
    gan = TimeSeriesGAN(seq_len=SEQ_LEN, epochs=args.epochs, seed=0).fit(train)
    fit_s = time.perf_counter() - t0
    print(f"GAN fit: {len(train)} training days, {args.epochs} epochs, {fit_s:.1f}s", flush=True)

    real_train = windows(train.to_numpy(np.float32), SEQ_LEN)
    real_test = windows(test.to_numpy(np.float32), SEQ_LEN)
    actions = gym.spaces.Discrete(3)
    n_transitions = len(real_train) * (SEQ_LEN - WINDOW)
    test_env = ArrayEpisodeEnv(real_test, reward_fn, actions, window=WINDOW, features=FEATURES)
    rows: dict[str, list[dict]] = {"real": [], "synthetic": [], "both": []}
    synth_stats = []
    for seed in range(args.seeds):
        rng = np.random.default_rng(seed)
        real = [episode_transitions(ep, WINDOW, lambda o: rng.integers(3, size=len(o)), reward_fn) for ep in real_train]
        r_obs = np.concatenate([t["obs"] for t in real]); r_act = np.concatenate([t["action"] for t in real])
        r_rew = np.concatenate([t["reward"] for t in real])
        t0 = time.perf_counter()
        env = GeneratorEnv(gan, reward_fn, actions, window=WINDOW, batch=512)
        s_obs, s_act, s_rew = collect(env, n_transitions, rng, seed)
        synth_stats.append({"collect_s": time.perf_counter() - t0, "ret_std": float(s_obs[:, -1, 0].std()),
                            "range_mean": float(s_obs[:, -1, 1].mean())})
        arms = {"real": (r_obs, r_act, r_rew), "synthetic": (s_obs, s_act, s_rew),
                "both": (np.concatenate([r_obs, s_obs]), np.concatenate([r_act, s_act]), np.concatenate([r_rew, s_rew]))}
        for name, (o, a, r) in arms.items():
            agent = LinearQ().fit(o, a, r)
            rows[name].append(evaluate(test_env, agent.act, len(real_test)))
        print(f"seed {seed}: " + "  ".join(f"{k} {v[-1]['reward_bps']:+.3f}bps" for k, v in rows.items()), flush=True)
    baselines = {f"always {EXPOSURE[a]:g}": evaluate(test_env, lambda o, a=a: a, len(real_test)) for a in range(3)}

    def agg(runs):
        v = np.array([r["reward_bps"] for r in runs])
        return {"reward_bps_mean": float(v.mean()), "reward_bps_std": float(v.std()),
                "mean_exposure": float(np.mean([r["mean_exposure"] for r in runs])), "runs": runs}
    result = {
        "date": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()}, {os.cpu_count()} cores (shared)",
        "threads": torch.get_num_threads(), "data": str(STOCK), "train_days": len(train), "test_days": len(test),
        "window": WINDOW, "seq_len": SEQ_LEN, "lambda": LAMBDA, "gan_epochs": args.epochs, "gan_fit_s": fit_s,
        "transitions_per_arm": n_transitions, "test_episodes": len(real_test), "seeds": args.seeds,
        "real_train_ret_std": float(train["ret"].std()), "real_train_range_mean": float(train["range"].mean()),
        "synthetic_ret_std": float(np.mean([s["ret_std"] for s in synth_stats])),
        "synthetic_range_mean": float(np.mean([s["range_mean"] for s in synth_stats])),
        "arms": {k: agg(v) for k, v in rows.items()}, "baselines": baselines,
        "total_s": time.perf_counter() - t_start,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(f"\nheld-out real episodes: {len(real_test)} x {SEQ_LEN - WINDOW} steps; reward per step in bps (1e-4), "
          f"mean +- std over {args.seeds} seeds")
    print(f"{'agent / policy':<22}{'reward (bps)':>16}{'exposure':>10}")
    for name, a in result["arms"].items():
        print(f"{'trained on ' + name:<22}{a['reward_bps_mean']:>+10.3f} +- {a['reward_bps_std']:.3f}{a['mean_exposure']:>10.2f}")
    for name, b in baselines.items():
        print(f"{name:<22}{b['reward_bps']:>+10.3f}{'':>7}{b['mean_exposure']:>10.2f}")
    print(f"\nreturn std real {result['real_train_ret_std']:.4f} vs synthetic {result['synthetic_ret_std']:.4f}; "
          f"mean range real {result['real_train_range_mean']:.4f} vs synthetic {result['synthetic_range_mean']:.4f}")
    print(f"total {result['total_s']:.0f}s (GAN fit {fit_s:.0f}s); wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
