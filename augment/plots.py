"""Plots of a fit, for people who would rather look than read: loss curves, marginals and association heatmaps
(real vs synthetic), and a few series of a time-series model. Each returns a matplotlib Figure (Agg backend:
no display needed); the tracking run logs them as PNG artifacts."""

from __future__ import annotations

from ganstream.augment.columns import as_float, is_numeric
from ganstream.augment.metrics import association_frame


def plot_losses(history: list[dict]):
    import matplotlib
    import numpy as np
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4))
    epochs = [h["epoch"] for h in history]
    for key in ("d_loss", "g_loss", "cond_loss", "target_loss", "sup_loss", "wdist"):
        if history and key in history[-1]:
            ax.plot(epochs, [h.get(key, np.nan) for h in history], label=key, marker="." if len(epochs) < 30 else None)
    ax.set_xlabel("epoch"); ax.set_ylabel("loss"); ax.set_title("training losses"); ax.legend()
    fig.tight_layout()
    return fig


def plot_marginals(real, synthetic, max_categories: int = 12):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    cols = list(real.columns)
    ncols = 4
    nrows = max(1, -(-len(cols) // ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(4 * ncols, 3 * nrows), squeeze=False)
    for ax, col in zip(axes.flat, cols):
        if is_numeric(real[col]):
            r, s = as_float(real[col]), as_float(synthetic[col])
            r, s = r[~np.isnan(r)], s[~np.isnan(s)]
            both = np.concatenate([r, s]) if r.size + s.size else np.zeros(1)
            bins = np.histogram_bin_edges(both, bins=30)
            for values, label in ((r, "real"), (s, "synthetic")):  # one artist per histogram, not one per bar
                density = np.histogram(values, bins=bins, density=True)[0] if values.size else np.zeros(len(bins) - 1)
                ax.stairs(density, bins, fill=True, alpha=0.5, label=label)
        else:
            r = real[col].astype(object).where(real[col].notna(), "<missing>").astype(str).str.strip()
            s = synthetic[col].astype(object).where(synthetic[col].notna(), "<missing>").astype(str).str.strip()
            rf, sf = r.value_counts(normalize=True), s.value_counts(normalize=True)
            cats = list(rf.index[:max_categories])
            x = np.arange(len(cats))
            ax.bar(x - 0.2, [rf.get(c, 0.0) for c in cats], width=0.4, label="real")
            ax.bar(x + 0.2, [sf.get(c, 0.0) for c in cats], width=0.4, label="synthetic")
            ax.set_xticks(x, [c[:10] for c in cats], rotation=60, fontsize=6)
        ax.set_title(str(col), fontsize=9)
    for ax in list(axes.flat)[len(cols):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.suptitle("marginals: real vs synthetic")
    # Fixed margins, not tight_layout: it measures every tick label of every panel, 1.2 s of the ~3 s this figure
    # cost each tracked fit (15 panels). The rows leave room for the rotated category labels.
    fig.subplots_adjust(left=0.04, right=0.99, bottom=0.9 / (3 * nrows), top=1 - 0.6 / (3 * nrows), hspace=0.75,
                        wspace=0.25)
    return fig


def plot_associations(real, synthetic):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    numeric = {c: is_numeric(real[c]) for c in real.columns}
    a, b = association_frame(real, numeric), association_frame(synthetic[list(real.columns)], numeric)
    fig, axes = plt.subplots(1, 3, figsize=(18, 6))
    for ax, mat, title, cmap, vmin in ((axes[0], a, "real", "viridis", 0), (axes[1], b, "synthetic", "viridis", 0),
                                       (axes[2], b - a, "synthetic - real", "coolwarm", -1)):
        im = ax.imshow(mat.to_numpy(), vmin=vmin, vmax=1, cmap=cmap)
        ax.set_xticks(range(len(mat)), [str(c)[:12] for c in mat.columns], rotation=90, fontsize=7)
        ax.set_yticks(range(len(mat)), [str(c)[:12] for c in mat.index], fontsize=7)
        ax.set_title(f"associations: {title}")
        fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    return fig
