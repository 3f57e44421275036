"""Synthetic collected tables for the figure and summary tests (no training needed): study A's
metrics / validation / robustness CSVs and K=2 embeddings, study B's curves / probes / robustness."""

from pathlib import Path

import numpy as np
import pandas as pd

from infomax.dim_infobal import tables as TB
from infomax.vib_vim import figures as FA

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
VIB_BETAS = [1e-5, 1e-4, 1e-3, 1e-2, 1e-1]
VIM_BETAS = [1e-2, 1e-1, 1.0, 10.0]


def make_inputs(root, seeds=(0, 1), objectives=("deterministic", "vib", "vim"), rng_seed=0, n_points=300,
                emb_betas=3):
    """Write metrics/validation/robustness CSVs and K=2 .npz files with plausible shapes of curves."""
    rng = np.random.default_rng(rng_seed)
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    grids = {"deterministic": [0.0], "vib": VIB_BETAS, "vim": VIM_BETAS}
    metrics, validation, robust = [], [], []
    for obj in objectives:
        betas = grids[obj]
        for i, beta in enumerate(betas):
            t = i / max(len(betas) - 1, 1)  # 0 .. 1 along the grid: more compression
            base = 0.013 + 0.05 * t ** 3 if obj != "deterministic" else 0.016
            for seed in seeds:
                for K in (256, 2):
                    e12 = base + rng.normal(0, 0.001) + (0.02 if K == 2 else 0.0)
                    rate = np.nan if obj == "deterministic" else 60 * (1 - t) ** 2 + 2.5 + rng.normal(0, 0.2)
                    izy = np.nan if obj == "deterministic" else FA.MAX_IZY_BITS - 0.03 - 0.6 * t ** 3
                    metrics.append(dict(objective=obj, beta=beta, seed=seed, K=K, err_1=e12 * 1.1,
                                        err_avg=e12, rate_bits=rate, izy_bits=izy,
                                        probe_acc=0.985 - 0.1 * t ** 2 + rng.normal(0, 0.002),
                                        knn_acc=0.98 - 0.08 * t ** 2 + rng.normal(0, 0.002),
                                        train_seconds=100.0, precision="float32"))
                    validation.append(dict(objective=obj, beta=beta, seed=seed, K=K,
                                           val_err_avg=e12 + rng.normal(0, 0.0005)))
                for attack, levels, scale in [("gaussian", np.linspace(0, 1, 6), 1.0),
                                              ("saltpepper", np.linspace(0, 0.5, 6), 1.5),
                                              ("fgsm", np.linspace(0, 0.3, 7), 4.0)]:
                    for level in levels:
                        robust_to = 1.0 + (0.5 * t if obj != "deterministic" else 0.0)
                        acc = 0.98 * np.exp(-scale * level / robust_to) + 0.1 * (1 - np.exp(-scale * level))
                        robust.append(dict(objective=obj, beta=beta, seed=seed, attack=attack,
                                           level=level, acc=min(1.0, acc + rng.normal(0, 0.005))))
    paths = dict(metrics=root / "metrics.csv", validation=root / "validation.csv",
                 robustness=root / "robustness.csv")
    pd.DataFrame(metrics).to_csv(paths["metrics"], index=False)
    pd.DataFrame(validation).to_csv(paths["validation"], index=False)
    pd.DataFrame(robust).to_csv(paths["robustness"], index=False)
    paths["npz"] = make_embeddings(root, rng, [o for o in objectives if o != "deterministic"], grids,
                                   n_points, emb_betas)
    return paths


def make_embeddings(root, rng, objectives, grids, n, n_betas):
    """K=2 embeddings: 10 class clusters on a circle; noise grows with beta."""
    out = []
    angles = 2 * np.pi * np.arange(10) / 10
    centers = 4 * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    for obj in objectives:
        for i, beta in enumerate(grids[obj][:n_betas]):
            y = rng.integers(0, 10, n)
            mu = centers[y] * (1 - 0.2 * i) + rng.normal(0, 0.8, (n, 2))
            sigma = np.full((n, 2), 0.1 + 0.3 * i) * rng.uniform(0.5, 1.5, (n, 2))
            path = root / f"emb_{obj}_{i}.npz"
            np.savez(path, mu=mu, sigma=sigma, y=y, W=2 * centers / 4, b=np.zeros(10),
                     objective=obj, beta=beta, err_avg=0.03 + 0.05 * i)
            out.append(path)
    return out


