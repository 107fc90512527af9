"""Differentially private training (`train --dp-epsilon`): exact per-row clipping, the accountant's epsilon kept
within the request and recorded (model.json, MLflow), the gate's dp_epsilon key, and bad options refused before
anything is written. Real fits, real MLflow (embedded sqlite)."""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mlflow import MlflowClient
from torch.func import functional_call, grad, vmap

from ganstream.deploy.gate import evaluate as gate_evaluate, figures, parse_gates
from ganstream.pipeline.cli import main
from ganstream.trainers.tabular.dp_accounting import DPPlan
from ganstream.trainers.tabular.dp_gradients import MLP, RowGradients, clipped_noisy_step, forward, penalty_terms
from ganstream.trainers.tabular.networks import Discriminator, TargetClassifier
from helpers import run
from mlflow_db import sqlite_uri

FAST = ["--missing-token", "?", "--epochs", "2", "--batch-size", "200", "--seed", "0"]
LOOSE = ["--gate", "detection_auc<=1", "--gate", "marginal_mean_distance<=1"]


def _reference(net, per_row_loss, *rows):
    """Per-row gradients by torch.func (one gradient per row, materialised): what dp_gradients must equal."""
    params = {k: v.detach() for k, v in net.named_parameters()}
    return vmap(grad(per_row_loss), in_dims=(None, *[0] * len(rows)))(params, *rows)


def _clipped_reference(ref: dict, clip: float) -> dict:
    norms = torch.stack([v.flatten(1).pow(2).sum(1) for v in ref.values()]).sum(0).sqrt()
    w = (clip / (norms + 1e-6)).clamp(max=1.0)
    return {k: (w.view(-1, *[1] * (v.dim() - 1)) * v).sum(0) for k, v in ref.items()}


@pytest.mark.parametrize("loss", ["wgan-gp", "non-saturating"])
def test_clipped_row_gradients_equal_per_row_autograd(loss):
    torch.manual_seed(0)
    n, d, clip = 9, 11, 0.7
    critic = Discriminator(d, (8, 6), pac=1, dropout=0.0)
    x, f, a = torch.randn(n, d), torch.randn(n, d), torch.rand(n, 1)
    x_hat = a * x + (1 - a) * f

    def score(p, v):
        return functional_call(critic, p, (v[None],)).squeeze()

    def per_row(p, xr, xf, xh):
        if loss == "non-saturating":
            return F.softplus(-score(p, xr)) + F.softplus(score(p, xf))
        g = grad(score, argnums=1)(p, xh)
        return score(p, xf) - score(p, xr) + 10.0 * (g.norm() - 1) ** 2

    want = _clipped_reference(_reference(critic, per_row, x, f, x_hat), clip)
    mlp = MLP.of(critic.net)
    grads = RowGradients.empty(mlp)
    real, fake = forward(mlp, x), forward(mlp, f)
    if loss == "wgan-gp":
        grads.add_pass(mlp, real, -torch.ones(n, 1))
        grads.add_pass(mlp, fake, torch.ones(n, 1))
        penalty_terms(mlp, grads, x_hat, 10.0)
    else:
        grads.add_pass(mlp, real, -torch.sigmoid(-real.out))
        grads.add_pass(mlp, fake, torch.sigmoid(fake.out))
    clipped_noisy_step([(mlp, grads)], clip, 0.0, 1.0, torch.Generator().manual_seed(0))
    for name, p in critic.named_parameters():
        torch.testing.assert_close(p.grad, want[name], atol=1e-5, rtol=1e-4)


