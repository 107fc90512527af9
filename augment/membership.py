"""Membership-inference audit: how well can an attacker who holds only the synthetic rows tell the generator's
training rows from unseen rows of the same distribution?

Why an attack and not only DCR: the distance to the closest record and exact copies are heuristics about the
synthetic rows; an attack's AUC is a statement about the training rows (0.5: the synthetic data gives no signal
about who was in the training set; 1: it reveals membership). Two attacks, as in the DOMIAS paper (van Breugel
et al., AISTATS 2023), both scored on the same candidates: a sample of training rows (members) and as many
unseen holdout rows (non-members).

- distance: a candidate is scored by minus its distance to the nearest synthetic row (a generator that
  memorises puts synthetic rows on top of its members);
- density ratio (DOMIAS): p_synthetic(x) / p_reference(x), each a Gaussian kernel density in a PCA space of the
  featurised rows. The reference density comes from holdout rows that are not candidates: dividing by it
  removes "this row is just typical", which a plain density attack mistakes for membership.

`evaluate` runs it whenever it has a holdout (its figures join the report's privacy section).
`membership_auc` is the larger of the two AUCs: a gate must hold against the stronger attacker. It needs real
rows the generator never saw (a holdout); without one, every real row may have been a training row and the
audit cannot be run.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ganstream.trainers.errors import DataError

MAX_CANDIDATES = 2000  # members and as many non-members; beyond this the AUC's error is below ~0.01
PCA_DIMS = 8  # kernel densities degrade quickly with dimension


def membership_audit(train: pd.DataFrame, holdout: pd.DataFrame, synthetic: pd.DataFrame, seed: int = 0,
                     max_candidates: int = MAX_CANDIDATES) -> dict:
    """{membership_auc, membership_auc_distance, membership_auc_density, membership_candidates}.

    `train`: the generator's training rows; `holdout`: real rows it never saw (half of them become
    non-member candidates, the other half the reference density); `synthetic`: its samples."""
    from sklearn.metrics import roc_auc_score
    from sklearn.neighbors import NearestNeighbors

    from ganstream.augment.metrics import featurize, require_columns
    holdout = require_columns(holdout, train.columns, "holdout table")
    synthetic = require_columns(synthetic, train.columns, "synthetic table")
    n = min(len(train), len(holdout) // 2, max_candidates)
    if n < 20 or len(synthetic) < 20:
        raise DataError(f"the membership audit needs at least 20 training rows, 40 holdout rows and 20 synthetic "
                        f"rows (got {len(train)}, {len(holdout)}, {len(synthetic)})")
    rng = np.random.default_rng(seed)
    members = train.iloc[rng.choice(len(train), n, replace=False)]
    order = rng.permutation(len(holdout))
    non_members, reference = holdout.iloc[order[:n]], holdout.iloc[order[n:]]
    syn = synthetic.iloc[rng.choice(len(synthetic), min(len(synthetic), 5 * max_candidates), replace=False)]
    x_mem, x_non, x_ref, x_syn = featurize([members, non_members, reference, syn], train)
    candidates = np.vstack([x_mem, x_non])
    labels = np.r_[np.ones(n), np.zeros(n)]

    distance = NearestNeighbors(n_neighbors=1).fit(x_syn).kneighbors(candidates)[0][:, 0]
    auc_distance = float(roc_auc_score(labels, -distance))
    auc_density = float(roc_auc_score(labels, _log_density_ratio(x_syn, x_ref, candidates, seed)))
    return {"membership_auc": max(auc_distance, auc_density), "membership_auc_distance": auc_distance,
            "membership_auc_density": auc_density, "membership_candidates": int(2 * n)}


def _log_density_ratio(x_syn: np.ndarray, x_ref: np.ndarray, candidates: np.ndarray, seed: int) -> np.ndarray:
    """log p_synthetic(x) - log p_reference(x), Gaussian KDEs (Scott's bandwidth) in a PCA space fitted on the
    reference rows."""
    from sklearn.decomposition import PCA
    from sklearn.neighbors import KernelDensity
    dims = max(1, min(PCA_DIMS, x_ref.shape[1], len(x_ref) - 1))
    pca = PCA(n_components=dims, random_state=seed).fit(x_ref)
    scale = np.sqrt(np.maximum(pca.explained_variance_, 1e-12))
    z_syn, z_ref, z_cand = (pca.transform(x) / scale for x in (x_syn, x_ref, candidates))
    out = []
    for z in (z_syn, z_ref):
        bandwidth = len(z) ** (-1.0 / (dims + 4))
        out.append(KernelDensity(bandwidth=bandwidth).fit(z).score_samples(z_cand))
    return out[0] - out[1]


def membership_figures(train: pd.DataFrame, holdout: pd.DataFrame, synthetic: pd.DataFrame, seed: int = 0) -> dict:
    """`membership_audit`, or a None figure where the tables are too small for it (a gate then says so)."""
    try:
        return membership_audit(train, holdout, synthetic, seed=seed)
    except DataError:
        return {"membership_auc": None}
