"""Where a generated series starts: a Gaussian copula over the first steps of the training windows (the first
value of each feature and, for a VAR(2) backbone, its first change), with each margin kept as its empirical
quantiles. `sample` draws such a start and then runs the generator teacher-forced over it, exactly as `extend`
continues a real history.

Why: the backbone's own start is Gaussian (m0 + S0 e0, then the second step's regression + S1 e1). Real first
steps need not be: on Sines the first value is uniform on [0.5, 0.55] and the first change uniform on
[0, 0.05], so a Gaussian start puts ~4% of the series below the range and ~4% going down at first, which no
real sine does, and every later step inherits it. Measured on Sines (2026-12-03, one model, TimeGAN's
discriminative score, 5 classifiers): 0.0153 with the Gaussian start, 0.0065 starting from real windows' first
two steps. The copula keeps the margins' shapes (uniform, skewed, bounded) and their dependence (rank
correlations) without storing any window: a model directory holds Q quantiles per margin and one correlation
factor, not data rows (the extreme quantiles are the training data's own minimum and maximum).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
from scipy.special import ndtri

from ganstream.trainers.column_values import values_from_normal_scores
from ganstream.trainers.timeseries.backbone import chol_cov

QUANTILES = 257  # quantile levels per margin: 0, 1/256, ..., 1


class StartCopula(nn.Module):
    """Draws the first `steps` values [B, steps, F] of a series. Margins: the first value of each feature and
    (steps = 2) its first change; dependence: the correlation of their normal scores. All state is buffers, so
    it is saved and loaded with the generator's state_dict."""

    def __init__(self, n_features: int, steps: int):
        super().__init__()
        self.n_features, self.steps = n_features, steps
        D = n_features * steps
        self.register_buffer("quantiles", torch.zeros(QUANTILES, D, dtype=torch.float64))
        self.register_buffer("corr_factor", torch.eye(D, dtype=torch.float64))
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))

    @torch.no_grad()
    def fit(self, X: torch.Tensor, M: torch.Tensor, min_windows: int = 16) -> bool:
        """From windows X [W, T, F] whose first `steps` steps are fully observed (masks M); with fewer than
        `min_windows` such windows it stays unfitted and the generator keeps its Gaussian start. Returns fitted."""
        complete = M[:, : self.steps].bool().reshape(len(M), -1).all(1)
        margins = self._to_margins(X[complete, : self.steps].double().numpy())
        if len(margins) < min_windows:
            self.fitted.fill_(False)
            return False
        self.quantiles.copy_(torch.from_numpy(np.quantile(margins, np.linspace(0, 1, QUANTILES), axis=0)))
        ranks = margins.argsort(0, kind="stable").argsort(0, kind="stable")
        scores = ndtri((ranks + 0.5) / len(margins))
        self.corr_factor.copy_(torch.from_numpy(chol_cov(scores)))
        self.fitted.fill_(True)
        return True

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n starts [n, steps, F] (float32), from correlated normals through each margin's quantiles."""
        z = torch.randn(n, self.quantiles.shape[1], generator=generator, dtype=torch.float64) @ self.corr_factor.T
        z = (z / self.corr_factor.norm(dim=1)).numpy()  # each margin's normal score has unit variance
        q = self.quantiles.numpy()
        values = np.stack([values_from_normal_scores(z[:, d], q[:, d]) for d in range(q.shape[1])], 1)
        return self._from_margins(torch.from_numpy(values)).float()

    def _to_margins(self, first: np.ndarray) -> np.ndarray:
        """[W, steps, F] -> [W, steps * F]: the first values, then the first changes."""
        parts = [first[:, 0]] + ([first[:, 1] - first[:, 0]] if self.steps == 2 else [])
        return np.concatenate(parts, 1)

    def _from_margins(self, values: torch.Tensor) -> torch.Tensor:
        F = self.n_features
        first = values[:, :F]
        steps = [first] + ([first + values[:, F:]] if self.steps == 2 else [])
        return torch.stack(steps, 1)

