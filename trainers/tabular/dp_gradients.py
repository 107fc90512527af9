"""Per-row clipped gradients of the critic (and the auxiliary classifier) for DP-SGD, exact and batched.

DP-SGD needs each training row's own gradient, clipped to a norm C, before the rows are summed and noised. The
generic way (torch.func's vmap over rows, Opacus's per-sample hooks) materialises one gradient per row: for
the default critic that is 500 rows x 63k first-layer weights per step, and with the gradient penalty's double
backward a step took 0.7-0.9 s on one core against 0.035 s without DP (benchmarks/RESULTS.md, issue 23).
Opacus's hooks also do not support the penalty's double backward at all.

Our networks are MLPs of Linear layers with element-wise activations whose slopes are detached masks
(networks._LeakyReLU, dropout). For such a network every row's gradient of every weight matrix is a short sum
of outer products u_k v_k^T:
- a forward pass on an input contributes delta_l h_{l-1}^T (the gradient at the layer's output times its
  input);
- the gradient penalty (||g|| - 1)^2 on the input gradient g = W_1^T delta_1 is, with the masks constant, a
  linear chain in the weights, and contributes delta_l tau_{l-1}^T, where tau runs the chain forwards from
  tau_0 = d penalty / d g.

So the per-row squared norm is sum_{k,k'} (u_k . u_k')(v_k . v_k') (row-wise dot products), and the clipped
sum is sum_k (w * U_k)^T V_k (one matmul per term): no per-row gradient is ever formed, and a DP step costs a
few ordinary matmuls ("ghost clipping", Goodfellow 2015 and Li et al. 2022, extended here to the penalty).
`tests/test_dp.py` checks the result against torch.func's per-row gradients.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class MLP:
    """The Linear layers of an nn.Sequential MLP with the slope and dropout rate after each hidden layer."""

    linears: list[nn.Linear]
    slopes: list[float]
    dropouts: list[float]

    @classmethod
    def of(cls, net: nn.Sequential) -> "MLP":
        linears, slopes, dropouts = [], [], []
        for layer in net:
            if isinstance(layer, nn.Linear):
                linears.append(layer)
            elif hasattr(layer, "slope") or isinstance(layer, nn.LeakyReLU):
                slopes.append(float(getattr(layer, "slope", getattr(layer, "negative_slope", 0.0))))
            elif hasattr(layer, "p"):
                dropouts.append(float(layer.p))
            else:
                raise TypeError(f"DP training supports Linear, LeakyReLU and Dropout layers, not {type(layer).__name__}")
        if not (len(slopes) == len(dropouts) == len(linears) - 1):
            raise TypeError("DP training expects Linear -> LeakyReLU -> Dropout blocks and a Linear head")
        return cls(linears, slopes, dropouts)

    def parameters(self) -> list[torch.Tensor]:
        return [p for lin in self.linears for p in (lin.weight, lin.bias)]


@dataclass
class Pass:
    """One forward pass of a batch: each Linear's input and the (detached) mask after each hidden layer."""

    inputs: list[torch.Tensor]
    masks: list[torch.Tensor]
    out: torch.Tensor


def forward(mlp: MLP, x: torch.Tensor, train: bool = True) -> Pass:
    """The network's output on x, recording what the per-row gradients need. The mask after a hidden layer is
    the leaky slope times the dropout keep-mask (scaled by 1 / (1 - p)): the network is then linear in each
    weight matrix along the pass, which is what makes the per-row gradients outer products."""
    inputs, masks, h = [], [], x
    for i, lin in enumerate(mlp.linears):
        inputs.append(h)
        z = F.linear(h, lin.weight, lin.bias)
        if i == len(mlp.linears) - 1:
            return Pass(inputs, masks, z)
        mask = torch.where(z > 0, 1.0, mlp.slopes[i])
        p = mlp.dropouts[i]
        if train and p > 0:
            mask = mask * ((torch.rand_like(z) >= p).to(z.dtype) / (1.0 - p))
        masks.append(mask)
        h = z * mask
    raise ValueError("an MLP needs at least one Linear layer")


def deltas(mlp: MLP, masks: list[torch.Tensor], out_grad: torch.Tensor) -> list[torch.Tensor]:
    """d loss / d (each Linear's output), per row, given d loss / d output (rows x outputs)."""
    out = [out_grad]
    for i in range(len(mlp.linears) - 1, 0, -1):
        out.append((out[-1] @ mlp.linears[i].weight) * masks[i - 1])
    return out[::-1]


