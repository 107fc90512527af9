"""Mode-collapse benchmark: the standard synthetic tests, fitted with the product's TabularGAN.

Settings (stated, so the numbers can be compared):
* ring: 8 Gaussians on a circle of radius 2, sigma = 0.02 (the VEEGAN / D2GAN 2-D setting);
* grid: 5 x 5 Gaussians at {-4, -2, 0, 2, 4}^2, sigma = 0.05 (the PacGAN setting), equal weights;
* long tail: one categorical column of 1,000 categories with Zipf(1) frequencies.

Per loss (minimax, non-saturating, wgan-gp, dual) and packing degree, over several seeds:
* a sample is high quality (HQ) if it lies within 3 sigma of a centre; a mode is captured if it has at
  least one HQ sample (PacGAN's definitions), measured on --eval-samples samples;
* reverse KL( synthetic mode histogram || true mode weights ), every sample assigned to its nearest centre
  (no smoothing needed: the true weights are all > 0, empty synthetic bins contribute 0);
  so it cannot see off-mode samples: their share is 100 - %HQ, reported beside it;
* long tail: sample 10x as many rows as the real table; among categories with >= 10 real rows, the share
  that appears and the worst fold error max(s/r, r/s) of a category's synthetic share s vs its real share r;
  --longtail-eval-epochs scores the same fit mid-training too (how the figures grow with steps).
* `pinned_*` figures: the same model sampled with pin_conditions=True (each row keeps the category its
  true-frequency condition drew in the conditioned column, instead of the generator's own draw).
* --encodings: the TabularGAN numeric encoding of the 2-D fits, "auto" (the default: per column, see
  trainers/mode_encoding.choose_encoding — the ring's and grid's columns get modes), "quantile" or "mode"
  (mode-specific normalisation; training-by-sampling conditions on the mode spans unless --mode-conditions off).
  Each fit records the encoding every column got (`column_encodings`).
Fit times are wall and process CPU seconds (CPU is the figure that survives a shared machine).

A scatter of real vs synthetic (seed 0) per loss and packing degree is saved as PNG in benchmarks/results/
(and copied to docs/ for docs/mode_collapse.md). Fits run in --jobs processes of one torch thread each.

    python benchmarks/mode_collapse.py --seeds 0 1 2 3 4 --jobs 2
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

LOSSES = ("minimax", "non-saturating", "wgan-gp", "dual")
RING = {"modes": 8, "radius": 2.0, "sigma": 0.02}
GRID = {"side": 5, "spacing": 2.0, "sigma": 0.05}
LONG_TAIL = {"categories": 1000, "zipf": 1.0, "min_real_rows": 10, "oversample": 10}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", nargs="+", default=["ring", "grid", "longtail"], choices=["ring", "grid", "longtail"])
    p.add_argument("--losses", nargs="+", default=list(LOSSES), choices=LOSSES)
    p.add_argument("--pacs", type=int, nargs="+", default=[1, 10], help="packing degrees (default 1 10)")
    p.add_argument("--longtail-pacs", type=int, nargs="+", default=[10], help="packing degrees for the long tail (default 10)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--rows", type=int, default=10_000, help="real rows of the 2-D datasets (default 10000)")
    p.add_argument("--longtail-rows", type=int, default=20_000, help="real rows of the long-tail table (default 20000)")
    p.add_argument("--epochs", type=int, default=100, help="epochs per 2-D fit (default 100 = 2000 steps at batch 500)")
    p.add_argument("--longtail-epochs", type=int, default=10, help="epochs per long-tail fit (default 10 = 400 steps)")
    p.add_argument("--batch-size", type=int, default=500)
    p.add_argument("--encodings", nargs="+", default=["auto"], choices=["auto", "quantile", "mode"],
                   help="numeric encodings of the 2-D fits (TabularGAN numeric_encoding; default auto, the model's)")
    p.add_argument("--mode-conditions", choices=["on", "off"], default="on",
                   help="numeric encodings 'mode' / 'auto': training-by-sampling also conditions on the mode spans "
                   "(default on, the model's default)")
    p.add_argument("--longtail-eval-epochs", type=int, nargs="*", default=[],
                   help="long tail: also score after these epochs (the same fit, sampled mid-training)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="a TabularGAN config override for every fit (numbers only, e.g. --set frequency_weight=10; "
                   "repeatable); recorded per fit and shown in the encoding column")
    p.add_argument("--dual-alpha", type=float, default=None, help="loss 'dual': alpha (default: the model's)")
    p.add_argument("--dual-beta", type=float, default=None, help="loss 'dual': beta (default: the model's)")
    p.add_argument("--eval-samples", type=int, default=2500, help="samples scored per 2-D fit (PacGAN: 2500)")
    p.add_argument("--jobs", type=int, default=1, help="parallel fits, one torch thread each (default 1)")
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "mode_collapse.json"))
    p.add_argument("--no-plots", action="store_true")
    p.add_argument("--plot-data", default="/tmp/ganstream_mode_collapse_plots.jsonl",
                   help="where the seed-0 samples for the plots are appended after every fit")
    p.add_argument("--replot", action="store_true", help="only redraw the PNGs from --plot-data and --out")
    p.add_argument("--merge", nargs="+", metavar="JSON", help="combine the fits of earlier runs' JSONs (e.g. a run "
                   "cut short and its continuation) into --out, with plots from --merge-plots")
    p.add_argument("--merge-plots", nargs="*", default=[], metavar="JSONL", help="their --plot-data files")
    return p.parse_args(argv)


# ------------------------------------------------------------------------------------------- data
def centres(dataset: str) -> tuple[np.ndarray, float]:
    if dataset == "ring":
        theta = 2 * np.pi * np.arange(RING["modes"]) / RING["modes"]
        return RING["radius"] * np.stack([np.cos(theta), np.sin(theta)], axis=1), RING["sigma"]
    axis = GRID["spacing"] * (np.arange(GRID["side"]) - (GRID["side"] - 1) / 2)
    xx, yy = np.meshgrid(axis, axis)
    return np.stack([xx.ravel(), yy.ravel()], axis=1), GRID["sigma"]


def mixture(dataset: str, n: int, seed: int):
    import pandas as pd
    c, sigma = centres(dataset)
    rng = np.random.default_rng(10_000 + seed)
    x = c[rng.integers(0, len(c), n)] + sigma * rng.standard_normal((n, 2))
    return pd.DataFrame(x, columns=["x", "y"])


def long_tail(n: int, seed: int):
    import pandas as pd
    k = LONG_TAIL["categories"]
    p = 1.0 / np.arange(1, k + 1) ** LONG_TAIL["zipf"]
    rng = np.random.default_rng(20_000 + seed)
    codes = rng.choice(k, size=n, p=p / p.sum())
    return pd.DataFrame({"category": pd.Series([f"c{i:04d}" for i in codes], dtype=object)})


# ---------------------------------------------------------------------------------------- scoring
def score_modes(samples: np.ndarray, dataset: str) -> dict:
    """PacGAN's mode metrics, vectorized: one distance matrix (samples x centres)."""
    c, sigma = centres(dataset)
    dist = np.linalg.norm(samples[:, None, :] - c[None, :, :], axis=2)
    nearest, d_min = dist.argmin(axis=1), dist.min(axis=1)
    hq = d_min <= 3 * sigma
    captured = np.bincount(nearest[hq], minlength=len(c)) > 0
    q = np.bincount(nearest, minlength=len(c)) / len(samples)
    p = np.full(len(c), 1.0 / len(c))
    nz = q > 0
    return {"modes": int(len(c)), "modes_captured": int(captured.sum()), "hq_percent": float(100 * hq.mean()),
            "reverse_kl": float(np.sum(q[nz] * np.log(q[nz] / p[nz])))}


