"""Generator and discriminator for tables. Small on purpose: a residual MLP generator (each block's input
is concatenated to its output, so early features reach the head) and a PacGAN discriminator that judges
`pac` samples at once — seeing several samples together lets it notice a generator that keeps repeating
itself, which is how packing cures mode collapse."""

from __future__ import annotations

from itertools import accumulate

import torch
import torch.nn.functional as F
from torch import nn

from ganstream.trainers.encoding import Span


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


class _LeakyReLU(nn.Module):
    """nn.LeakyReLU computed as x times a detached slope mask (1 where x > 0, else `slope`): the same values
    and the same first derivative. Why: the gradient penalty differentiates the critic's input gradient
    once more, and through leaky_relu's own backward autograd then carries an all-zero second derivative
    back through the forward graph — weight-gradient matmuls of zeros in the first layer (~16M multiply-adds
    per Adult step). With a detached mask that path does not exist."""

    def __init__(self, slope: float):
        super().__init__()
        self.slope = slope

    def forward(self, x):
        return x * torch.where(x > 0, 1.0, self.slope).detach()

    def extra_repr(self) -> str:
        return f"negative_slope={self.slope}"


class _Dropout(nn.Module):
    """nn.Dropout with the keep mask drawn as `rand >= p`: the same Bernoulli(1 - p) mask and 1 / (1 - p)
    scaling, but torch's CPU `bernoulli_` draws element by element while `rand` is vectorised (a 50x256
    mask: ~80 vs ~245 us, and the critic draws eight per step). No parameters: state_dicts are unchanged."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x):
        if not self.training or self.p == 0.0:
            return x
        return x * ((torch.rand_like(x) >= self.p).to(x.dtype) * (1.0 / (1.0 - self.p)))

    def extra_repr(self) -> str:
        return f"p={self.p}"


class Discriminator(nn.Module):
    def __init__(self, input_dim: int, hidden: tuple[int, ...] = (256, 256), pac: int = 10, dropout: float = 0.5):
        super().__init__()
        self.pac = pac
        layers, d = [], input_dim * pac
        for h in hidden:
            layers += [nn.Linear(d, h), _LeakyReLU(0.2), _Dropout(dropout)]
            d = h
        layers.append(nn.Linear(d, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, *groups, cond=None):
        """Legacy form D(x): x (batch, input_dim), batch divisible by pac -> (batch // pac, 1) scores (logits).

        Shared-condition form D(x1, x2, ..., cond=c): c (n, cond_dim) are the condition rows and each xi
        (k * n, data_dim) holds only the data columns of k groups of n rows that all carry c (real rows and
        fakes of one training step do). Returns one score tensor per xi, equal to the legacy form on
        cat([group, c], 1) group by group. Why: the condition is half of the packed first layer's input
        (Adult: 120 of 245 columns per row) and that layer is most of the critic's work, so its share
        W_cond @ c is computed once per call instead of once per group, and a backward pass never computes
        gradients for condition columns unless c itself requires them (the gradient penalty's does). Each xi
        keeps its own graph, so a gradient w.r.t. one group (the penalty's interpolates) costs that group only."""
        if cond is None:
            (x,) = groups
            return self.net(x.reshape(-1, x.shape[1] * self.pac))
        first, rest = self.net[0], self.net[1:]
        n, data_dim = cond.shape[0] // self.pac, groups[0].shape[1]
        # Per packed row: its data columns, then its condition. split (not two slices): its backward is one cat of
        # both gradients, where each slice's backward would zero-fill a full weight-sized tensor first.
        w_data, w_cond = first.weight.view(first.out_features, self.pac, -1).split([data_dim, cond.shape[1]], dim=2)
        w_data, w_cond = w_data.reshape(first.out_features, -1), w_cond.reshape(first.out_features, -1)
        shared = F.linear(cond.reshape(n, self.pac * cond.shape[1]), w_cond, first.bias)
        out = []
        for x in groups:
            h = F.linear(x.reshape(-1, n, self.pac * data_dim), w_data) + shared  # (k, n, hidden): broadcast over groups
            out.append(rest(h.reshape(-1, first.out_features)))
        return tuple(out)


class DualDiscriminator(nn.Module):
    """Two independent PacGAN discriminators (D2GAN) in one module, so that optimisers, freezing, saving and
    distributed wrappers treat them as one network. Scores: column 0 = D1 (rewards real rows, the KL side),
    column 1 = D2 (rewards fakes, the reverse-KL side); trainers.losses turns them into the dual loss."""

    def __init__(self, input_dim: int, hidden: tuple[int, ...] = (256, 256), pac: int = 10, dropout: float = 0.5):
        super().__init__()
        self.pac = pac
        self.d1 = Discriminator(input_dim, hidden, pac, dropout)
        self.d2 = Discriminator(input_dim, hidden, pac, dropout)

    def forward(self, *groups, cond=None):
        """Same call forms as Discriminator.forward; scores (batch // pac, 2)."""
        if cond is None:
            return torch.cat([self.d1(*groups), self.d2(*groups)], dim=1)
        return tuple(torch.cat(pair, dim=1) for pair in zip(self.d1(*groups, cond=cond), self.d2(*groups, cond=cond)))


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
    cannot tell fakes by their softness. The Gumbel noise is one uniform draw for the whole matrix
    (-log(-log u), as in `discretize`), not F.gumbel_softmax's `exponential_` per span: the same
    distribution, but torch's CPU exponential_ is not vectorised (~1.5 ms of a ~35 ms Adult step). The
    spans tile the columns in order (the encoder's layout), so one `split` cuts them: its backward is one
    cat, where a slice per span zero-fills a whole (batch, columns) gradient per span."""
    widths = [s.width for s in spans]
    if [s.start for s in spans] != list(accumulate(widths, initial=0))[:-1] or sum(widths) != raw.shape[1]:
        raise ValueError("activate: spans must tile raw's columns in order")
    gumbel = -torch.log(-torch.log(torch.rand(raw.shape, dtype=raw.dtype).clamp_(1e-10, 1.0)))
    parts = []
    for s, block, noise in zip(spans, raw.split(widths, dim=1), gumbel.split(widths, dim=1)):
        if s.kind == "softmax":
            block = F.softmax((block + noise) / tau, dim=1)
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
    averaged over the batch. One gather of each row's conditioned span into a (batch, widest span) matrix,
    padded with -inf, and one cross-entropy: the same sum as one masked cross-entropy per span, without the
    ~5 small ops (mask, any, nonzero, index, CE) per span and their backward."""
    if not cond_spans or not len(span):
        return raw.new_zeros(())
    starts = torch.tensor([s.start for s in cond_spans])[span]
    widths = torch.tensor([s.width for s in cond_spans])[span]
    cols = torch.arange(int(widths.max()))
    index = starts[:, None] + torch.minimum(cols, widths[:, None] - 1)
    logits = raw.gather(1, index).masked_fill(cols >= widths[:, None], float("-inf"))
    return F.cross_entropy(logits, g_local, reduction="sum") / raw.shape[0]


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
