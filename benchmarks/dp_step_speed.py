"""CPU time of one critic update with the gradient penalty, at Adult's width (125 data + 120 condition columns,
critic 256-256, pac 1, 500 rows, 1 thread): without DP, with DP-SGD by per-row gradients from torch.func (vmap of
the double-backward loss: one gradient per row, materialised), and with DP-SGD by dp_gradients.py (per-row norms
and the clipped sum from outer-product terms). Prints a table with the ratios.

    .venv/bin/python benchmarks/dp_step_speed.py --repeats 20
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from torch.func import functional_call, grad, vmap  # noqa: E402

from ganstream.trainers.tabular.dp_gradients import MLP, RowGradients, clipped_noisy_step, forward, penalty_terms  # noqa: E402
from ganstream.trainers.tabular.losses import gradient_penalty  # noqa: E402
from ganstream.trainers.tabular.networks import Discriminator  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--rows", type=int, default=500)
    a = p.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    d, n = 245, a.rows
    critic = Discriminator(d, (256, 256), pac=1)
    x, f, alpha = torch.randn(n, d), torch.randn(n, d), torch.rand(n, 1)
    gen = torch.Generator().manual_seed(0)
    mlp = MLP.of(critic.net)

    def plain():
        critic.zero_grad()
        x_hat = (alpha * x + (1 - alpha) * f).requires_grad_(True)
        loss = critic(f).mean() - critic(x).mean() + gradient_penalty(critic(x_hat), (x_hat,), 1, 10.0)
        loss.backward()

    params = {k: v.detach() for k, v in critic.named_parameters()}

    def score(prm, v):
        return functional_call(critic, prm, (v[None],)).squeeze()

    def per_row(prm, xr, xf, xh):
        g = grad(score, argnums=1)(prm, xh)
        return score(prm, xf) - score(prm, xr) + 10.0 * (g.norm() - 1) ** 2

    per_row_grads = vmap(grad(per_row), in_dims=(None, 0, 0, 0), randomness="different")

    def materialised():
        g = per_row_grads(params, x, f, alpha * x + (1 - alpha) * f)
        norms = torch.stack([v.flatten(1).pow(2).sum(1) for v in g.values()]).sum(0).sqrt()
        w = (1.0 / (norms + 1e-6)).clamp(max=1.0)
        return {k: (w.view(-1, *[1] * (v.dim() - 1)) * v).sum(0) for k, v in g.items()}

    def ours():
        grads = RowGradients.empty(mlp)
        with torch.no_grad():
            grads.add_pass(mlp, forward(mlp, x), -torch.ones(n, 1))
            grads.add_pass(mlp, forward(mlp, f), torch.ones(n, 1))
            penalty_terms(mlp, grads, alpha * x + (1 - alpha) * f, 10.0)
            clipped_noisy_step([(mlp, grads)], 1.0, 1.0, float(n), gen)

    rows = []
    for name, fn in (("no DP (autograd, batch gradient)", plain), ("DP, torch.func per-row gradients", materialised),
                     ("DP, dp_gradients.py", ours)):
        fn()
        c0 = time.process_time()
        for _ in range(a.repeats):
            fn()
        rows.append((name, (time.process_time() - c0) / a.repeats))
    base = rows[0][1]
    print(f"critic update, {n} rows x {d} columns, critic 256-256, 1 thread, {a.repeats} repeats (CPU s per update)")
    print("| method | CPU s | ratio to no DP |\n|---|---|---|")
    for name, s in rows:
        print(f"| {name} | {s:.4f} | {s / base:.1f}x |")


if __name__ == "__main__":
    main()
