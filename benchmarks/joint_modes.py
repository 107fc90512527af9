"""Joint-structure mode benchmark: mixtures whose modes are NOT a product of the column marginals.

Why: an axis-aligned grid (benchmarks/mode_collapse.py) is the product of its two marginals, so a model that
learns each column alone, without any joint structure, already captures 25/25 modes with high quality (the
`marginals` arm below shows it). Rotating the data (and using anisotropic or higher-dimensional mixtures)
removes that shortcut; the scoring below is rotation invariant, so a rotated set is exactly as hard to score
well on as the unrotated one for a model that learns the joint distribution.

Datasets (every seed draws its own structure: rotation, phase, centres, orientations, all seeded):
* grid-rotated: 5 x 5 Gaussians at spacing 2 centred at 0, sigma 0.05, rotated by an angle uniform in
  [15, 75] deg (the grid is symmetric under 90 deg turns, so this keeps it >= 15 deg from axis-aligned; near
  45 deg the projections of the 25 centres coincide in 9 values per axis, so independent marginals land on a
  lattice containing the true modes and score a higher %HQ there than at other angles: see `structure`);
* ring-rotated: 8 Gaussians on a circle of radius 2, sigma 0.02; the ring is symmetric under 45 deg turns, so
  a rotation is a phase: drawn uniform in [10, 35] deg (mod 45), no mode within 10 deg of an axis;
* anisotropic: 6 Gaussians in 2-D, centres uniform in [-4, 4]^2 with pairwise distance >= 3, each with a random
  orientation and sds 0.4 x 0.08 (axis ratio 5:1), equal weights;
* mixture-5d: 10 isotropic Gaussians in 5-D, sigma 0.1, centres uniform in [-3, 3]^5 with pairwise distance
  >= 2, then rotated by a random rotation matrix (Haar, scipy special_ortho_group);
* grid-axis: the axis-aligned 5 x 5 grid of mode_collapse.py (a control, not the headline).
Columns x0..x{d-1}; --rows real rows per dataset and seed (default 10000).

Scoring (PacGAN's, generalised to any covariance, on --eval-samples samples per fit, default 2500):
* every sample is assigned to the centre of smallest Mahalanobis distance (each component's true covariance);
* it is high quality (HQ) if that distance is <= r_d = sqrt(chi2.ppf(1 - exp(-4.5), d)): a real sample lands
  inside with probability 1 - exp(-4.5) = 98.89%, the same as PacGAN's "within 3 sigma" in 2-D (r_2 = 3);
* a mode is captured if it has >= 1 HQ sample (a weak test on its own: scattered off-mode mass also hits every
  mode once in a while, so read it beside %HQ);
* reverse KL = sum q log(q / p) of the nearest-centre histogram q vs the true weights p (as mode_collapse.py;
  blind to off-mode samples, whose share is 100 - %HQ).
The `real` arm scores a fresh sample of the true mixture: the ceiling (~98.9% HQ, all modes).

Arms: real (reference); marginals (each column resampled independently from the real column, seeded);
ganstream (TabularGAN(epochs, batch_size 500, seed) with defaults otherwise, plus --set overrides, which are
recorded); ctgan (ctgan 0.12.1 in its own venv, benchmarks/peers/ctgan_fit_sample.py, the same epochs, batch
size and seed, one thread: torch, BLAS and its joblib preprocessing). Per fit: wall and process CPU seconds of
the fit, and CPU seconds per epoch of the training loop alone (preprocessing excluded, for both GANs). Fits run
in --jobs processes, one torch thread each.
Results are written after every fit (--resume skips fits already there); one scatter PNG per dataset (first
seed, first two coordinates, HQ samples blue, off-mode red) goes next to --out.

    bash benchmarks/peers/setup_ctgan_venv.sh .benchmarks-venv-ctgan
    python benchmarks/joint_modes.py --jobs 1
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

# One thread everywhere, before numpy starts; inherited by ctgan's subprocess, where LOKY_MAX_CPU_COUNT=1 also keeps
# its DataTransformer's joblib Parallel(n_jobs=-1) in-process (else worker processes whose CPU the fit misses).
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "LOKY_MAX_CPU_COUNT"):
    os.environ.setdefault(_var, "1")
import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

DATASETS = ("grid-rotated", "ring-rotated", "anisotropic", "mixture-5d", "grid-axis")
ARMS = ("real", "marginals", "ganstream", "ctgan")
P_HQ = 1 - np.exp(-4.5)  # PacGAN's 3-sigma rule in 2-D: P(chi2_2 <= 9)
GRID = {"side": 5, "spacing": 2.0, "sigma": 0.05, "angle_deg": (15, 75)}
RING = {"modes": 8, "radius": 2.0, "sigma": 0.02, "phase_deg": (10, 35)}
ANISOTROPIC = {"modes": 6, "box": 4.0, "min_distance": 3.0, "sd_long": 0.4, "sd_short": 0.08}
MIXTURE_5D = {"modes": 10, "dim": 5, "box": 3.0, "min_distance": 2.0, "sigma": 0.1}
STREAM = {"structure": 1, "train": 2, "reference": 3, "marginals": 4}  # independent seeded random streams
CTGAN_PEER = REPO / "benchmarks" / "peers" / "ctgan_fit_sample.py"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    p.add_argument("--arms", nargs="+", default=list(ARMS), choices=ARMS)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--epochs", type=int, default=100, help="GAN epochs (default 100 = 2000 steps at batch 500 on 10k rows)")
    p.add_argument("--batch-size", type=int, default=500)
    p.add_argument("--rows", type=int, default=10_000, help="real rows per dataset and seed (default 10000)")
    p.add_argument("--eval-samples", type=int, default=2500, help="samples scored per fit (PacGAN: 2500)")
    p.add_argument("--jobs", type=int, default=1, help="parallel fits, one torch thread each (default 1)")
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "joint_modes.json"))
    p.add_argument("--resume", action="store_true", help="keep the fits already in --out with the same settings")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="a TabularGAN config override for the ganstream arm (repeatable; numbers, true/false, "
                   "comma lists of ints, or strings), recorded per fit")
    p.add_argument("--ctgan-python", default=str(REPO / ".benchmarks-venv-ctgan" / "bin" / "python"),
                   help="python of the ctgan venv (benchmarks/peers/setup_ctgan_venv.sh)")
    p.add_argument("--no-plots", action="store_true")
    return p.parse_args(argv)


def parse_value(text: str):
    """true/false, an int, a float, a comma list of ints (layer widths), else the string (an enum choice)."""
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    for cast in (int, float, lambda t: [int(v) for v in t.split(",")]):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def parse_overrides(items: list[str]) -> dict:
    return {key: parse_value(value) for key, _, value in (item.partition("=") for item in items)}


# ------------------------------------------------------------------------------------------- data
@dataclass
class Mixture:
    centres: np.ndarray      # (k, d)
    covariances: np.ndarray  # (k, d, d)
    weights: np.ndarray      # (k,)
    info: dict               # the seeded structure draws (angle, phase), recorded per fit

    dim = property(lambda self: self.centres.shape[1])

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        component = rng.choice(len(self.weights), size=n, p=self.weights)
        chol = np.linalg.cholesky(self.covariances)
        return self.centres[component] + np.einsum("nij,nj->ni", chol[component], rng.standard_normal((n, self.dim)))


def rng_for(stream: str, dataset: str, seed: int) -> np.random.Generator:
    return np.random.default_rng([STREAM[stream], DATASETS.index(dataset), seed])


def rotation_2d(angle_deg: float) -> np.ndarray:
    a = np.deg2rad(angle_deg)
    return np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])


def grid_centres() -> np.ndarray:
    axis = GRID["spacing"] * (np.arange(GRID["side"]) - (GRID["side"] - 1) / 2)
    xx, yy = np.meshgrid(axis, axis)
    return np.stack([xx.ravel(), yy.ravel()], axis=1)


def separated_points(rng, k: int, dim: int, half_side: float, min_distance: float) -> np.ndarray:
    """k points uniform in [-half_side, half_side]^dim, each new one redrawn until it keeps min_distance."""
    points = []
    while len(points) < k:
        candidate = rng.uniform(-half_side, half_side, dim)
        if all(np.linalg.norm(candidate - q) >= min_distance for q in points):
            points.append(candidate)
    return np.array(points)


def isotropic(centres: np.ndarray, sigma: float, info: dict) -> Mixture:
    k, d = centres.shape
    return Mixture(centres, np.tile(sigma ** 2 * np.eye(d), (k, 1, 1)), np.full(k, 1.0 / k), info)


def build_mixture(dataset: str, seed: int) -> Mixture:
    rng = rng_for("structure", dataset, seed)
    if dataset == "grid-axis":
        return isotropic(grid_centres(), GRID["sigma"], {})
    if dataset == "grid-rotated":
        angle = rng.uniform(*GRID["angle_deg"])
        return isotropic(grid_centres() @ rotation_2d(angle).T, GRID["sigma"], {"angle_deg": angle})
    if dataset == "ring-rotated":
        phase = np.deg2rad(rng.uniform(*RING["phase_deg"]))
        theta = phase + 2 * np.pi * np.arange(RING["modes"]) / RING["modes"]
        centres = RING["radius"] * np.stack([np.cos(theta), np.sin(theta)], axis=1)
        return isotropic(centres, RING["sigma"], {"phase_deg": float(np.rad2deg(phase))})
    if dataset == "anisotropic":
        a = ANISOTROPIC
        centres = separated_points(rng, a["modes"], 2, a["box"], a["min_distance"])
        angles = rng.uniform(0, 180, a["modes"])
        axes = np.diag([a["sd_long"] ** 2, a["sd_short"] ** 2])
        covs = np.array([rotation_2d(t) @ axes @ rotation_2d(t).T for t in angles])
        return Mixture(centres, covs, np.full(a["modes"], 1.0 / a["modes"]), {"orientations_deg": angles.tolist()})
    from scipy.stats import special_ortho_group
    m = MIXTURE_5D
    rotation = special_ortho_group.rvs(m["dim"], random_state=rng)
    centres = separated_points(rng, m["modes"], m["dim"], m["box"], m["min_distance"]) @ rotation.T
    return isotropic(centres, m["sigma"], {})


def real_table(mixture: Mixture, rows: int, rng):
    import pandas as pd
    return pd.DataFrame(mixture.sample(rows, rng), columns=[f"x{j}" for j in range(mixture.dim)])


# ---------------------------------------------------------------------------------------- scoring
def hq_radius(dim: int) -> float:
    from scipy.stats import chi2
    return float(np.sqrt(chi2.ppf(P_HQ, dim)))


def assign(samples: np.ndarray, mixture: Mixture) -> tuple[np.ndarray, np.ndarray]:
    """(nearest centre by Mahalanobis distance, that distance) per sample, vectorised over samples x centres."""
    diff = samples[:, None, :] - mixture.centres[None, :, :]
    d2 = np.einsum("nki,kij,nkj->nk", diff, np.linalg.inv(mixture.covariances), diff)
    nearest = d2.argmin(axis=1)
    return nearest, np.sqrt(d2[np.arange(len(samples)), nearest])


def score(samples: np.ndarray, mixture: Mixture) -> dict:
    nearest, distance = assign(samples, mixture)
    hq = distance <= hq_radius(mixture.dim)
    k = len(mixture.weights)
    captured = np.bincount(nearest[hq], minlength=k) > 0
    q, p = np.bincount(nearest, minlength=k) / len(samples), mixture.weights
    nz = q > 0
    return {"modes": k, "modes_captured": int(captured.sum()), "hq_percent": float(100 * hq.mean()),
            "reverse_kl": float(np.sum(q[nz] * np.log(q[nz] / p[nz])))}


# ------------------------------------------------------------------------------------------- arms
def resample_marginals(real, n: int, rng) -> np.ndarray:
    return np.stack([rng.choice(real[c].to_numpy(), size=n, replace=True) for c in real.columns], axis=1)


def fit_ganstream(real, task: dict) -> tuple[np.ndarray, dict]:
    from ganstream.trainers.tabular.model import TabularGAN
    t0, c0 = time.perf_counter(), time.process_time()
    model = TabularGAN(epochs=task["epochs"], batch_size=task["batch_size"], seed=task["seed"], **task["overrides"])
    model.fit(real)
    timing = {"fit_s": time.perf_counter() - t0, "fit_cpu_s": time.process_time() - c0,
              "cpu_s_per_epoch": float(np.mean([h["epoch_cpu_s"] for h in model.history])),
              "column_encodings": {c: model.encoder.column_encoding(c) for c in model.encoder.numeric_params}}
    samples = model.sample(task["eval_samples"], seed=task["seed"])[list(real.columns)].to_numpy(dtype=float)
    return samples, timing


def fit_ctgan(real, task: dict) -> tuple[np.ndarray, dict]:
    import pandas as pd
    python = task["ctgan_python"]
    if not Path(python).exists():
        raise SystemExit(f"{python} missing: run bash benchmarks/peers/setup_ctgan_venv.sh .benchmarks-venv-ctgan")
    with tempfile.TemporaryDirectory(prefix="joint_modes_ctgan_") as tmp:
        train, out_csv, out_json = (Path(tmp) / name for name in ("train.csv", "samples.csv", "timing.json"))
        real.to_csv(train, index=False)
        subprocess.run([python, str(CTGAN_PEER), str(train), "--discrete", "", "--epochs", str(task["epochs"]),
                        "--batch-size", str(task["batch_size"]), "--rows", str(task["eval_samples"]),
                        "--seed", str(task["seed"]), "--threads", "1", "--out-csv", str(out_csv),
                        "--out-json", str(out_json)], check=True)
        peer = json.loads(out_json.read_text())
        samples = pd.read_csv(out_csv)[list(real.columns)].to_numpy(dtype=float)
    return samples, {"fit_s": peer["fit_s"], "fit_cpu_s": peer["fit_cpu_s"], "cpu_s_per_epoch": peer["epoch_cpu_s"],
                     "preprocess_s": peer["preprocess_s"]}


def run_one(task: dict) -> dict:
    os.environ["GANSTREAM_THREADS"] = "1"
    import torch
    torch.set_num_threads(1)
    ds, arm, seed = task["dataset"], task["arm"], task["seed"]
    mixture = build_mixture(ds, seed)
    real = real_table(mixture, task["rows"], rng_for("train", ds, seed))
    timing: dict = {"fit_s": 0.0, "fit_cpu_s": 0.0, "cpu_s_per_epoch": None}
    if arm == "real":
        samples = mixture.sample(task["eval_samples"], rng_for("reference", ds, seed))
    elif arm == "marginals":
        samples = resample_marginals(real, task["eval_samples"], rng_for("marginals", ds, seed))
    elif arm == "ganstream":
        samples, timing = fit_ganstream(real, task)
    else:
        samples, timing = fit_ctgan(real, task)
    figures = score(samples, mixture)
    plot = None
    if seed == task["plot_seed"]:
        _, distance = assign(samples, mixture)
        plot = {"xy": np.round(samples[:, :2], 4).tolist(), "hq": (distance <= hq_radius(mixture.dim)).tolist()}
    record = {k: task[k] for k in ("dataset", "arm", "seed", "rows", "eval_samples")}
    gan = arm in ("ganstream", "ctgan")
    record.update(epochs=task["epochs"] if gan else None, batch_size=task["batch_size"] if gan else None,
                  overrides=task["overrides"] if arm == "ganstream" else {}, structure=mixture.info,
                  **figures, **timing, plot=plot)
    return record


def fit_key(r: dict) -> str:
    return json.dumps([r["dataset"], r["arm"], r["seed"], r["rows"], r["eval_samples"], r["epochs"],
                       r.get("batch_size"), r["overrides"]], sort_keys=True)


def tasks(args) -> list[dict]:
    """Seed by seed (a run cut short still has every dataset and arm for its first seeds)."""
    out = []
    for seed in args.seeds:
        for ds in args.datasets:
            for arm in args.arms:
                gan = arm in ("ganstream", "ctgan")
                out.append({"dataset": ds, "arm": arm, "seed": seed, "rows": args.rows,
                            "eval_samples": args.eval_samples, "epochs": args.epochs if gan else None,
                            "batch_size": args.batch_size if gan else None,
                            "overrides": parse_overrides(args.overrides) if arm == "ganstream" else {},
                            "ctgan_python": args.ctgan_python, "plot_seed": args.seeds[0]})
    return out


# ----------------------------------------------------------------------------------- aggregation
def arm_label(r: dict) -> str:
    show = lambda v: ",".join(map(str, v)) if isinstance(v, list) else str(v)  # noqa: E731
    return r["arm"] + "".join(f"+{k}={show(v)}" for k, v in sorted(r["overrides"].items()))


def stats(values: list[float]) -> dict:
    v = np.asarray(values, dtype=float)
    return {"mean": float(v.mean()), "std": float(v.std()), "min": float(v.min()), "max": float(v.max()),
            "per_seed": v.tolist()}


def summarize(results: list[dict]) -> list[dict]:
    groups: dict[tuple, list[dict]] = {}
    for r in results:
        groups.setdefault((r["dataset"], arm_label(r), r["epochs"]), []).append(r)
    rows = []
    order = lambda g: (DATASETS.index(g[0][0]), ARMS.index(g[0][1].split("+")[0]), g[0][1])  # noqa: E731
    for (ds, arm, epochs), rs in sorted(groups.items(), key=order):
        row = {"dataset": ds, "arm": arm, "epochs": epochs, "seeds": [r["seed"] for r in rs], "modes": rs[0]["modes"]}
        for key in ("modes_captured", "hq_percent", "reverse_kl", "fit_s", "fit_cpu_s"):
            row[key] = stats([r[key] for r in rs])
        per_epoch = [r["cpu_s_per_epoch"] for r in rs if r["cpu_s_per_epoch"] is not None]
        row["cpu_s_per_epoch"] = stats(per_epoch) if per_epoch else None
        rows.append(row)
    for row in rows:  # ganstream's CPU per epoch over ctgan's, same dataset and epochs
        peer = [p for p in rows if p["dataset"] == row["dataset"] and p["arm"] == "ctgan" and p["epochs"] == row["epochs"]]
        row["cpu_per_epoch_vs_ctgan"] = (row["cpu_s_per_epoch"]["mean"] / peer[0]["cpu_s_per_epoch"]["mean"]
                                         if row["arm"].startswith("ganstream") and peer and row["cpu_s_per_epoch"] else None)
    return rows


def print_table(rows: list[dict]) -> None:
    def ms(d: dict, digits: int) -> str:
        return f"{d['mean']:.{digits}f}±{d['std']:.{digits}f}"
    w = max([len(r["arm"]) for r in rows] + [10])
    print(f"{'dataset':<13} {'arm':<{w}} {'ep':>4} {'n':>2}  {'modes captured':>17} {'min':>4}  {'% HQ':>11} {'min':>5}  "
          f"{'reverse KL':>12} {'max':>6}  {'fit s':>6} {'cpu s':>6} {'cpu s/ep':>8} {'vs ctgan':>8}")
    for r in rows:
        per_epoch = "-" if r["cpu_s_per_epoch"] is None else f"{r['cpu_s_per_epoch']['mean']:.3f}"
        ratio = "-" if r["cpu_per_epoch_vs_ctgan"] is None else f"{r['cpu_per_epoch_vs_ctgan']:.2f}x"
        modes = f"{ms(r['modes_captured'], 1)}/{r['modes']}"
        print(f"{r['dataset']:<13} {r['arm']:<{w}} {r['epochs'] or '-':>4} {len(r['seeds']):>2}  {modes:>17} "
              f"{r['modes_captured']['min']:>4.0f}  {ms(r['hq_percent'], 1):>11} {r['hq_percent']['min']:>5.1f}  "
              f"{ms(r['reverse_kl'], 3):>12} {r['reverse_kl']['max']:>6.3f}  {r['fit_s']['mean']:>6.1f} "
              f"{r['fit_cpu_s']['mean']:>6.1f} {per_epoch:>8} {ratio:>8}")


def plot(results: list[dict], rows: int, out: Path) -> list[str]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    written = []
    for ds in DATASETS:
        shown = [r for r in results if r["dataset"] == ds and r.get("plot")]
        if not shown:
            continue
        seed = shown[0]["seed"]
        mixture = build_mixture(ds, seed)
        train = mixture.sample(rows, rng_for("train", ds, seed))[:2500, :2]
        fig, axes = plt.subplots(1, len(shown) + 1, figsize=(3.2 * (len(shown) + 1), 3.4), squeeze=False)
        axes = list(axes[0])
        axes[0].scatter(train[:, 0], train[:, 1], s=2, c="0.3", alpha=0.5)
        axes[0].set_title(f"training rows (first {len(train)})", fontsize=9)
        for ax, r in zip(axes[1:], shown):
            xy, hq = np.asarray(r["plot"]["xy"]), np.asarray(r["plot"]["hq"])
            ax.scatter(train[:, 0], train[:, 1], s=30, c="0.8", alpha=0.3, linewidths=0)
            ax.scatter(xy[hq, 0], xy[hq, 1], s=2, c="tab:blue", alpha=0.6)
            ax.scatter(xy[~hq, 0], xy[~hq, 1], s=2, c="tab:red", alpha=0.6)
            ax.set_title(f"{arm_label(r)}\n{r['modes_captured']}/{r['modes']} modes, {r['hq_percent']:.1f}% HQ", fontsize=9)
        lo, hi = train.min(axis=0) - 0.5, train.max(axis=0) + 0.5
        for ax in axes:
            ax.set_xlim(lo[0], hi[0]); ax.set_ylim(lo[1], hi[1]); ax.set_aspect("equal"); ax.tick_params(labelsize=7)
        fig.suptitle(f"{ds}, seed {seed} (x0, x1): grey real, blue HQ samples, red off-mode", fontsize=10)
        fig.tight_layout()
        path = out.parent / f"{out.stem}_{ds}.png"
        fig.savefig(path, dpi=90)
        plt.close(fig)
        written.append(str(path))
    return written


def main(argv=None) -> int:
    args = parse_args(argv)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    plot_data = out.with_name(out.stem + "_plot_data.json")
    todo = tasks(args)
    results: list[dict] = []
    other_fits: list[dict] = []  # --resume: fits in --out with other settings, kept in the file, not summarised
    earlier_wall_s = 0.0  # --resume: the wall time of the runs that wrote --out before
    if args.resume and out.exists():
        previous = json.loads(out.read_text())
        plots = json.loads(plot_data.read_text()) if plot_data.exists() else {}
        wanted = {fit_key(t) for t in todo}
        results = [{**r, "plot": plots.get(fit_key(r))} for r in previous["per_fit"] if fit_key(r) in wanted]
        other_fits = previous.get("other_fits", []) + [r for r in previous["per_fit"] if fit_key(r) not in wanted]
        earlier_wall_s = previous.get("wall_s_all_runs", previous["wall_s"])
        done = {fit_key(r) for r in results}
        todo = [t for t in todo if fit_key(t) not in done]
        print(f"resume: {len(results)} fits kept from {out}", file=sys.stderr)
    t0 = time.perf_counter()
    print(f"{len(todo)} fits to run, {args.jobs} job(s)", file=sys.stderr)

    def save(complete: bool) -> dict:
        record = {"settings": {**vars(args), "grid": GRID, "ring": RING, "anisotropic": ANISOTROPIC,
                               "mixture_5d": MIXTURE_5D, "p_hq": P_HQ,
                               "hq_radius": {d: hq_radius(d) for d in (2, MIXTURE_5D["dim"])}},
                  "complete": complete, "wall_s": time.perf_counter() - t0,
                  "wall_s_all_runs": earlier_wall_s + time.perf_counter() - t0, "summary": summarize(results),
                  "per_fit": [{k: v for k, v in r.items() if k != "plot"} for r in results], "other_fits": other_fits}
        out.write_text(json.dumps(record, indent=1))
        kept = json.loads(plot_data.read_text()) if args.resume and plot_data.exists() else {}
        plot_data.write_text(json.dumps({**kept, **{fit_key(r): r["plot"] for r in results if r.get("plot")}}))
        return record

    def collect(r: dict) -> None:
        results.append(r)
        print(f"  [{len(results)}] {r['dataset']} {arm_label(r)} seed={r['seed']}: {r['modes_captured']}/{r['modes']} "
              f"modes, {r['hq_percent']:.1f}% HQ, fit {r['fit_s']:.0f}s", file=sys.stderr, flush=True)
        save(False)  # an interrupted run keeps its fits

    if args.jobs > 1:
        import multiprocessing as mp
        with ProcessPoolExecutor(args.jobs, mp_context=mp.get_context("spawn")) as pool:
            for r in pool.map(run_one, todo):
                collect(r)
    else:
        for t in todo:
            collect(run_one(t))
    final = save(True)
    print_table(final["summary"])
    print(f"\nwall time {final['wall_s']:.0f} s for {len(todo)} fits ({args.jobs} job(s), 1 torch thread each)")
    pngs = [] if args.no_plots else plot(results, args.rows, out)
    print(f"wrote {out}" + (f" and {len(pngs)} PNG(s)" if pngs else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