def assert_figure_files(paths, stem):
    stem = Path(stem)
    assert sorted(Path(p).suffix for p in paths) == [".pdf", ".png"]
    png, pdf = stem.with_suffix(".png"), stem.with_suffix(".pdf")
    assert png.read_bytes()[:8] == PNG_MAGIC
    assert pdf.read_bytes()[:5] == b"%PDF-"
    assert png.stat().st_size > 1000 and pdf.stat().st_size > 1000
    assert not [p for p in stem.parent.iterdir() if p.name.endswith(".tmp")]  # no leftovers


B_RUNS = [("dim_g", "jsd"), ("dim_g", "dv"), ("dim_l", "jsd"), ("dim_l", "nce"),
          ("infobal_m2", "jsd"), ("infobal_m2", "dv"), ("infobal_m4", "nce"), ("infobal_m2_club", "jsd")]
B_LEVELS = [0.0, 0.1, 0.3, 0.5, 1.0]


def make_infobal_inputs(root, seeds=(0, 1), runs=B_RUNS, epochs=5, rng_seed=0, random=True):
    """Write study-B curves/probes/robustness CSVs; estimators on deliberately different MI scales."""
    rng = np.random.default_rng(rng_seed)
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    mi_scale = {"jsd": (-1.3, 0.0), "dv": (0.0, 4.0), "nce": (0.0, 2.5)}  # (start, end) of the estimate
    curves, probes, robust = [], [], []
    all_runs = list(runs) + ([("random", "none")] if random else [])
    for k, (method, est) in enumerate(all_runs):
        quality = 0.0 if method == "random" else 0.5 + 0.4 * k / len(all_runs)  # representation quality
        for seed in seeds:
            noise = lambda sd: rng.normal(0, sd)  # noqa: E731
            if method == "random":   # the untrained floor: one curve point, epoch 0, no MI estimate
                curves.append(dict(method=method, estimator=est, seed=seed, epoch=0, mi_estimate=np.nan,
                                   probe_acc=0.3 + noise(0.01)))
            else:
                for ep in range(epochs + 1):
                    t = 1 - np.exp(-ep / 2)
                    start, end = mi_scale[est]
                    curves.append(dict(method=method, estimator=est, seed=seed, epoch=ep,
                                       mi_estimate=start + (end - start) * t + noise(0.05),
                                       probe_acc=0.3 + quality * 0.8 * t + noise(0.01)))
            for li, layer in enumerate(["y", "fc", "conv"]):
                for probe, bonus in [("linear", 0.0), ("mlp", 0.03)]:
                    base = 0.35 + 0.5 * quality if method != "random" else 0.3 - 0.05 * li
                    probes.append(dict(method=method, estimator=est, seed=seed, layer=layer, probe=probe,
                                       acc=min(1.0, base + bonus + 0.02 * li + noise(0.01)), precision="float32"))
            for level in B_LEVELS:
                clean = 0.35 + 0.5 * quality if method != "random" else 0.3
                robust.append(dict(method=method, estimator=est, seed=seed, attack="gaussian", level=level,
                                   acc=0.1 + (clean - 0.1) * np.exp(-2.5 * level) + noise(0.01)))
    paths = dict(curves=root / "curves.csv", probes=root / "probes.csv", robustness=root / "robustness.csv")
    pd.DataFrame(curves, columns=TB.COLUMNS["curves"]).to_csv(paths["curves"], index=False)
    pd.DataFrame(probes, columns=TB.COLUMNS["probes"]).to_csv(paths["probes"], index=False)
    pd.DataFrame(robust, columns=TB.COLUMNS["robustness"]).to_csv(paths["robustness"], index=False)
    return paths


