"""The time-series generator network: an autoregressive GRU on top of an optional linear backbone (see
TimeSeriesGAN's docstring for why)."""

from __future__ import annotations

import torch
import torch.nn as nn

from ganstream.trainers.timeseries.backbone import LinearBackbone
from ganstream.trainers.timeseries.start import StartCopula


class ARGenerator(nn.Module):
    """GRU generator, one step at a time: input (step noise, previous value, static), initial state from the
    series noise and the static attributes. Without a backbone the output is the previous value plus a
    predicted change (the first step starts from 0, so its "change" is the level). With one
    (timeseries/backbone.py) the output is the backbone's linear mean, plus the network's correction, plus the
    backbone's Gaussian innovation S e_t (e: [B, T, F] noise; None = no innovation, the mean path).
    Teacher forcing replaces the previous value by the real one (where observed) for the first `n_teacher[b]`
    steps of row b."""

    def __init__(self, n_features: int, static_dim: int, series_noise: int, step_noise: int, hidden: int, layers: int,
                 backbone: bool = False, seq_len: int = 1, order: int = 1, start_steps: int = 0):
        super().__init__()
        self.n_features, self.layers, self.hidden = n_features, layers, hidden
        self.init = nn.Linear(series_noise + static_dim, hidden * layers)
        self.cells = nn.ModuleList([nn.GRUCell(step_noise + n_features + static_dim, hidden)] +
                                   [nn.GRUCell(hidden, hidden) for _ in range(layers - 1)])
        self.head = nn.Sequential(nn.Linear(hidden, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, n_features))
        self.backbone = LinearBackbone(n_features, seq_len, order) if backbone else None
        self.start = StartCopula(n_features, start_steps) if start_steps else None  # timeseries/start.py
        if backbone:  # start as the fitted VAR(1): the network's correction begins at zero
            nn.init.zeros_(self.head[-1].weight)
            nn.init.zeros_(self.head[-1].bias)

    def forward(self, z0: torch.Tensor, z: torch.Tensor, static: torch.Tensor, teacher: torch.Tensor | None = None,
                mask: torch.Tensor | None = None, n_teacher: torch.Tensor | None = None, e: torch.Tensor | None = None,
                return_mean: bool = False, correction: bool = True):
        """correction=False (backbone only): the backbone's mean and innovations without the network's
        correction (the GRU is not run) — what `extend` uses when the held-out windows say it continues
        better (timeseries/calibration.py `choose_continuation`)."""
        B, T, _ = z.shape
        recurrent = self.backbone is None or correction
        if recurrent:
            h = list(torch.tanh(self.init(torch.cat([z0, static], 1))).chunk(self.layers, dim=1))
        prev = prev2 = torch.zeros(B, self.n_features)
        outs, means = [], []
        for t in range(T):
            if recurrent:
                h[0] = self.cells[0](torch.cat([z[:, t], prev, static], 1), h[0])
                for k in range(1, self.layers):
                    h[k] = self.cells[k](h[k - 1], h[k])
            if self.backbone is None:
                mean = out = prev + self.head(h[-1])  # a step is a change from the previous value: copying is the default
            else:
                mean = self.backbone.mean(prev if t else None, B, prev2 if t > 1 else None)
                if correction:
                    mean = mean + self.head(h[-1])
                out = mean if e is None else mean + self.backbone.innovation(e[:, t], t)
            outs.append(out)
            means.append(mean)
            prev2 = prev
            if teacher is not None:
                use = mask[:, t] * (t < n_teacher).unsqueeze(1).to(out.dtype)
                prev = use * teacher[:, t] + (1 - use) * out
            else:
                prev = out
        out = torch.stack(outs, 1)
        return (out, torch.stack(means, 1)) if return_mean else out
