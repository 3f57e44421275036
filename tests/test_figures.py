"""Tests for infomax.figures on small synthetic inputs (no training needed)."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from infomax import figures

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
VIB_BETAS = [1e-5, 1e-4, 1e-3, 1e-2, 1e-1]
VIM_BETAS = [1e-2, 1e-1, 1.0, 10.0]


# -----------------------------------------------------------------------------
# synthetic inputs

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
                    izy = np.nan if obj == "deterministic" else figures.MAX_IZY_BITS - 0.03 - 0.6 * t ** 3
                    metrics.append(dict(objective=obj, beta=beta, seed=seed, K=K, err_1=e12 * 1.1,
                                        err_12=e12, rate_bits=rate, izy_bits=izy,
                                        probe_acc=0.985 - 0.1 * t ** 2 + rng.normal(0, 0.002),
                                        knn_acc=0.98 - 0.08 * t ** 2 + rng.normal(0, 0.002),
                                        train_seconds=100.0))
                    validation.append(dict(objective=obj, beta=beta, seed=seed, K=K,
                                           val_err_12=e12 + rng.normal(0, 0.0005)))
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
                     objective=obj, beta=beta, err_12=0.03 + 0.05 * i)
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


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    return make_inputs(tmp_path_factory.mktemp("inputs"))


# -----------------------------------------------------------------------------
# helpers and model selection

def test_beta_label():
    assert figures.beta_label(0) == "0"
    assert figures.beta_label(1e-3) == "1e-3"
    assert figures.beta_label(2.5e-4) == "2.5e-4"
    assert figures.beta_label(1.0) == "1"
    assert figures.beta_label(10) == "1e1"


def test_best_betas_uses_mean_validation_error_not_min_and_not_test(tmp_path):
    rows = [
        # vib beta=1e-3 has the single lowest value (0.010) but the worse mean (0.030)
        ("vib", 1e-3, 0, 0.010), ("vib", 1e-3, 1, 0.050),
        ("vib", 1e-2, 0, 0.020), ("vib", 1e-2, 1, 0.022),  # mean 0.021 -> best
        # vim: tie on the mean -> the smaller beta
        ("vim", 0.1, 0, 0.020), ("vim", 0.1, 1, 0.030),
        ("vim", 1.0, 0, 0.025), ("vim", 1.0, 1, 0.025),
        ("vim", 10.0, 0, 0.040), ("vim", 10.0, 1, 0.040),
        ("deterministic", 0.0, 0, 0.02), ("deterministic", 0.0, 1, 0.02),
    ]
    df = pd.DataFrame(rows, columns=["objective", "beta", "seed", "val_err_12"])
    df["K"] = 256
    # K=2 rows with a different winner must be ignored
    df = pd.concat([df, pd.DataFrame([dict(objective="vib", beta=1e-1, seed=0, K=2, val_err_12=0.0)])])
    path = tmp_path / "validation.csv"
    df.to_csv(path, index=False)
    assert figures.best_betas(path) == {"deterministic": 0.0, "vib": 1e-2, "vim": 0.1}
    # no other file is read: a test-metrics file next to it is irrelevant
    (tmp_path / "metrics.csv").write_text("garbage\n")
    assert figures.best_betas(path)["vib"] == 1e-2


def test_missing_column_names_file_and_column(tmp_path, inputs):
    bad = tmp_path / "metrics.csv"
    pd.read_csv(inputs["metrics"]).drop(columns=["izy_bits"]).to_csv(bad, index=False)
    with pytest.raises(ValueError, match=r"izy_bits") as info:
        figures.information_plane(bad, tmp_path / "ip")
    assert str(bad) in str(info.value)
    badval = tmp_path / "validation.csv"
    pd.read_csv(inputs["validation"]).drop(columns=["val_err_12"]).to_csv(badval, index=False)
    with pytest.raises(ValueError, match=r"val_err_12"):
        figures.best_betas(badval)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        figures.error_vs_beta(tmp_path / "nope.csv", tmp_path / "e")
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        figures.embedding_k2([tmp_path / "nope.npz"], tmp_path / "e")


def test_missing_npz_key(tmp_path):
    path = tmp_path / "bad.npz"
    np.savez(path, mu=np.zeros((3, 2)))
    with pytest.raises(ValueError, match="sigma"):
        figures.embedding_k2([path], tmp_path / "e")

# -----------------------------------------------------------------------------
# figures

def test_all_figures(tmp_path, inputs):
    out = tmp_path / "figs"
    written = figures.make_vib_vim_figures(inputs["metrics"], inputs["validation"], inputs["robustness"],
                                           inputs["npz"], out)
    names = ["error_vs_beta", "information_plane", "robustness", "representation_vs_beta", "embedding_k2"]
    assert len(written) == 2 * len(names)
    for name in names:
        assert_figure_files([p for p in written if p.stem == name], out / name)


def test_individual_figures_return_paths(tmp_path, inputs):
    stem = tmp_path / "sub" / "err"
    paths = figures.error_vs_beta(inputs["metrics"], stem)
    assert_figure_files(paths, stem)


def test_one_seed_and_missing_objective(tmp_path):
    inp = make_inputs(tmp_path / "in", seeds=(0,), objectives=("vib", "deterministic"))
    out = tmp_path / "figs"
    written = figures.make_vib_vim_figures(inp["metrics"], inp["validation"], inp["robustness"],
                                           inp["npz"], out)
    assert len(written) == 10
    for p in written:
        assert p.stat().st_size > 1000
