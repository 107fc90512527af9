"""A linear-Gaussian backbone for the time-series generator: x_t = c + A x_{t-1} + S e_t (a VAR(1)), with the
first step x_0 = m0 + S0 e_0, fitted by least squares on the training windows before any GAN training.

Why: on Energy (28 sensor series) and Stocks a VAR(1) fitted in a second beat the GAN trained for minutes
(TimeGAN discriminative score 0.11 vs 0.50 on Energy; benchmarks/RESULTS.md): a recurrent net started from
random weights spends its whole CPU budget learning the linear part of the dynamics (levels that persist,
sensors that move together) before it can learn anything else. With the backbone the generator *starts* as
that VAR(1); the recurrent net only adds a correction (its output layer starts at zero) that the supervised
warm-up and the adversarial game train, and the Gaussian innovations S e_t give the spread of the paths and of
continuations an explicit, calibrated scale: after the warm-up S and S0 are re-estimated from the teacher-forced
residuals of the whole generator (`recalibrate`), so the spread matches what the mean predictor leaves
unexplained. That residual depends on how much of the series the generator has seen: on Sines the second
step's value carries the series' unknown frequency, the later ones are nearly determined by the first few. So
the innovation at window position t is scaled by `step_scale[t]` (its residual RMS relative to the pooled one;
positions past the window use the last). All of c, A, S, m0, S0 stay trainable; they are ordinary parameters of the generator, saved with it.

`order=2` (`backbone="var2"`): x_t = c2 + A2 [x_{t-1}, x_{t-2}] + S e_t from the third step on, the second step
from its own regression on the first (c, A, S1 fitted on the windows' (step 0, step 1) pairs only). Why: a sine
is exactly linear in its last TWO values (x_t = 2 cos(f) x_{t-1} - x_{t-2}), so on Sines a least-squares VAR(2)
alone scores 0.024 on TimeGAN's discriminative score where the VAR(1) scores 0.40 and the trained GAN on top of
the VAR(1) 0.084 (benchmarks/RESULTS.md run 4); the second step is where a sine's unknown frequency enters, so
it gets its own fit and innovation S1. The VAR(1) (order 1) keeps its parameters and behaviour unchanged.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn


class LinearBackbone(nn.Module):
    def __init__(self, n_features: int, seq_len: int, order: int = 1):
        super().__init__()
        F = n_features
        self.order = order
        self.register_buffer("step_scale", torch.ones(seq_len))
        self.c = nn.Parameter(torch.zeros(F))
        self.A = nn.Parameter(torch.eye(F))
        self.noise = nn.Parameter(torch.zeros(F, F))  # S: innovations S e_t, e_t ~ N(0, I)
        self.mean0 = nn.Parameter(torch.zeros(F))
        self.noise0 = nn.Parameter(torch.zeros(F, F))  # S0: first step m0 + S0 e_0
        if order == 2:  # only then: VAR(1) model dirs keep exactly their state_dict keys
            self.c2 = nn.Parameter(torch.zeros(F))
            self.A2 = nn.Parameter(torch.cat([torch.eye(F), torch.zeros(F, F)], 1))  # [A_lag1, A_lag2]
            self.noise1 = nn.Parameter(torch.zeros(F, F))  # S1: the second step's innovation

    def mean(self, prev: torch.Tensor | None, batch: int, prev2: torch.Tensor | None = None) -> torch.Tensor:
        """The linear part of the next step's mean: m0 at the first step, c + A prev at the second (and at every
        later step for order 1), c2 + A2 [prev, prev2] from the third on for order 2."""
        if prev is None:
            return self.mean0.expand(batch, -1)
        if self.order == 2 and prev2 is not None:
            return self.c2 + torch.cat([prev, prev2], 1) @ self.A2.T
        return self.c + prev @ self.A.T

    def innovation(self, e: torch.Tensor, t: int) -> torch.Tensor:
        """S0 e at the first step; for order 2 S1 e at the second; step_scale[t] S e afterwards (t past the
        window: the last scale)."""
        if t == 0:
            return e @ self.noise0.T
        if t == 1 and self.order == 2:
            return e @ self.noise1.T
        return self.step_scale[min(t, len(self.step_scale) - 1)] * (e @ self.noise.T)

    @torch.no_grad()
    def fit(self, X: torch.Tensor, M: torch.Tensor) -> None:
        """`least_squares_var1` on the windows [W, T, F] (masks M: gaps are left out, not read as zeros);
        first-step mean and covariance from the windows' observed first steps."""
        x = np.where(M.bool().numpy(), X.double().numpy(), np.nan)
        fit = least_squares_var1(x)
        if fit is not None:
            c, A, noise = fit
            self.c.copy_(torch.from_numpy(c))
            self.A.copy_(torch.from_numpy(A))
            self.noise.copy_(torch.from_numpy(noise))
        first = x[:, 0][~np.isnan(x[:, 0]).any(1)]
        if len(first) > 1:
            self.mean0.copy_(torch.from_numpy(first.mean(0)))
            self.noise0.copy_(torch.from_numpy(chol_cov(first)))
        if self.order == 2:
            self._fit_order2(x)

    @torch.no_grad()
    def _fit_order2(self, x: np.ndarray) -> None:
        """Second step on the first (pairs (0, 1) only), later steps on their two predecessors (all triples);
        step_scale from the least-squares residuals' RMS per window position (recalibrated after the warm-up)."""
        step1 = least_squares_var1(x[:, :2])
        if step1 is not None:
            self.c.copy_(torch.from_numpy(step1[0]))
            self.A.copy_(torch.from_numpy(step1[1]))
            self.noise1.copy_(torch.from_numpy(step1[2]))
        W, T, F = x.shape
        if T < 3:
            return
        design = np.concatenate([x[:, 1:-1], x[:, :-2]], 2).reshape(-1, 2 * F)
        target = x[:, 2:].reshape(-1, F)
        ok = ~(np.isnan(design).any(1) | np.isnan(target).any(1))
        if ok.sum() <= 2 * F + 1:
            return
        D = np.hstack([np.ones((ok.sum(), 1)), design[ok]])
        coef, *_ = np.linalg.lstsq(D, target[ok], rcond=None)
        res = target[ok] - D @ coef
        self.c2.copy_(torch.from_numpy(coef[0]))
        self.A2.copy_(torch.from_numpy(coef[1:].T.copy()))
        self.noise.copy_(torch.from_numpy(chol_cov(res)))
        pos = np.broadcast_to(np.arange(2, T), (W, T - 2)).reshape(-1)[ok]
        pooled = np.sqrt((res ** 2).mean())
        for t in range(2, min(T, len(self.step_scale))):
            r = res[pos == t]
            self.step_scale[t] = float(np.sqrt((r ** 2).mean()) / pooled) if len(r) > 1 and pooled > 0 else 1.0

    @torch.no_grad()
    def recalibrate(self, residuals: torch.Tensor, observed: torch.Tensor) -> None:
        """From teacher-forced residuals [B, T, F] of the whole mean predictor on real windows (observed [B, T]:
        steps observed in every feature): S0 from step 0, S from the pooled steps 1.., and each step's scale
        relative to the pooled RMS. What the mean predictor leaves unexplained is what the innovations must make."""
        first = residuals[:, 0][observed[:, 0]]
        if len(first) > 1:
            self.noise0.copy_(torch.from_numpy(chol_cov(first.double().numpy())))
        own = 1 + (self.order == 2)  # steps with their own innovation matrix (S0; and S1 for order 2)
        if self.order == 2:
            second = residuals[:, 1][observed[:, 1]]
            if len(second) > 1:
                self.noise1.copy_(torch.from_numpy(chol_cov(second.double().numpy())))
        later = residuals[:, own:][observed[:, own:]]
        if len(later) <= 1:
            return
        self.noise.copy_(torch.from_numpy(chol_cov(later.double().numpy())))
        pooled = later.pow(2).mean().sqrt()
        for t in range(own, min(residuals.shape[1], len(self.step_scale))):
            r = residuals[:, t][observed[:, t]]
            self.step_scale[t] = r.pow(2).mean().sqrt() / pooled if len(r) > 1 and pooled > 0 else 1.0
        self.step_scale[:own] = 1.0


