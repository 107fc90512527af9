"""Generator and discriminator for tables. Small on purpose: a residual MLP generator (each block's input
is concatenated to its output, so early features reach the head) and a PacGAN discriminator that judges
`pac` samples at once — seeing several samples together lets it notice a generator that keeps repeating
itself, which is how packing cures mode collapse."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .encoding import Span


class _Residual(nn.Module):
    def __init__(self, i: int, o: int):
        super().__init__()
        self.fc = nn.Linear(i, o)
        self.bn = nn.BatchNorm1d(o)

    def forward(self, x):
        return torch.cat([F.relu(self.bn(self.fc(x))), x], dim=1)


class _AddResidual(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.fc = nn.Linear(width, width)
        self.bn = nn.BatchNorm1d(width)

    def forward(self, x):
        return x + F.relu(self.bn(self.fc(x)))


class Generator(nn.Module):
    """block='concat': each block's output is concatenated to its input (CTGAN-like; the head sees every
    layer). block='add': a first projection then same-width blocks that add to their input (about 40%
    fewer multiply-adds per row, so faster fits and sampling)."""

    def __init__(self, noise_dim: int, cond_dim: int, data_dim: int, hidden: tuple[int, ...] = (256, 256),
                 block: str = "concat"):
        super().__init__()
        layers, d = [], noise_dim + cond_dim
        if block == "concat":
            for h in hidden:
                layers.append(_Residual(d, h))
                d += h
        else:
            layers += [nn.Linear(d, hidden[0]), nn.BatchNorm1d(hidden[0]), nn.ReLU()]
            d = hidden[0]
            for h in hidden[1:]:
                if h != d:
                    raise ValueError("block='add' needs equal hidden widths")
                layers.append(_AddResidual(d))
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(d, data_dim)

    def forward(self, z, cond):
        return self.head(self.body(torch.cat([z, cond], dim=1)))


class Discriminator(nn.Module):
    def __init__(self, input_dim: int, hidden: tuple[int, ...] = (256, 256), pac: int = 10, dropout: float = 0.5):
        super().__init__()
        self.pac = pac
        layers, d = [], input_dim * pac
        for h in hidden:
            layers += [nn.Linear(d, h), nn.LeakyReLU(0.2), nn.Dropout(dropout)]
            d = h
        layers.append(nn.Linear(d, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        """x: (batch, input_dim) with batch divisible by pac -> (batch // pac, 1) scores (logits)."""
        return self.net(x.reshape(-1, x.shape[1] * self.pac))


class DualDiscriminator(nn.Module):
    """Two independent PacGAN discriminators (D2GAN) in one module, so that optimisers, freezing, saving and
    distributed wrappers treat them as one network. Scores: column 0 = D1 (rewards real rows, the KL side),
    column 1 = D2 (rewards fakes, the reverse-KL side); trainers.losses turns them into the dual loss."""

    def __init__(self, input_dim: int, hidden: tuple[int, ...] = (256, 256), pac: int = 10, dropout: float = 0.5):
        super().__init__()
        self.pac = pac
        self.d1 = Discriminator(input_dim, hidden, pac, dropout)
        self.d2 = Discriminator(input_dim, hidden, pac, dropout)

    def forward(self, x):
        """x: (batch, input_dim) -> (batch // pac, 2) scores."""
        return torch.cat([self.d1(x), self.d2(x)], dim=1)


class TargetClassifier(nn.Module):
    """Auxiliary classifier (after CTAB-GAN): learns P(target | other columns) on real rows; the generator
    is then penalised when its rows' features imply a different target than the one it generated."""

    def __init__(self, input_dim: int, n_classes: int, hidden: tuple[int, ...] = (128, 128), dropout: float = 0.2):
        super().__init__()
        layers, d = [], input_dim
        for h in hidden:
            layers += [nn.Linear(d, h), nn.LeakyReLU(0.2), nn.Dropout(dropout)]
            d = h
        layers.append(nn.Linear(d, n_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)


def activate(raw: torch.Tensor, spans: list[Span], tau: float = 0.2) -> torch.Tensor:
    """Training-time output: continuous dims pass through, bounded dims (a numeric mode's offset) go through
    tanh, softmax spans become Gumbel-softmax samples (differentiable, nearly one-hot) so the discriminator
    cannot tell fakes by their softness."""
    parts = []
    for s in spans:
        block = raw[:, s.start:s.stop]
        if s.kind == "softmax":
            block = F.gumbel_softmax(block, tau=tau)
        elif s.kind == "bounded":
            block = torch.tanh(block)
        parts.append(block)
    return torch.cat(parts, dim=1)


def discretize(raw: torch.Tensor, spans: list[Span], generator: torch.Generator) -> torch.Tensor:
    """Sampling-time output: each softmax span becomes an exact one-hot categorical draw (Gumbel-max with a
    seeded generator, so sampling is reproducible); continuous dims pass through. One noise draw for the
    whole matrix, then one argmax per span (a loop over columns, never rows); bounded dims get their tanh."""
    u = torch.rand(raw.shape, generator=generator).clamp_(1e-10, 1.0)
    noisy = raw - torch.log(-torch.log(u))
    out = raw.clone()
    rows = torch.arange(raw.shape[0])
    for s in spans:
        if s.kind == "bounded":
            out[:, s.start:s.stop] = torch.tanh(raw[:, s.start:s.stop])
        elif s.kind == "softmax":
            idx = noisy[:, s.start:s.stop].argmax(dim=1)
            out[:, s.start:s.stop] = 0.0
            out[rows, s.start + idx] = 1.0
    return out


def condition_loss(raw: torch.Tensor, cond_spans: list[Span], span: torch.Tensor, g_local: torch.Tensor) -> torch.Tensor:
    """Cross-entropy between the generated logits of the conditioned span and the requested category,
    averaged over the batch (one masked CE per span: loops over columns, never rows)."""
    total = raw.new_zeros(())
    for j, s in enumerate(cond_spans):
        rows = span == j
        if rows.any():
            total = total + F.cross_entropy(raw[rows, s.start:s.stop], g_local[rows], reduction="sum")
    return total / raw.shape[0]


def frequency_match_loss(raw: torch.Tensor, real: torch.Tensor, spans: list[Span], groups: torch.Tensor,
                         n_groups: int) -> torch.Tensor:
    """Per condition group of the batch, the squared gap between the generator's mean category probabilities
    and the real rows' category frequencies, summed over `spans` and weighted by the group's share.

    Why: sampling draws each span's category from softmax(raw) (networks.discretize), so softmax(raw) *is*
    the generator's categorical distribution. The critic sees one Gumbel-relaxed draw per row and judges
    packs of 10, so a free span drawn 30% too often under a condition is a weak signal to it (the 5x5 grid:
    one column's mode, fixed by the condition, comes out right; the other column's, the generator's own
    draw, came out 712/373/554/474/387 of 2,500). The real rows paired with the conditions give the target.
    `groups` (batch,): each row's condition; a group's real rows all have that condition, so the targets are
    P(span | condition) whatever the dependence between columns.

    The returned value is that squared gap; its gradient is the leave-one-out one: row i is moved by
    (mean of the *other* fakes of its group - real frequencies). The plain gradient would also carry the
    row's own share of the gap, which in expectation is a penalty on how much rows of one group differ — with
    Adult's ~150 conditions a group holds a handful of rows, and that penalty makes every row's draw the
    group average (its modes forget the rest of the row). Rows alone in their group give no gradient. Real
    frequencies from a few rows are noisy but unbiased, and the gradient is linear in them. One index_add
    per span: loops over columns, never rows."""
    counts = torch.bincount(groups, minlength=n_groups).to(raw.dtype)
    n_i = counts[groups][:, None]
    value, surrogate = raw.new_zeros(()), raw.new_zeros(())
    for s in spans:
        probs = F.softmax(raw[:, s.start:s.stop], dim=1)
        fake_sum = raw.new_zeros(n_groups, s.width).index_add_(0, groups, probs.detach())
        real_mean = (raw.new_zeros(n_groups, s.width).index_add_(0, groups, real[:, s.start:s.stop])
                     / counts.clamp_min(1.0)[:, None])
        gap = fake_sum / counts.clamp_min(1.0)[:, None] - real_mean
        value = value + (counts / raw.shape[0] * gap.pow(2).sum(dim=1)).sum()
        others = (fake_sum[groups] - probs.detach()) / (n_i - 1.0).clamp_min(1.0)
        loo_gap = torch.where(n_i > 1, others - real_mean[groups], torch.zeros_like(probs))
        surrogate = surrogate + 2.0 * (probs * loo_gap).sum() / raw.shape[0]
    return value + surrogate - surrogate.detach()