def test_target_classifier_rows_are_clipped_together_with_the_critic():
    torch.manual_seed(1)
    n, d, k, clip = 7, 5, 3, 0.5
    critic, clf = Discriminator(d, (4,), pac=1, dropout=0.0), TargetClassifier(d, k, (6,), dropout=0.0)
    x, y = torch.randn(n, d), torch.randint(0, k, (n,))
    critic_ref = _reference(critic, lambda p, v: -functional_call(critic, p, (v[None],)).squeeze(), x)
    clf_ref = _reference(clf, lambda p, v, t: F.cross_entropy(functional_call(clf, p, (v[None],)), t[None]), x, y)
    joint = _clipped_reference({**{f"d.{k_}": v for k_, v in critic_ref.items()},
                                **{f"c.{k_}": v for k_, v in clf_ref.items()}}, clip)
    critic_mlp, clf_mlp = MLP.of(critic.net), MLP.of(clf.net)
    critic_grads, clf_grads = RowGradients.empty(critic_mlp), RowGradients.empty(clf_mlp)
    critic_grads.add_pass(critic_mlp, forward(critic_mlp, x), -torch.ones(n, 1))
    run_ = forward(clf_mlp, x)
    clf_grads.add_pass(clf_mlp, run_, torch.softmax(run_.out, 1) - F.one_hot(y, k).float())
    clipped_noisy_step([(critic_mlp, critic_grads), (clf_mlp, clf_grads)], clip, 0.0, 1.0, torch.Generator())
    for prefix, net in (("d", critic), ("c", clf)):
        for name, p in net.named_parameters():
            torch.testing.assert_close(p.grad, joint[f"{prefix}.{name}"], atol=1e-5, rtol=1e-4)


def test_noise_has_the_planned_scale():
    """With nothing to clip, the gradient is pure noise: std noise_multiplier * clip / expected rows."""
    critic = Discriminator(50, (40,), pac=1, dropout=0.0)
    mlp = MLP.of(critic.net)
    grads = RowGradients.empty(mlp)
    grads.add_pass(mlp, forward(mlp, torch.zeros(0, 50)), torch.zeros(0, 1))
    clipped_noisy_step([(mlp, grads)], 2.0, 1.5, 10.0, torch.Generator().manual_seed(0))
    assert critic.net[0].weight.grad.std().item() == pytest.approx(1.5 * 2.0 / 10.0, rel=0.05)


def test_calibrated_noise_spends_at_most_the_budget_and_less_noise_would_overspend():
    plan = DPPlan.calibrate(3.0, 1e-5, 1.0, sample_rate=0.02, steps_per_epoch=50, epochs=20)
    plan.epochs_done = plan.epochs
    assert plan.spent() <= 3.0 and plan.spent() > 2.9
    louder = DPPlan(**{**plan.__dict__, "noise_multiplier": plan.noise_multiplier * 0.95})
    assert louder.spent() > 3.0


@pytest.fixture(scope="module")
def dp_fit(tmp_path_factory, small_csv):
    """One DP fit through the CLI, tracked and registered behind `--gate dp_epsilon<=2` and the membership audit
    against a holdout (`--holdout` without `--target`: the audit runs, the lift needs a target and is skipped), in
    an embedded sqlite store. The target classifier under DP is fitted in test_ray_train's DP test."""
    import pandas as pd
    from conftest import ADULT
    d = tmp_path_factory.mktemp("dp")
    pd.read_csv(ADULT).iloc[3000:4500].to_csv(d / "holdout.csv", index=False)  # rows small_csv does not hold
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(d)
        mp.setenv("GANSTREAM_CACHE_DIR", str(d / "cache"))
        uri = sqlite_uri(d / "mlflow.db")
        argv = ["train", str(small_csv), *FAST, "--dp-epsilon", "2", "--out", str(d / "model"), "--keep-checkpoints",
                "--register", "private", "--tracking-uri", uri, *LOOSE, "--gate", "dp_epsilon<=2",
                "--holdout", str(d / "holdout.csv"), "--gate", "membership_auc<=0.6"]
        import contextlib
        import io
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = main(argv)
    assert code == 0, err.getvalue()
    return d, uri, err.getvalue()


