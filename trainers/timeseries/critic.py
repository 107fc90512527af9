"""The time-series GAN's critic: a temporal convolution over a whole window, optionally also shown the
window's step-to-step changes (and changes of changes), each standardised by its spread in the real data.

Why the difference channels: a WGAN-GP critic is held to slope ~1 in its input, so a gap that is small in
value units is a small signal to it. On smooth series the tell-tale of a generated path is exactly such a
gap: its curvature (second differences, ~0.001 in min-max units on Sines) was 2x the real one while the
values and step sizes matched, and a post-hoc GRU classifier (TimeGAN's discriminative score), which has
no Lipschitz limit, separates on it. Feeding the differences divided by their real standard deviation puts
"how rough is this path" on the same scale as "where is it", so the critic can penalise it.
The standardising scales are buffers: they are saved with the critic and need no config field.
"""

from __future__ import annotations

import torch
import torch.nn as nn


def differences(x: torch.Tensor, mask: torch.Tensor, order: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """[(d^k x, mask of d^k x)] for k = 1..order, left-padded with zeros to the window length; a difference is
    observed only where every point it uses is."""
    out, d, m = [], x, mask
    for _ in range(order):
        d = torch.nn.functional.pad(d[:, 1:] - d[:, :-1], (0, 0, 1, 0))
        m = torch.nn.functional.pad(m[:, 1:] * m[:, :-1], (0, 0, 1, 0))
        out.append((d * m, m))
    return out


class ConvCritic(nn.Module):
    """Temporal-convolution critic over (values x mask, mask, [standardised differences x their mask], static)
    of a whole window. `diff_order` = 0 is the original critic (models saved before the option load as that)."""

    def __init__(self, n_features: int, static_dim: int, seq_len: int, hidden: int, diff_order: int = 0):
        super().__init__()
        self.diff_order = diff_order
        ch = 2 * n_features + diff_order * n_features + static_dim
        self.register_buffer("diff_scale", torch.ones(max(diff_order, 1), n_features))
        self.net = nn.Sequential(
            nn.Conv1d(ch, hidden, 5, padding=2), nn.LeakyReLU(0.2),
            nn.Conv1d(hidden, hidden, 5, padding=2, stride=2), nn.LeakyReLU(0.2),
            nn.Conv1d(hidden, hidden, 5, padding=2, stride=2), nn.LeakyReLU(0.2))
        with torch.no_grad():
            flat = self.net(torch.zeros(1, ch, seq_len)).numel()
        self.out = nn.Sequential(nn.Linear(flat, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, 1))

    @torch.no_grad()
    def fit_scales(self, x: torch.Tensor, mask: torch.Tensor) -> None:
        """Set each difference order's per-feature scale to its standard deviation over observed real points."""
        for k, (d, m) in enumerate(differences(x, mask, self.diff_order)):
            n = m.sum((0, 1)).clamp_min(1.0)
            mean = d.sum((0, 1)) / n
            std = ((((d - mean) * m) ** 2).sum((0, 1)) / n).sqrt()
            self.diff_scale[k] = torch.where(std > 1e-8, std, torch.ones_like(std))

    def forward(self, x: torch.Tensor, mask: torch.Tensor, static: torch.Tensor) -> torch.Tensor:
        B, T, _ = x.shape
        parts = [x * mask, mask]
        for k, (d, m) in enumerate(differences(x, mask, self.diff_order)):
            parts.append(d / self.diff_scale[k])
        parts.append(static.unsqueeze(1).expand(B, T, static.shape[1]))
        return self.out(self.net(torch.cat(parts, 2).transpose(1, 2)).flatten(1)).squeeze(1)
