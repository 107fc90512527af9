"""Shared fixtures. Tests run on real data (data/adult.csv, bundled) and real files in tmp dirs.
Threads are pinned to 1 so that the suite behaves the same on a busy 2-core CI machine."""

import os

os.environ.setdefault("GANSTREAM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
# Ray (the default train path): one local cluster for the whole session, started by the first fit and shut
# down at the end; a short temp dir (Ray's socket paths must stay short) and no auth token in ~.
os.environ.setdefault("GANSTREAM_RAY_KEEP", "1")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_TMPDIR", "/tmp/ganstream-ray")
os.makedirs(os.environ["RAY_TMPDIR"], exist_ok=True)

from pathlib import Path  # noqa: E402

# With `pytest -n 2` (make test), one xdist worker runs every Ray test (they share one cluster: the "ray" xdist group)
# while the other runs the rest.

import pytest  # noqa: E402  # noqa: E402
import torch  # noqa: E402  # noqa: E402

torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]
ADULT = REPO / "data" / "adult.csv"


UNGROUPED: list[str] = []
# files whose tests share no module fixture and are long each: one unit per test, so both workers can take one
PER_TEST_UNITS = {"test_readme"}


class _Units:
    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_modifyitems(self, config, items):
        """Under `make test` (`-n 2 --dist loadgroup`) the Ray tests are one unit (the "ray" group: one cluster on
        one worker) and go first, because it is the longest unit (longest first leaves the shortest tail); every
        other test file is a unit of its own, so its module fixtures (a fitted model, a server) are built on one
        worker only."""
        items[:] = sorted(items, key=lambda i: not any(m.args == ("ray",) for m in i.iter_markers("xdist_group")))
        for item in items:
            if not any(item.iter_markers("xdist_group")):
                stem = Path(str(item.fspath)).stem
                unit = f"{stem}-{item.originalname}" if stem in PER_TEST_UNITS else stem
                item.add_marker(pytest.mark.xdist_group(unit))


def pytest_configure(config):
    config.pluginmanager.register(_Units(), "ganstream-test-units")


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    """Under `--dist loadgroup` xdist suffixes every grouped test's node id with `@GROUP`; the Ray tests rely on it
    to share one cluster on one worker. A pytest/xdist pair that drops the suffix lets two clusters start at once
    on two cores (every test still passes, the suite only gets 2-3x slower), so ray_first_fit fails instead."""
    if getattr(config.option, "loadgroup", False):
        UNGROUPED[:] = [i.nodeid for i in items if any(i.iter_markers("xdist_group")) and "@" not in i.nodeid]


@pytest.fixture(scope="session")
def adult_small():
    from ganstream.trainers.table_io import read_table
    return read_table(ADULT, ["?"]).iloc[:3000].reset_index(drop=True)


@pytest.fixture(scope="session")
def small_csv(tmp_path_factory, adult_small):
    """A small real table as CSV with `?` tokens, as users hand it to the CLI."""
    path = tmp_path_factory.mktemp("data") / "adult_small.csv"
    import pandas as pd
    raw = pd.read_csv(ADULT).iloc[:3000]
    raw.to_csv(path, index=False)
    return path


@pytest.fixture(scope="session")
def fitted_gan(adult_small):
    from ganstream.trainers.tabular.model import TabularGAN
    return TabularGAN(epochs=2, batch_size=200, seed=0, imputer_epochs=2).fit(adult_small)


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory):
    """One real `mlflow server` (tests/mlflow_server.py) for the tests that only need a healthy one; each registers
    its own model names. Its start-up (10-13 s on a busy 2-core machine) is paid once per session. A test that
    stops, kills or freezes a server starts its own."""
    from mlflow_server import running_server
    with running_server(tmp_path_factory.mktemp("mlflow-server")) as server:
        yield server


# The Ray tests' shared fit: `train --backend ray` through the CLI, 1 worker, 2 epochs, the hive dataset read once
# into an object store of 80 MB (--object-store-mb 80; --worker-cache-mb 0). It starts
# the session's one Ray cluster (kept for every later Ray test: GANSTREAM_RAY_KEEP=1), so every Ray test asks
# for it first: the option must size the cluster it starts (test_ray_train checks it did).


@pytest.fixture(scope="session")
def ray_hive(tmp_path_factory):
    from ray_data import write_hive
    return write_hive(tmp_path_factory.mktemp("hive"))


@pytest.fixture(scope="session")
def ray_first_fit(ray_hive, tmp_path_factory):
    import contextlib
    import io
    import sys

    from ganstream.pipeline.cli import main
    from ray_data import RAY_FIT_ARGS
    if "ray" in sys.modules:
        import ray
        assert not ray.is_initialized(), "a Ray test started Ray without asking for the ray_first_fit fixture"
    if UNGROUPED:
        pytest.fail(f"--dist loadgroup did not group {UNGROUPED[0]} (pytest {pytest.__version__}): see the pytest "
                    "pin in pyproject.toml")
    # Ray starts its worker processes at nice 15 (RAY_worker_niceness) to keep its raylet responsive: here they
    # would lose every core to the other xdist worker's fits, and a 2-worker fit waits for its slower worker.
    os.environ["RAY_worker_niceness"] = "0"
    out = tmp_path_factory.mktemp("ray_one") / "model"
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(["train", str(ray_hive), *RAY_FIT_ARGS, "--object-store-mb", "80", "--out", str(out)])
    assert code == 0, err.getvalue()
    from types import SimpleNamespace
    return SimpleNamespace(model_dir=out, console=err.getvalue(), hive=ray_hive)


@pytest.fixture(scope="session", autouse=True)
def _shutdown_shared_ray():
    """Stop the session's Ray cluster (if a test started one) when the suite ends."""
    yield
    import sys
    if "ray" in sys.modules:
        import ray
        if ray.is_initialized():
            ray.shutdown()