def test_dp_fit_records_the_accountants_epsilon_within_the_request(dp_fit):
    d, uri, err = dp_fit
    privacy = json.loads((d / "model" / "model.json").read_text())["privacy"]
    assert 1.9 < privacy["epsilon_spent"] <= 2.0
    assert privacy["delta"] == pytest.approx(min(1e-5, 0.1 / 3000))
    assert privacy["accountant"] == "rdp" and privacy["noise_multiplier"] > 0 and privacy["steps_done"] > 0
    assert "column statistics" in privacy["not_covered"]
    guarantee = [line for line in err.splitlines() if "differential privacy: (" in line]
    assert len(guarantee) == 1 and "Not covered" in guarantee[0]
    client = MlflowClient(uri, uri)
    version = client.get_model_version_by_alias("private", "champion")
    run_ = client.get_run(version.run_id)
    assert float(run_.data.params["privacy.epsilon_spent"]) == pytest.approx(privacy["epsilon_spent"], rel=1e-5)
    assert run_.data.params["privacy.accountant"] == "rdp" and float(run_.data.params["privacy.delta"]) > 0
    assert run_.data.metrics["dp_epsilon"] == pytest.approx(privacy["epsilon_spent"], rel=1e-5)
    assert 0.4 < run_.data.metrics["membership_auc"] <= 0.6 and "lift_auc" not in run_.data.metrics


def test_resuming_a_dp_fit_with_more_epochs_stops_at_the_budget(dp_fit, small_csv, capsys):
    d, _, _ = dp_fit
    before = json.loads((d / "model" / "model.json").read_text())["privacy"]
    code, _, err = run(["train", small_csv, *FAST, "--epochs", "4", "--dp-epsilon", "2", "--out", d / "extended",
                        "--checkpoint-dir", d / "model.checkpoints", "--resume"], capsys)
    assert code == 0, err
    after = json.loads((d / "extended" / "model.json").read_text())["privacy"]
    assert after["steps_done"] == before["steps_done"] and after["epsilon_spent"] <= 2.0


def test_gate_refuses_a_model_over_the_requested_epsilon(dp_fit, small_csv, tmp_path, capsys):
    d, uri, _ = dp_fit
    code, _, err = run(["train", small_csv, *FAST, "--epochs", "1", "--dp-epsilon", "2", "--out", tmp_path / "m",
                        "--register", "private", "--tracking-uri", uri, *LOOSE, "--gate", "dp_epsilon<=1"], capsys)
    assert code == 3 and "dp_epsilon=" in err and "needs <= 1" in err
    client = MlflowClient(uri, uri)
    assert [str(v.version) for v in client.search_model_versions("name='private'")] == ["1"]


def test_a_model_without_dp_fails_a_dp_epsilon_gate():
    result = gate_evaluate(figures({"privacy": {"dcr_ratio": 1.0}}), parse_gates(["dp_epsilon<=10"]))
    assert not result.passed and "dp_epsilon=inf" in result.failures[0]


@pytest.mark.parametrize("options, message", [
    (["--dp-epsilon", "0"], "--dp-epsilon must be > 0"),
    (["--dp-epsilon", "-1"], "--dp-epsilon must be > 0"),
    (["--dp-epsilon", "inf"], "--dp-epsilon must be a positive number"),
    (["--dp-epsilon", "1", "--dp-delta", "0.001"], "--dp-delta must be above 0 and below 1/rows"),
    (["--dp-delta", "1e-6"], "--dp-delta needs --dp-epsilon"),
    (["--dp-epsilon", "1", "--loss", "dual"], "--dp-epsilon trains the wgan-gp"),
])
def test_bad_dp_options_are_one_line_and_write_nothing(options, message, small_csv, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    try:
        code, out, err = run(["train", small_csv, *FAST, *options, "--out", tmp_path / "m"], capsys)
    except SystemExit as e:  # argparse's own type errors: its usage line, then the error line
        code, err = e.code, capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_a_dp_fit_has_no_imputer_and_says_why(dp_fit, small_csv, tmp_path, capsys):
    d, _, _ = dp_fit
    code, _, err = run(["impute", small_csv, "--model", d / "model", "--out", tmp_path / "f.csv"], capsys)
    assert code == 2 and "a DP fit trains none" in err and not (tmp_path / "f.csv").exists()


def test_dp_samples_have_the_tables_columns_and_holes(dp_fit):
    import ganstream
    d, _, _ = dp_fit
    rows = ganstream.load(d / "model").sample(2000, seed=0)
    assert rows["workclass"].isna().mean() > 0 and np.isfinite(rows["age"]).all()
