"""The Gymnasium env over a real (tiny) fitted time-series GAN, and the replay feeder over a real Beam
`--format episodes` stream: check_env, seeding, step/reward semantics, continuation of a real history,
loading from a model dir and from models:/, bad input."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import gymnasium as gym  # noqa: E402  (a dependency of ganstream)
from gymnasium.utils.env_checker import check_env  # noqa: E402

from ganstream.augment.replay import EpisodeFeeder, ReplayBuffer, episode_transitions, fill_from_stream  # noqa: E402
from ganstream.augment.rl_env import ArrayEpisodeEnv, GeneratorEnv  # noqa: E402
from ganstream.trainers.errors import ConfigError, DataError, ModelError  # noqa: E402
from mlflow_db import sqlite_uri

STOCK = Path(__file__).resolve().parents[1] / "data" / "stock_data.csv"  # bundled (data/README.md)
SEQ_LEN = 12


@pytest.fixture(scope="module")
def stock():
    return pd.read_csv(STOCK).iloc[:300][["Open", "Close", "Volume"]]


@pytest.fixture(scope="module")
def ts_model_dir(stock, tmp_path_factory):
    """A 2-epoch fit without the keep-best check: the check's post-hoc classifiers took ~24 of the fit's ~25 s,
    and no test here is about which state it keeps (test_timeseries_calibration.py is): the env runs on the
    trained generator, with its continuations calibrated as by default."""
    from ganstream.trainers.timeseries.model import TimeSeriesGAN
    out = tmp_path_factory.mktemp("rl") / "ts_model"
    TimeSeriesGAN(seq_len=SEQ_LEN, epochs=2, batch_size=64, keep_best=False, seed=0).fit(stock).save(out)
    return out


def reward_fn(obs, action):
    """Exposure times the last step's relative change of Close (works on one obs or a batch)."""
    obs = np.asarray(obs)
    change = obs[..., -1, 1] / obs[..., -2, 1] - 1.0
    return (np.asarray(action) - 1.0) * change


def make_env(model, **kw):
    return GeneratorEnv(model, reward_fn, gym.spaces.Discrete(3), window=2, **kw)


def rollout(env, seed, actions):
    obs, _ = env.reset(seed=seed)
    trace = [obs]
    rewards = []
    for a in actions:
        obs, r, term, trunc, _ = env.step(a)
        trace.append(obs)
        rewards.append(r)
        if term or trunc:
            break
    return np.stack(trace), np.array(rewards), term, trunc


def test_env_passes_check_env(ts_model_dir):
    env = make_env(ts_model_dir)
    check_env(env, skip_render_check=True)
    check_env(make_env(ts_model_dir, batch=1), skip_render_check=True)


def test_episode_shape_reward_and_truncation(ts_model_dir):
    env = make_env(ts_model_dir)
    obs, info = env.reset(seed=0)
    assert obs.shape == (2, 3) and obs.dtype == np.float32 and info["episode_length"] == SEQ_LEN - 2
    trace, rewards, term, trunc = rollout(env, 0, [2] * 100)
    assert len(rewards) == SEQ_LEN - 2 and trunc and not term
    assert np.allclose(trace[1:, 0], trace[:-1, 1])  # the window slides by one step
    assert np.allclose(rewards, [reward_fn(o, 2) for o in trace[1:]], rtol=1e-6)
    with pytest.raises(RuntimeError):
        env.step(0)


def test_same_seed_same_episodes_other_seed_others(ts_model_dir):
    env = make_env(ts_model_dir, batch=4)
    a = [rollout(env, 7, [0, 1, 2] * 10)[0] for _ in range(1)] + [env.reset()[0] for _ in range(6)]
    b = [rollout(env, 7, [0, 1, 2] * 10)[0] for _ in range(1)] + [env.reset()[0] for _ in range(6)]
    assert all(np.array_equal(x, y) for x, y in zip(a, b))  # also across a batch refill (4 per batch)
    c = rollout(env, 8, [0] * 10)[0]
    assert not np.array_equal(a[0], c)
    first_six = [env.reset(seed=7)[0]] + [env.reset()[0] for _ in range(3)]
    assert len({x.tobytes() for x in first_six}) == 4  # a batch serves distinct episodes


