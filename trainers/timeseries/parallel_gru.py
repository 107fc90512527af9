"""R small GRU classifiers/regressors trained side by side as one block-diagonal GRU. Used by TimeGAN's
scores (augment/ts_metrics.py), whose repeats it runs in the time of one, and by the time-series GAN's
keep-best check (timeseries/holdout.py), which averages several classifiers to rank states with less noise."""

from __future__ import annotations

import torch
import torch.nn as nn


class ParallelGRUs(nn.Module):
    """R independent 1-layer GRUs (with linear read-outs) run as one block-diagonal GRU, so the R repeats
    of a score train in the time of one (a tiny GRU's cost is per-op overhead, not arithmetic). Off-block
    weights are zero in every forward and reset to zero after every optimiser step, so model r only ever
    sees input block r: the R models are exactly independent (losses are summed, gradients never mix)."""

    def __init__(self, repeats: int, n_in: int, hidden: int):
        super().__init__()
        self.R, self.n_in, self.H = repeats, n_in, hidden
        self.gru = nn.GRU(repeats * n_in, repeats * hidden, num_layers=1, batch_first=True)
        unit = torch.arange(repeats * hidden) // hidden
        self.register_buffer("mask_ih", (unit[:, None] == (torch.arange(repeats * n_in) // n_in)[None, :]).float().repeat(3, 1))
        self.register_buffer("mask_hh", (unit[:, None] == unit[None, :]).float().repeat(3, 1))
        self.w = nn.Parameter(torch.randn(repeats, hidden) / hidden ** 0.5)
        self.b = nn.Parameter(torch.zeros(repeats))
        self.apply_masks()

    @torch.no_grad()
    def apply_masks(self) -> None:
        self.gru.weight_ih_l0.mul_(self.mask_ih)
        self.gru.weight_hh_l0.mul_(self.mask_hh)

    def optimise(self, opt: torch.optim.Optimizer, loss: torch.Tensor) -> None:
        """One optimiser step on `loss`, then the off-block weights back to zero (the models stay independent)."""
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        self.apply_masks()

    def forward(self, x: torch.Tensor, per_step: bool) -> torch.Tensor:
        """x [R, B, T, n_in] (model r reads x[r]) -> logits [R, B] (last state) or [R, B, T] (every step)."""
        R, B, T, n = x.shape
        seq, last = self.gru(x.permute(1, 2, 0, 3).reshape(B, T, R * n))
        if per_step:
            return torch.einsum("btrh,rh->rbt", seq.reshape(B, T, R, self.H), self.w) + self.b[:, None, None]
        return torch.einsum("brh,rh->rb", last[-1].reshape(B, R, self.H), self.w) + self.b[:, None]


def held_out_accuracies(pool: torch.Tensor, labels: torch.Tensor, train: torch.Tensor, test: torch.Tensor,
                        hidden: int, steps: int, batch_size: int, rng, torch_seed: int) -> list[float]:
    """Train R GRU classifiers side by side (model r on rows train[r] of pool [N, T, n_in] against labels
    [N] in {0, 1}; last state read out, Adam, summed BCE) and return each one's accuracy on its rows test[r].
    Batches come from the numpy Generator `rng`, one draw per step; the initialisation from `torch_seed`,
    inside a forked torch RNG so the caller's stream is left as it was. Shared by TimeGAN's discriminative
    score and the keep-best check, which differ only in their inputs and splits."""
    repeats = train.shape[0]
    B = min(batch_size, train.shape[1])
    with torch.random.fork_rng():
        torch.manual_seed(int(torch_seed))
        model = ParallelGRUs(repeats, pool.shape[2], hidden)
        opt = torch.optim.Adam(model.parameters())
        loss_fn = nn.BCEWithLogitsLoss(reduction="sum")
        for _ in range(steps):
            pick = torch.gather(train, 1, torch.from_numpy(rng.integers(train.shape[1], size=(repeats, B))))
            model.optimise(opt, loss_fn(model(pool[pick], per_step=False), labels[pick]) / B)
        correct = torch.zeros(repeats)
        with torch.inference_mode():
            for start in range(0, test.shape[1], 4096):  # chunks bound the memory of large test sets
                chunk = test[:, start:start + 4096]
                correct += ((model(pool[chunk], per_step=False) > 0).float() == labels[chunk]).float().sum(1)
    return [float(c) / test.shape[1] for c in correct]
