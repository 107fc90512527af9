"""Adversarial losses, selectable per fit. D outputs logits; all functions take D's scores on real and fake.

- `minimax`: the original zero-sum game. G minimises E[log(1 - D(G(z)))], whose gradient vanishes exactly
  when D confidently rejects fakes, i.e. early in training: kept to show what goes wrong.
- `non-saturating`: same D, but G maximises E[log D(G(z))] (minimises -log D(G(z))): strong gradients when
  G is bad. Same fixed point, much better dynamics.
- `wgan-gp` (default): D is a critic estimating the Wasserstein-1 distance, kept 1-Lipschitz by a gradient
  penalty on interpolates; its loss tracks sample quality and it is far less prone to mode collapse.
- `dual`: two discriminators (D2GAN, Nguyen et al. 2017), scores in columns 0 and 1 (see
  networks.DualDiscriminator), each D_k = softplus(score) > 0. D1 rewards real rows (alpha * log D1(x) - D1(G(z))),
  D2 rewards fakes (beta * log D2(G(z)) - D2(x)). At the optimum the generator minimises
  alpha * KL(p_data || p_model) + beta * KL(p_model || p_data): the KL term punishes dropped modes, the
  reverse-KL term punishes mass where the data has none. See docs/mode_collapse.md.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

LOSSES = ("wgan-gp", "non-saturating", "minimax", "dual")
# D2GAN's 2-D reference setting. The smaller 0.2 / 0.1 dropped modes here (benchmarks/RESULTS.md, mode
# collapse, 3 seeds: grid 15-25/25 modes at 71-86% high-quality samples, ring 4-7/8; 1 / 1 kept all of them).
DUAL_ALPHA = 1.0
DUAL_BETA = 1.0


def _positive(scores: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(D, log D) for D = softplus(scores); log D computed without underflow for very negative scores."""
    d = F.softplus(scores)
    return d, torch.where(scores < -20.0, scores, torch.log(d.clamp_min(1e-30)))


def discriminator_loss(loss: str, real_scores: torch.Tensor, fake_scores: torch.Tensor,
                       alpha: float = DUAL_ALPHA, beta: float = DUAL_BETA) -> torch.Tensor:
    if loss == "dual":
        d1_real, log_d1_real = _positive(real_scores[:, 0])
        d1_fake, _ = _positive(fake_scores[:, 0])
        d2_real, _ = _positive(real_scores[:, 1])
        _, log_d2_fake = _positive(fake_scores[:, 1])
        return (-alpha * log_d1_real.mean() + d1_fake.mean()) + (d2_real.mean() - beta * log_d2_fake.mean())
    if loss == "wgan-gp":
        return fake_scores.mean() - real_scores.mean()
    # minimax and non-saturating share the discriminator: binary cross-entropy, real=1, fake=0.
    return F.softplus(-real_scores).mean() + F.softplus(fake_scores).mean()


def generator_loss(loss: str, fake_scores: torch.Tensor, beta: float = DUAL_BETA) -> torch.Tensor:
    if loss == "dual":
        d1_fake, _ = _positive(fake_scores[:, 0])
        _, log_d2_fake = _positive(fake_scores[:, 1])
        return -d1_fake.mean() + beta * log_d2_fake.mean()
    if loss == "wgan-gp":
        return -fake_scores.mean()
    if loss == "non-saturating":
        return F.softplus(-fake_scores).mean()  # -log sigmoid(s) = -log D(G(z))
    if loss == "minimax":
        return -F.softplus(fake_scores).mean()  # log(1 - sigmoid(s)) = log(1 - D(G(z)))
    raise ValueError(f"unknown loss {loss!r}")


def interpolates(real: torch.Tensor, fake: torch.Tensor, pac: int) -> torch.Tensor:
    """Random points on the lines between real and fake rows, one mixing weight per packed sample (the critic
    judges packs of `pac` rows, so the penalty's Lipschitz constraint is per pack)."""
    n = real.shape[0] // pac
    alpha = torch.rand(n, 1, 1, device=real.device).expand(n, pac, real.shape[1]).reshape(-1, real.shape[1])
    return alpha * real + (1 - alpha) * fake


def gradient_penalty(scores: torch.Tensor, inputs: tuple[torch.Tensor, ...], pac: int, weight: float = 10.0) -> torch.Tensor:
    """(||grad critic(x_hat)|| - 1)^2 per packed sample (WGAN-GP, Gulrajani et al.), from the critic's `scores`
    on interpolates. `inputs`: the tensors the critic's input is made of, each (batch, ·) and requiring grad —
    the interpolates' data columns and their condition rows when the critic takes the condition separately
    (networks.Discriminator's shared-condition form): the norm is over the whole packed input either way."""
    n = scores.shape[0]
    grads = torch.autograd.grad(scores.sum(), inputs, create_graph=True)
    norms = torch.cat([g.reshape(n, -1) for g in grads], dim=1).norm(2, dim=1)
    return weight * ((norms - 1) ** 2).mean()