def test_reset_continues_a_real_history(ts_model_dir, stock):
    history = stock.iloc[100:140].reset_index(drop=True)
    env = make_env(ts_model_dir, history=history, horizon=5)
    obs, info = env.reset(seed=1)
    assert np.allclose(obs, history.to_numpy(np.float32)[-2:]) and info["episode_length"] == 5
    _, rewards, _, trunc = rollout(env, 1, [1] * 20)
    assert len(rewards) == 5 and trunc
    other = stock.iloc[200:230].reset_index(drop=True)
    obs, _ = env.reset(options={"history": other})
    assert np.allclose(obs, other.to_numpy(np.float32)[-2:])
    check_env(env, skip_render_check=True)


def test_loads_from_models_uri(ts_model_dir, tmp_path, monkeypatch):
    import mlflow
    from ganstream.deploy.registry import log_generator
    from ganstream.deploy.mlflow_env import using
    uri = sqlite_uri(tmp_path / 'mlflow.db')
    monkeypatch.setenv("GANSTREAM_CACHE_DIR", str(tmp_path / "cache"))
    with using(uri):
        mlflow.set_experiment("rl-env")  # not the experiment an earlier test left active in another store
        with mlflow.start_run():
            info = log_generator(ts_model_dir)
        mv = mlflow.register_model(info.model_uri, "ts-env")
        mlflow.MlflowClient().set_registered_model_alias("ts-env", "champion", mv.version)
    from_registry = make_env("models:/ts-env@champion", tracking_uri=uri)
    from_dir = make_env(ts_model_dir)
    assert np.array_equal(from_registry.reset(seed=3)[0], from_dir.reset(seed=3)[0])


def test_bad_input(ts_model_dir, fitted_gan, tmp_path, stock):
    with pytest.raises(ConfigError, match="must exceed window"):
        GeneratorEnv(ts_model_dir, reward_fn, gym.spaces.Discrete(3), window=SEQ_LEN)
    with pytest.raises(ConfigError, match="lacks the model's feature"):
        make_env(ts_model_dir, history=stock[["Open", "Close"]])
    with pytest.raises(ConfigError, match="window must be >= 1"):
        GeneratorEnv(ts_model_dir, reward_fn, gym.spaces.Discrete(3), window=0)
    with pytest.raises(ConfigError, match="batch must be >= 1"):
        make_env(ts_model_dir, batch=0)
    env = GeneratorEnv(ts_model_dir, reward_fn, gym.spaces.Discrete(3), window=5, history=stock.iloc[:3])
    with pytest.raises(ConfigError, match="fewer than window=5 steps"):
        env.reset(seed=0)
    fitted_gan.save(tmp_path / "tabular")
    with pytest.raises(ModelError, match="needs a time-series generator"):
        make_env(tmp_path / "tabular")
    with pytest.raises(ModelError):
        make_env(tmp_path / "nothing-here")


def test_array_env_replays_given_episodes_with_the_same_semantics(stock):
    real = stock.to_numpy(np.float32)
    episodes = [real[i:i + SEQ_LEN] for i in range(0, 60, SEQ_LEN)]
    env = ArrayEpisodeEnv(episodes, reward_fn, gym.spaces.Discrete(3), window=2)
    check_env(env, skip_render_check=True)
    trace, rewards, _, trunc = rollout(env, 0, [0] * 50)
    assert np.allclose(trace[:, -1], episodes[0][1:]) and trunc
    assert np.allclose(rewards, [reward_fn(o, 0) for o in trace[1:]], rtol=1e-6)