def least_squares_var1(windows: np.ndarray):
    """x_t = c + A x_{t-1} + S e_t by least squares on every pair of consecutive fully observed steps of the
    windows [W, T, F] (NaN = missing): (c [F], A [F, F], S [F, F] the Cholesky factor of the residuals'
    covariance), or None with too few pairs. Shared by the backbone and the VAR(1) baseline of augment/ts_metrics."""
    F = windows.shape[2]
    prev, nxt = windows[:, :-1].reshape(-1, F), windows[:, 1:].reshape(-1, F)
    ok = ~(np.isnan(prev).any(1) | np.isnan(nxt).any(1))
    if ok.sum() <= F + 1:
        return None
    design = np.hstack([np.ones((ok.sum(), 1)), prev[ok]])
    coef, *_ = np.linalg.lstsq(design, nxt[ok], rcond=None)
    return coef[0], coef[1:].T.copy(), chol_cov(nxt[ok] - design @ coef)


def chol_cov(values: np.ndarray) -> np.ndarray:
    """Cholesky factor of the covariance of the rows of `values` [N, F], with a small relative jitter so a
    degenerate direction (a constant feature) still factors."""
    F = values.shape[1]
    cov = np.cov(values.T).reshape(F, F)
    return np.linalg.cholesky(cov + 1e-8 * (np.trace(cov) / F + 1e-12) * np.eye(F) + 1e-12 * np.eye(F))