def score_long_tail(real, synthetic) -> dict:
    r = real["category"].value_counts()
    s = synthetic["category"].value_counts().reindex(r.index, fill_value=0)
    frequent = r >= LONG_TAIL["min_real_rows"]
    real_share, syn_share = r / r.sum(), s / len(synthetic)
    fold = np.maximum(syn_share / real_share, real_share / syn_share.where(syn_share > 0))
    f = fold[frequent]
    return {"categories_real": int(len(r)), "frequent": int(frequent.sum()),
            "frequent_appearing": int((s[frequent] > 0).sum()),
            "frequent_within_2x": int((f <= 2).sum()),
            "worst_fold": float(f.max()) if f.notna().all() else None,
            "all_appearing": int((s > 0).sum())}


# -------------------------------------------------------------------------------------------- fit
def run_one(task: dict) -> dict:
    os.environ["GANSTREAM_THREADS"] = "1"
    import torch
    torch.set_num_threads(1)
    from ganstream.trainers.tabular.model import TabularGAN
    ds, loss, pac, seed = task["dataset"], task["loss"], task["pac"], task["seed"]
    real = long_tail(task["rows"], seed) if ds == "longtail" else mixture(ds, task["rows"], seed)
    t0, c0 = time.perf_counter(), time.process_time()
    dual = {k: task[k] for k in ("dual_alpha", "dual_beta") if task.get(k) is not None}
    model = TabularGAN(epochs=task["epochs"], batch_size=task["batch_size"], loss=loss, pac=pac, seed=seed,
                       numeric_encoding=task["encoding"], condition_on_modes=task["condition_on_modes"], **dual,
                       **task.get("overrides", {}))
    curve, eval_cpu = [], 0.0

    def checkpoint(metrics: dict) -> None:
        """Long tail: score the generator mid-fit (sampling uses its own seeded RNGs, so the fit's own
        random stream is untouched; the generator is put back in training mode)."""
        nonlocal eval_cpu
        if ds == "longtail" and metrics["epoch"] in task["eval_epochs"] and metrics["epoch"] < task["epochs"]:
            c = time.process_time()
            figs = score_long_tail(real, model.sample(LONG_TAIL["oversample"] * len(real), seed=seed))
            pinned = score_long_tail(real, model.sample(LONG_TAIL["oversample"] * len(real), seed=seed, pin_conditions=True))
            figs.update({f"pinned_{k}": v for k, v in pinned.items()})
            model.generator.train()
            curve.append({"epoch": metrics["epoch"], "steps": metrics["epoch"] * (len(real) // task["batch_size"]), **figs})
            eval_cpu += time.process_time() - c

    model.fit(real, progress=checkpoint)
    fit_s, fit_cpu_s = time.perf_counter() - t0, time.process_time() - c0 - eval_cpu
    if ds == "longtail":
        synthetic = model.sample(LONG_TAIL["oversample"] * len(real), seed=seed)
        figures = score_long_tail(real, synthetic)
        pinned = score_long_tail(real, model.sample(LONG_TAIL["oversample"] * len(real), seed=seed, pin_conditions=True))
        figures.update({f"pinned_{k}": v for k, v in pinned.items()})
        curve.append({"epoch": task["epochs"], "steps": task["epochs"] * (len(real) // task["batch_size"]), **figures})
        figures["curve"] = curve
        plot = {"real": real["category"].value_counts().to_numpy().tolist(),
                "synthetic": synthetic["category"].value_counts().to_numpy().tolist()}
    else:
        synthetic = model.sample(task["eval_samples"], seed=seed)
        xy = synthetic[["x", "y"]].to_numpy()
        figures = score_modes(xy, ds)
        pinned = score_modes(model.sample(task["eval_samples"], seed=seed, pin_conditions=True)[["x", "y"]].to_numpy(), ds)
        figures.update({f"pinned_{k}": v for k, v in pinned.items()})
        plot = {"real": real.to_numpy()[:2500].tolist(), "synthetic": xy.tolist()}
    if loss == "dual":
        figures.update(dual_alpha=model.config.dual_alpha, dual_beta=model.config.dual_beta)
    columns = {c: model.encoder.column_encoding(c) for c in model.encoder.numeric_params}
    return {**{k: task[k] for k in ("dataset", "loss", "pac", "seed", "epochs", "encoding", "condition_on_modes",
                                     "overrides")}, "column_encodings": columns,
            **figures, "fit_s": fit_s, "fit_cpu_s": fit_cpu_s, "plot": plot if seed == task["plot_seed"] else None}


def tasks(args) -> list[dict]:
    """All fits, most important first (the default packing, then the long tail, then the other packings), so
    that a run cut short still answers the main question; results are written after every fit."""
    out = []
    for ds in args.datasets:
        pacs = args.longtail_pacs if ds == "longtail" else args.pacs
        for loss, pac, encoding in [(l, p, e) for l in args.losses for p in pacs
                                    for e in (["auto"] if ds == "longtail" else args.encodings)]:  # long tail: no numeric column
            for seed in args.seeds:
                lt = ds == "longtail"
                out.append({"dataset": ds, "loss": loss, "pac": pac, "seed": seed, "encoding": encoding,
                            "condition_on_modes": args.mode_conditions == "on" and encoding != "quantile",
                            "eval_epochs": args.longtail_eval_epochs,
                            "rows": args.longtail_rows if lt else args.rows,
                            "epochs": args.longtail_epochs if lt else args.epochs,
                            "batch_size": args.batch_size, "eval_samples": args.eval_samples,
                            "dual_alpha": args.dual_alpha, "dual_beta": args.dual_beta,
                            "overrides": parse_overrides(args.overrides), "plot_seed": args.seeds[0]})
    default_pac = max(args.pacs)
    return sorted(out, key=lambda t: (0 if t["dataset"] != "longtail" and t["pac"] == default_pac
                                      else 1 if t["dataset"] == "longtail" else 2, t["seed"]))


# ----------------------------------------------------------------------------------- aggregation
def label(r: dict) -> str:
    return f"dual {r['dual_alpha']:g}/{r['dual_beta']:g}" if r["loss"] == "dual" else r["loss"]


def parse_overrides(items: list[str]) -> dict:
    """--set KEY=VALUE pairs as numbers (the options compared here are weights and switches)."""
    out = {}
    for item in items:
        key, _, value = item.partition("=")
        try:
            out[key] = int(value) if value.lstrip("-").isdigit() else float(value)
        except ValueError:
            raise SystemExit(f"--set {item}: the value must be a number") from None
    return out


def encoding_label(r: dict) -> str:
    """Fits from before the encoding option used the quantile encoder; --set overrides are appended
    (freq=W for frequency_weight)."""
    enc = r.get("encoding", "quantile")
    extra = "".join(f"+{'freq' if k == 'frequency_weight' else k}={v:g}" for k, v in sorted(r.get("overrides", {}).items()))
    return enc + ("+cond" if r.get("condition_on_modes") else "") + extra if r["dataset"] != "longtail" else "-"


def summarize(results: list[dict]) -> list[dict]:
    groups: dict[tuple, list[dict]] = {}
    for r in results:
        groups.setdefault((r["dataset"], label(r), r["pac"], encoding_label(r), r["epochs"]), []).append(r)
    rows = []
    for (ds, loss, pac, encoding, epochs), rs in groups.items():
        keys = (["frequent", "frequent_appearing", "frequent_within_2x", "worst_fold", "all_appearing"]
                if ds == "longtail" else ["modes_captured", "hq_percent", "reverse_kl"])
        keys += [f"pinned_{k}" for k in keys if all(f"pinned_{k}" in r for r in rs)]
        row = {"dataset": ds, "loss": loss, "pac": pac, "encoding": encoding, "epochs": epochs, "seeds": len(rs),
               "seed_list": [r["seed"] for r in rs], "fit_s_mean": float(np.mean([r["fit_s"] for r in rs])),
               "fit_cpu_s_mean": (float(np.mean([r["fit_cpu_s"] for r in rs])) if all("fit_cpu_s" in r for r in rs)
                                  else None)}
        for k in keys:
            v = np.array([np.nan if r[k] is None else r[k] for r in rs], dtype=float)
            row[k] = {"mean": float(np.nanmean(v)) if np.isfinite(v).any() else None,
                      "std": float(np.nanstd(v)) if np.isfinite(v).any() else None,
                      "min": float(np.nanmin(v)) if np.isfinite(v).any() else None,
                      "max": float(np.nanmax(v)) if np.isfinite(v).any() else None,
                      "per_seed": [None if np.isnan(x) else float(x) for x in v]}
        rows.append(row)
    return rows


def _ms(d: dict, digits: int = 2) -> str:
    return "n/a" if d["mean"] is None else f"{d['mean']:.{digits}f}±{d['std']:.{digits}f}"


def print_table(rows: list[dict]) -> None:
    two_d = [r for r in rows if r["dataset"] != "longtail"]
    if two_d:
        print(f"{'data':<5} {'loss':<15} {'pac':>3} {'encoding':<18} {'ep':>3} {'seeds':>5}  {'modes captured':>16} {'min':>4}  "
              f"{'% HQ':>13} {'min':>5}  {'reverse KL':>13} {'max':>6}  {'fit s':>6} {'cpu s':>6}  {'pinned: %HQ':>11} {'rKL':>13}")
        for r in two_d:
            cpu = "n/a" if r.get("fit_cpu_s_mean") is None else f"{r['fit_cpu_s_mean']:.1f}"
            print(f"{r['dataset']:<5} {r['loss']:<15} {r['pac']:>3} {r.get('encoding', 'quantile'):<18} "
                  f"{r.get('epochs', 0):>3} {r['seeds']:>5}  {_ms(r['modes_captured'], 1):>16} "
                  f"{r['modes_captured']['min']:>4.0f}  {_ms(r['hq_percent'], 1):>13} {r['hq_percent']['min']:>5.1f}  "
                  f"{_ms(r['reverse_kl'], 3):>13} {r['reverse_kl']['max']:>6.3f}  {r['fit_s_mean']:>6.1f} {cpu:>6}  "
                  + (f"{_ms(r['pinned_hq_percent'], 1):>11} {_ms(r['pinned_reverse_kl'], 3):>13}" if "pinned_hq_percent" in r else ""))
    lt = [r for r in rows if r["dataset"] == "longtail"]
    if lt:
        print(f"\n{'long tail':<15} {'pac':>3} {'ep':>4} {'seeds':>5}  {'>=10-row cats appearing':>24}  {'within 2x':>14}  "
              f"{'worst fold':>12}  {'fit s':>6} {'cpu s':>6}")
        for r in lt:
            n = r["frequent"]["mean"]
            cpu = "n/a" if r.get("fit_cpu_s_mean") is None else f"{r['fit_cpu_s_mean']:.1f}"
            print(f"{r['loss']:<15} {r['pac']:>3} {r.get('epochs', 0):>4} {r['seeds']:>5}  {_ms(r['frequent_appearing'], 1):>18} /{n:>4.0f}  "
                  f"{_ms(r['frequent_within_2x'], 1):>14}  {_ms(r['worst_fold'], 2):>12}  {r['fit_s_mean']:>6.1f} {cpu:>6}"
                  + (f"   pinned: within 2x {_ms(r['pinned_frequent_within_2x'], 1)}, worst fold "
                     f"{_ms(r['pinned_worst_fold'], 2)}" if "pinned_frequent_within_2x" in r else ""))


def plot(results: list[dict], out_dir: Path, docs_dir: Path, stem: str = "mode_collapse") -> list[str]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    written = []
    shown = [r for r in results if r["plot"] is not None]
    for ds in ("ring", "grid"):
        rs = [r for r in shown if r["dataset"] == ds]
        if not rs:
            continue
        order = {l: i for i, l in enumerate(LOSSES)}
        losses = sorted({label(r) for r in rs}, key=lambda l: (order[l.split()[0]], l))
        pacs = sorted({r["pac"] for r in rs})
        fig, axes = plt.subplots(len(pacs), len(losses), figsize=(3.2 * len(losses), 3.2 * len(pacs)), squeeze=False)
        lim = 2.6 if ds == "ring" else 5.2
        for i, pac in enumerate(pacs):
            for j, loss in enumerate(losses):
                ax = axes[i][j]
                for r in rs:
                    if label(r) == loss and r["pac"] == pac:
                        real, syn = np.asarray(r["plot"]["real"]), np.asarray(r["plot"]["synthetic"])
                        ax.scatter(real[:, 0], real[:, 1], s=60, c="0.75", alpha=0.3, linewidths=0, label="real")
                        ax.scatter(syn[:, 0], syn[:, 1], s=2, c="tab:red", alpha=0.6, label="synthetic")
                        ax.set_title(f"{loss}, pac={pac}, {r.get('encoding', 'quantile')}\n{r['modes_captured']}/"
                                     f"{r['modes']} modes, {r['hq_percent']:.0f}% HQ", fontsize=9)
                if not ax.collections:
                    ax.text(0.5, 0.5, "not run", ha="center", va="center", transform=ax.transAxes, fontsize=8)
                ax.set_xlim(-lim, lim); ax.set_ylim(-lim, lim); ax.set_aspect("equal"); ax.tick_params(labelsize=7)
        axes[0][0].legend(loc="lower left", fontsize=7, markerscale=4)
        fig.suptitle(f"{ds}: real (grey halo) vs synthetic (red dots), seed {rs[0]['seed']}", fontsize=10)
        fig.tight_layout()
        path = out_dir / f"{stem}_{ds}.png"
        fig.savefig(path, dpi=90)
        plt.close(fig)
        written.append(str(path))
    lt = [r for r in shown if r["dataset"] == "longtail"]
    if lt:
        fig, ax = plt.subplots(figsize=(5.5, 4))
        real = np.asarray(lt[0]["plot"]["real"], dtype=float)
        ax.loglog(np.arange(1, len(real) + 1), real / real.sum(), c="k", lw=2, label="real")
        for r in lt:
            syn = np.asarray(r["plot"]["synthetic"], dtype=float)
            ax.loglog(np.arange(1, len(syn) + 1), syn / syn.sum(), lw=1, label=f"{label(r)} (pac {r['pac']})")
        ax.set_xlabel("category rank"); ax.set_ylabel("share"); ax.legend(fontsize=7)
        ax.set_title("long tail: rank-frequency, real vs synthetic (10x rows)", fontsize=9)
        fig.tight_layout()
        path = out_dir / f"{stem}_longtail.png"
        fig.savefig(path, dpi=90)
        plt.close(fig)
        written.append(str(path))
    docs_dir.mkdir(exist_ok=True)
    for w in written:
        shutil.copy(w, docs_dir / Path(w).name)
    return written


def divergence_figure(path: Path) -> None:
    """One Gaussian q fitted to a two-mode mixture p by KL(p||q) (moment matching, exact) and by reverse
    KL(q||p) (grid search, numerical integration): mode covering vs mode seeking."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from scipy.stats import norm
    x = np.linspace(-8, 8, 4001)
    dx = x[1] - x[0]
    p = 0.6 * norm.pdf(x, -2.5, 0.7) + 0.4 * norm.pdf(x, 2.5, 0.7)
    mean = np.sum(x * p) * dx
    forward = norm.pdf(x, mean, np.sqrt(np.sum((x - mean) ** 2 * p) * dx))
    best, reverse = np.inf, None
    for mu in np.linspace(-4, 4, 161):
        for sd in np.linspace(0.3, 4, 75):
            q = norm.pdf(x, mu, sd)
            kl = np.sum(q * (np.log(q + 1e-300) - np.log(p + 1e-300))) * dx
            if kl < best:
                best, reverse = kl, q
    fig, ax = plt.subplots(figsize=(6, 2.8))
    ax.fill_between(x, p, color="0.8", label="data p (two modes)")
    ax.plot(x, forward, c="tab:blue", label="argmin KL(p||q): covers both")
    ax.plot(x, reverse, c="tab:red", label="argmin KL(q||p): seeks one")
    ax.set_xlim(-6, 6); ax.set_yticks([]); ax.legend(fontsize=7, loc="upper right", frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def replot(args) -> int:
    out = Path(args.out)
    results = [json.loads(line) for line in open(args.plot_data)]
    pngs = plot(results, out.parent, REPO / "docs", out.stem)
    divergence_figure(REPO / "docs" / "mode_collapse_divergences.png")
    print("\n".join(pngs))
    return 0


def merge(args) -> int:
    """One summary over several runs' fits (each fit keeps the settings it ran with: `epochs`, and for
    `dual` the alpha/beta of that run, which are recorded per part)."""
    parts = [json.loads(Path(p).read_text()) for p in args.merge]
    fits = [f for part in parts for f in part["per_fit"]]
    plots = [json.loads(line) for p in args.merge_plots for line in open(p)]
    for f in fits + plots:  # runs before dual_alpha/beta were recorded used the then-default 0.2 / 0.1
        if f["loss"] == "dual" and "dual_alpha" not in f:
            f.update(dual_alpha=0.2, dual_beta=0.1)
    seen, unique = {}, []
    for f in fits:  # a fit repeated in two runs (same seed, same settings) counts once; fits are deterministic
        key = (f["dataset"], label(f), f["pac"], f["seed"], f["epochs"], encoding_label(f))
        if key in seen:
            same = all(f.get(k) == seen[key].get(k) for k in ("modes_captured", "hq_percent", "reverse_kl", "worst_fold"))
            print(f"repeated fit {key}: {'identical figures' if same else 'DIFFERENT figures'}", file=sys.stderr)
            continue
        seen[key] = f
        unique.append(f)
    fits = unique
    rows = summarize(fits)
    print_table(rows)
    out = Path(args.out)
    pngs = plot(plots, out.parent, REPO / "docs", out.stem) if plots else []
    divergence_figure(REPO / "docs" / "mode_collapse_divergences.png")
    meta = [m for p in parts for m in (p["parts"] if "parts" in p else  # an earlier merge: keep its parts
                                       [{"settings": p["settings"], "fits_done": p.get("fits_done"),
                                         "fits_planned": p.get("fits_planned"), "wall_s": p["wall_s"],
                                         "complete": p.get("complete")}])]
    out.write_text(json.dumps({"parts": meta,
                               "summary": rows, "plots": pngs, "per_fit": fits}, indent=1))
    print(f"wrote {out}")
    return 0


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.replot:
        return replot(args)
    if args.merge:
        return merge(args)
    todo = tasks(args)
    if os.path.exists(args.plot_data):
        os.remove(args.plot_data)
    t0 = time.perf_counter()
    print(f"{len(todo)} fits, {args.jobs} job(s)", file=sys.stderr)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    results = []

    def record(done: bool) -> dict:
        return {"settings": {"ring": RING, "grid": GRID, "long_tail": LONG_TAIL, **vars(args)},
                "complete": done, "fits_done": len(results), "fits_planned": len(todo),
                "wall_s": time.perf_counter() - t0, "summary": summarize(results),
                "per_fit": [{k: v for k, v in r.items() if k != "plot"} for r in results]}

    def collect(r: dict) -> None:
        results.append(r)
        if r["plot"] is not None:
            with open(args.plot_data, "a") as f:
                f.write(json.dumps(r) + "\n")
        print(f"  [{len(results)}/{len(todo)}] {r['dataset']} {r['loss']} pac={r['pac']} seed={r['seed']}: "
              f"{r['fit_s']:.0f}s", file=sys.stderr, flush=True)
        out.write_text(json.dumps(record(False), indent=1))  # partial results survive an interrupted run

    if args.jobs > 1:
        import multiprocessing as mp
        with ProcessPoolExecutor(args.jobs, mp_context=mp.get_context("spawn")) as pool:
            for r in pool.map(run_one, todo):
                collect(r)
    else:
        for t in todo:
            collect(run_one(t))
    final = record(True)
    print_table(final["summary"])
    print(f"\nwall time {final['wall_s']:.0f} s for {len(todo)} fits ({args.jobs} job(s), 1 torch thread each)")
    final["plots"] = [] if args.no_plots else plot(results, out.parent, REPO / "docs", out.stem)
    if not args.no_plots:
        divergence_figure(REPO / "docs" / "mode_collapse_divergences.png")
    out.write_text(json.dumps(final, indent=1))
    print(f"wrote {out}" + (f" and {len(final['plots'])} PNG(s)" if final["plots"] else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