def test_replay_feeder_reads_episode_files_in_the_streams_layout(ts_model_dir, tmp_path):
    """Files laid out by the stream's own episodes() frame function, written hidden-then-renamed as the sink does."""
    from ganstream.pipeline.stream_frames import episodes
    from ganstream.trainers.timeseries.model import TimeSeriesGAN
    model = TimeSeriesGAN.load(ts_model_dir)
    sink = tmp_path / "sink"
    sink.mkdir()
    feeder = EpisodeFeeder(sink)
    buffer = ReplayBuffer(capacity=10_000)
    policy = lambda obs: np.ones(len(obs), int)  # noqa: E731
    for k in range(3):
        frame = episodes(model.sample(5, seed=k), first_id=5 * k).assign(model_version="1")
        frame.to_parquet(sink / f".shard-{k}.parquet.tmp")
        assert fill_from_stream(buffer, feeder, 2, policy, reward_fn) == 0  # a temp file is not read
        (sink / f".shard-{k}.parquet.tmp").rename(sink / f"shard-{k}.parquet")
        assert fill_from_stream(buffer, feeder, 2, policy, reward_fn) == 5 * (SEQ_LEN - 2)
    assert len(buffer) == 15 * (SEQ_LEN - 2) and feeder.columns == ["Open", "Close", "Volume"]
    first = model.sample(5, seed=0)
    ep0 = EpisodeFeeder(sink).poll()[0]
    assert np.allclose(ep0.observations, first[first.series_id == 0][["Open", "Close", "Volume"]].to_numpy(np.float32))


def test_replay_feeder_reads_the_streams_episodes(ts_model_dir, tmp_path):
    from ganstream.pipeline.cli import main
    sink = tmp_path / "episodes"
    assert main(["--quiet", "stream", str(ts_model_dir), "--sink", str(sink), "--rows", "30",
                 "--shard-rows", "10", "--format", "episodes", "--seed", "4"]) == 0
    feeder = EpisodeFeeder(sink)
    buffer = ReplayBuffer(capacity=1000)
    policy = lambda obs: np.full(len(obs), 2)  # noqa: E731
    added = fill_from_stream(buffer, feeder, window=2, policy=policy, reward_fn=reward_fn)
    assert added == 30 * (SEQ_LEN - 2) == len(buffer)
    assert feeder.columns == ["Open", "Close", "Volume"]
    assert fill_from_stream(buffer, feeder, window=2, policy=policy, reward_fn=reward_fn) == 0  # each file once

    ep = EpisodeFeeder(sink).poll()[0]
    t = episode_transitions(ep.observations, 2, policy, reward_fn)
    assert np.array_equal(t["next_obs"][:-1], t["obs"][1:]) and t["truncated"].sum() == 1
    assert np.allclose(t["reward"], reward_fn(t["next_obs"], t["action"]))
    sample = buffer.sample(64, np.random.default_rng(0))
    assert sample["obs"].shape == (64, 2, 3) and np.array_equal(
        sample["reward"], buffer.sample(64, np.random.default_rng(0))["reward"])

    pd.DataFrame({"x": [1.0]}).to_parquet(sink / "foreign.parquet")  # reported, not skipped silently
    with pytest.raises(DataError, match="not an episodes table"):
        EpisodeFeeder(sink).poll()


def test_replay_bad_input(tmp_path):
    with pytest.raises(DataError, match="no such stream sink"):
        EpisodeFeeder(tmp_path / "missing").poll()
    with pytest.raises(ConfigError, match="has no transition"):
        episode_transitions(np.zeros((2, 3), np.float32), 2, lambda o: np.zeros(len(o), int), reward_fn)
    with pytest.raises(ConfigError, match="empty"):
        ReplayBuffer(3).sample(1, np.random.default_rng(0))
    with pytest.raises(ConfigError, match="more than window"):
        ArrayEpisodeEnv([np.zeros((2, 3))], reward_fn, gym.spaces.Discrete(3), window=2)


def test_replay_buffer_wraps_around():
    buf = ReplayBuffer(capacity=5)
    buf.add({"reward": np.arange(3, dtype=np.float32)})
    buf.add({"reward": np.arange(3, 7, dtype=np.float32)})
    assert len(buf) == 5 and sorted(buf.arrays()["reward"]) == [2, 3, 4, 5, 6]
    with pytest.raises(ConfigError):
        ReplayBuffer(0)