@dataclass
class RowGradients:
    """Per-row gradients kept as outer-product terms: weight l of row i = sum_k U_k[i] (x) V_k[i], bias l of row
    i = sum over the bias terms' rows."""

    weights: list[list[tuple[torch.Tensor, torch.Tensor]]] = field(default_factory=list)
    biases: list[list[torch.Tensor]] = field(default_factory=list)

    @classmethod
    def empty(cls, mlp: MLP) -> "RowGradients":
        return cls([[] for _ in mlp.linears], [[] for _ in mlp.linears])

    def add_pass(self, mlp: MLP, run: Pass, out_grad: torch.Tensor) -> None:
        """The terms of a forward pass whose output has gradient `out_grad` (rows x outputs)."""
        for l, d in enumerate(deltas(mlp, run.masks, out_grad)):
            self.weights[l].append((d, run.inputs[l]))
            self.biases[l].append(d)

    def squared_norms(self) -> torch.Tensor:
        total = 0.0
        for terms, bias_terms in zip(self.weights, self.biases):
            for a, (u, v) in enumerate(terms):
                for b, (u2, v2) in enumerate(terms[a:], start=a):
                    cross = (u * u2).sum(1) * (v * v2).sum(1)
                    total = total + (cross if a == b else 2.0 * cross)
            if bias_terms:
                total = total + torch.stack(bias_terms).sum(0).pow(2).sum(1)
        return total

    def weighted_sums(self, w: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """(weight, bias) gradient sums over rows, row i weighted by w[i]."""
        out = []
        for terms, bias_terms in zip(self.weights, self.biases):
            weight = sum((w[:, None] * u).T @ v for u, v in terms)
            bias = sum((w[:, None] * u).sum(0) for u in bias_terms)
            out.append((weight, bias))
        return out


def penalty_terms(mlp: MLP, grads: RowGradients, x_hat: torch.Tensor, weight: float) -> torch.Tensor:
    """Add the per-row gradient of weight * (||d score / d x_hat|| - 1)^2 to `grads` (a scalar-output critic).
    Returns the per-row penalty. Biases do not enter the input gradient, so they get no term."""
    run = forward(mlp, x_hat)
    d = deltas(mlp, run.masks, torch.ones(len(x_hat), 1))
    g = d[0] @ mlp.linears[0].weight  # d score / d x_hat, per row
    norm = g.norm(dim=1).clamp_min(1e-12)
    tau = (2.0 * weight * (norm - 1.0) / norm)[:, None] * g  # d penalty / d g
    for l, lin in enumerate(mlp.linears):
        grads.weights[l].append((d[l], tau))
        if l < len(mlp.linears) - 1:
            tau = (tau @ lin.weight.T) * run.masks[l]
    return weight * (norm - 1.0) ** 2


def clipped_noisy_step(groups: list[tuple[MLP, RowGradients]], clip: float, noise_multiplier: float,
                       expected_rows: float, generator: torch.Generator, noise_share: float = 1.0) -> torch.Tensor:
    """Set .grad of every parameter in `groups` to (sum of rows' gradients, each clipped to `clip` over all groups
    together, plus N(0, (noise_multiplier * clip)^2 * noise_share)) / expected_rows: DP-SGD's Gaussian mechanism
    (Abadi et al. 2016). Normalising by the expected batch size (not the drawn one, which depends on the data)
    keeps the step's sensitivity at clip / expected_rows. `noise_share` < 1: data-parallel workers whose noises
    add up to one full draw. Returns the per-row norms before clipping (for diagnostics)."""
    norms = sum(g.squared_norms() for _, g in groups).sqrt()
    w = (clip / (norms + 1e-6)).clamp(max=1.0)
    std = noise_multiplier * clip * noise_share ** 0.5
    for mlp, g in groups:
        for lin, (gw, gb) in zip(mlp.linears, g.weighted_sums(w)):
            lin.weight.grad = (gw + std * torch.randn(lin.weight.shape, generator=generator)) / expected_rows
            lin.bias.grad = (gb + std * torch.randn(lin.bias.shape, generator=generator)) / expected_rows
    return norms
