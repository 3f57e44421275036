"""Tests for the studies' figures (infomax.vib_vim.figures, infomax.dim_infobal.figures) and their
vocabulary (the studies' tables modules) on small synthetic inputs (no training needed)."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from infomax import figures
from infomax.dim_infobal import figures as FB
from infomax.dim_infobal import tables as TB
from infomax.dim_infobal.runs import method_specs
from infomax.vib_vim import figures as FA
from infomax.vib_vim import tables as TA

from configs import PAPER

# study B's vocabulary for paper's methods (every method the synthetic tables use)
METHODS = TB.Methods(method_specs(PAPER), PAPER["dim_infobal"]["kinds"])

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
                    izy = np.nan if obj == "deterministic" else FA.MAX_IZY_BITS - 0.03 - 0.6 * t ** 3
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
    assert TA.beta_label(0) == "0"
    assert TA.beta_label(1e-3) == "1e-3"
    assert TA.beta_label(2.5e-4) == "2.5e-4"
    assert TA.beta_label(1.0) == "1"
    assert TA.beta_label(10) == "1e1"


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
    assert TA.best_betas(path) == {"deterministic": 0.0, "vib": 1e-2, "vim": 0.1}
    # no other file is read: a test-metrics file next to it is irrelevant
    (tmp_path / "metrics.csv").write_text("garbage\n")
    assert TA.best_betas(path)["vib"] == 1e-2


def test_missing_column_names_file_and_column(tmp_path, inputs):
    bad = tmp_path / "metrics.csv"
    pd.read_csv(inputs["metrics"]).drop(columns=["izy_bits"]).to_csv(bad, index=False)
    with pytest.raises(ValueError, match=r"izy_bits") as info:
        FA.information_plane(bad, tmp_path / "ip")
    assert str(bad) in str(info.value)
    badval = tmp_path / "validation.csv"
    pd.read_csv(inputs["validation"]).drop(columns=["val_err_12"]).to_csv(badval, index=False)
    with pytest.raises(ValueError, match=r"val_err_12"):
        TA.best_betas(badval)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        FA.error_vs_beta(tmp_path / "nope.csv", tmp_path / "e")
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        FA.embedding_k2([tmp_path / "nope.npz"], tmp_path / "e")


def test_missing_npz_key(tmp_path):
    path = tmp_path / "bad.npz"
    np.savez(path, mu=np.zeros((3, 2)))
    with pytest.raises(ValueError, match="sigma"):
        FA.embedding_k2([path], tmp_path / "e")

# -----------------------------------------------------------------------------
# figures

def test_all_figures(tmp_path, inputs):
    out = tmp_path / "figs"
    written = FA.make_figures(inputs["metrics"], inputs["validation"], inputs["robustness"],
                                           inputs["npz"], out)
    names = ["error_vs_beta", "information_plane", "robustness", "representation_vs_beta", "embedding_k2"]
    assert len(written) == 2 * len(names)
    for name in names:
        assert_figure_files([p for p in written if p.stem == name], out / name)


def test_individual_figures_return_paths(tmp_path, inputs):
    stem = tmp_path / "sub" / "err"
    paths = FA.error_vs_beta(inputs["metrics"], stem)
    assert_figure_files(paths, stem)


def test_one_seed_and_missing_objective(tmp_path):
    inp = make_inputs(tmp_path / "in", seeds=(0,), objectives=("vib", "deterministic"))
    out = tmp_path / "figs"
    written = FA.make_figures(inp["metrics"], inp["validation"], inp["robustness"],
                                           inp["npz"], out)
    assert len(written) == 10
    for p in written:
        assert p.stat().st_size > 1000


# =============================================================================
# Study B: DIM vs InfoBal

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
                                       acc=min(1.0, base + bonus + 0.02 * li + noise(0.01))))
            for level in B_LEVELS:
                clean = 0.35 + 0.5 * quality if method != "random" else 0.3
                robust.append(dict(method=method, estimator=est, seed=seed, attack="gaussian", level=level,
                                   acc=0.1 + (clean - 0.1) * np.exp(-2.5 * level) + noise(0.01)))
    paths = dict(curves=root / "curves.csv", probes=root / "probes.csv", robustness=root / "robustness.csv")
    pd.DataFrame(curves, columns=TB.COLUMNS["curves"]).to_csv(paths["curves"], index=False)
    pd.DataFrame(probes, columns=TB.COLUMNS["probes"]).to_csv(paths["probes"], index=False)
    pd.DataFrame(robust, columns=TB.COLUMNS["robustness"]).to_csv(paths["robustness"], index=False)
    return paths


@pytest.fixture(scope="module")
def b_inputs(tmp_path_factory):
    return make_infobal_inputs(tmp_path_factory.mktemp("b_inputs"))


@pytest.fixture
def captured(monkeypatch):
    """Replace save_figure: keep the figure for inspection instead of writing it."""
    figs = []
    monkeypatch.setattr(FB, "save_figure", lambda fig, stem: figs.append(fig) or [])
    yield figs
    for fig in figs:
        figures.plt.close(fig)


def _lines_by_gid(ax):
    return {line.get_gid(): line for line in ax.get_lines() if line.get_gid()}


def test_infobal_labels():
    m = METHODS
    assert m.run_label("dim_g", "jsd") == "DIM(G) JSD"
    assert m.run_label("dim_l", "dv") == "DIM(L) DV"
    assert m.run_label("infobal_m2", "jsd") == "InfoBal M=2 JSD"
    assert m.run_label("infobal_m4", "nce") == "InfoBal M=4 infoNCE"
    assert m.label("infobal_m2_club") == "InfoBal M=2 (CLUB)"
    assert m.label("infobal_m2_r") == "InfoBal M=2 (target R)"
    assert m.run_label("random", "none") == "random init (untrained)"
    # the label comes from the kind and the options that differ from the kind's, never the name
    kinds = PAPER["dim_infobal"]["kinds"]
    other = TB.Methods({"foo_bar": {"kind": "infobal", **kinds["infobal"], "views": 12, "infomin": "club"}}, kinds)
    assert other.label("foo_bar") == "InfoBal M=12 (CLUB)"
    with pytest.raises(ValueError, match="'my_method' is not in the experiment's config"):
        m.label("my_method")
    # DIM and InfoBal get different colour families, random is grey
    colors = m.colors(["infobal_m2", "dim_l", "random", "dim_g", "infobal_m4"])
    assert colors["random"] == TB.RANDOM_COLOR
    assert {colors["dim_g"], colors["dim_l"]} <= set(TB.FAMILY_PALETTES["dim"])
    assert {colors["infobal_m2"], colors["infobal_m4"]} <= set(TB.FAMILY_PALETTES["infobal"])
    assert len(set(colors.values())) == 5


def _with_dim_l_named(name):
    """paper's methods with DIM(L) (kind dim_l) under ``name``: otherwise the same set."""
    kinds = PAPER["dim_infobal"]["kinds"]
    specs = {(name if m == "dim_l" else m): spec for m, spec in method_specs(PAPER).items()}
    return TB.Methods(specs, kinds)


def test_a_method_is_named_by_its_kind_not_its_name():
    local, plain = _with_dim_l_named("local_dim"), _with_dim_l_named("dim_l")
    assert local.label("local_dim") == plain.label("dim_l") == "DIM(L)"
    assert local.run_label("local_dim", "nce") == "DIM(L) infoNCE"
    assert local.kind("local_dim") == "dim_l" and local.family("local_dim") == "dim"
    assert local.of_kind("dim_l") == ["local_dim"]
    names = lambda m: [n for n in m.specs]                                   # noqa: E731
    lc, pc = local.colors(names(local)), plain.colors(names(plain))
    assert lc["local_dim"] == pc["dim_l"]
    assert {k: v for k, v in lc.items() if k != "local_dim"} == {k: v for k, v in pc.items() if k != "dim_l"}
    assert lc["local_dim"] != lc["dim_g"]                   # a colour of its own, from DIM's palette


def test_random_floor_is_mean_of_random_linear_y_rows(tmp_path):
    rows = [("random", "none", 0, "y", "linear", 0.20), ("random", "none", 1, "y", "linear", 0.30),
            ("random", "none", 0, "fc", "linear", 0.90), ("random", "none", 0, "y", "mlp", 0.80),
            ("dim_g", "jsd", 0, "y", "linear", 0.70)]
    df = pd.DataFrame(rows, columns=["method", "estimator", "seed", "layer", "probe", "acc"])
    assert FB.random_floor(df) == pytest.approx(0.25)
    assert FB.random_floor(df, "y", "mlp") == pytest.approx(0.80)
    assert np.isnan(FB.random_floor(df[df["method"] != "random"]))


def test_infobal_spread_is_mean_min_max_over_seeds():
    df = pd.DataFrame(dict(method="dim_g", estimator="jsd", seed=[0, 1, 2, 0], epoch=[1, 1, 1, 2],
                           acc=[0.1, 0.2, 0.6, np.inf]))
    s = FB._spread(df, ["epoch"], "acc")
    assert s["epoch"].tolist() == [1]  # the inf row is dropped, not averaged
    row = s.iloc[0]
    assert (row["mean"], row["lo"], row["hi"], row["n"]) == pytest.approx((0.3, 0.1, 0.6, 3))
    assert FB._runs_seeds_note(df) == "n seeds = 3"
    assert FB._runs_seeds_note(df[df["seed"] == 0]) == "n seeds = 1 (no spread)"


def test_infobal_curves_draws_random_floor_and_means(b_inputs, captured):
    FB.infobal_curves(b_inputs["curves"], "unused", METHODS)
    (fig,) = captured
    curves = pd.read_csv(b_inputs["curves"], keep_default_na=False, na_values=[""])
    rnd = curves[curves["method"] == "random"]
    assert len(rnd) == 2 and set(rnd["epoch"]) == {0}  # both seeds, the epoch-0 point only
    acc_axes = [ax for ax in fig.axes if str(ax.get_gid()).startswith("acc:")]
    assert len(acc_axes) == 3
    for ax in acc_axes:    # the floor is the same (curve) probe on the untrained encoder
        floor = _lines_by_gid(ax)["random_floor"]
        assert np.allclose(floor.get_ydata(), 100 * rnd["probe_acc"].mean())
    # a curve is the mean over seeds, per epoch
    mi_axes = {ax.get_gid(): ax for ax in fig.axes if str(ax.get_gid()).startswith("mi:")}
    line = _lines_by_gid(mi_axes["mi:dv"])["infobal_m2/dv"]
    rows = curves[(curves["method"] == "infobal_m2") & (curves["estimator"] == "dv")]
    expected = rows.groupby("epoch")["mi_estimate"].mean()
    assert np.allclose(line.get_xdata(), expected.index) and np.allclose(line.get_ydata(), expected.values)
    acc_line = _lines_by_gid(next(ax for ax in acc_axes if ax.get_gid() == "acc:dv"))["infobal_m2/dv"]
    assert np.allclose(acc_line.get_ydata(), 100 * rows.groupby("epoch")["probe_acc"].mean().values)


def test_infobal_curves_one_mi_axis_per_estimator(b_inputs, captured):
    FB.infobal_curves(b_inputs["curves"], "unused", METHODS)
    (fig,) = captured
    curves = pd.read_csv(b_inputs["curves"])
    mi_axes = [ax for ax in fig.axes if str(ax.get_gid()).startswith("mi:")]
    assert sorted(ax.get_gid() for ax in mi_axes) == ["mi:dv", "mi:jsd", "mi:nce"]
    for ax in mi_axes:
        est = ax.get_gid().split(":")[1]
        gids = list(_lines_by_gid(ax))
        assert gids, ax.get_gid()
        assert {g.split("/")[1] for g in gids} == {est}  # never two estimators on one MI axis
        assert "random" not in {g.split("/")[0] for g in gids}  # random has no curve
        # ... and the values drawn are this estimator's (the synthetic scales do not overlap at the end)
        values = curves.loc[curves["estimator"] == est, "mi_estimate"]
        for line in _lines_by_gid(ax).values():
            assert values.min() <= line.get_ydata().min() and line.get_ydata().max() <= values.max()
    # the MI axes do not share a y axis (their scales differ)
    assert not any(mi_axes[0].get_shared_y_axes().joined(mi_axes[0], ax) for ax in mi_axes[1:])


def test_infobal_probes_values(b_inputs, captured):
    FB.infobal_probes(b_inputs["probes"], "unused", METHODS)
    (fig,) = captured
    probes = pd.read_csv(b_inputs["probes"], keep_default_na=False)
    axes = {ax.get_gid(): ax for ax in fig.axes}
    assert set(axes) == {"probe:linear", "probe:mlp"}
    # a dot is the mean over seeds, its bar spans min..max
    rows = probes[(probes["method"] == "dim_l") & (probes["estimator"] == "nce") & (probes["layer"] == "fc")
                  & (probes["probe"] == "mlp")]["acc"] * 100
    ax = axes["probe:mlp"]
    dots = [c for c in ax.containers if c.lines[0].get_gid() == "dim_l/nce/fc"]
    assert len(dots) == 1
    assert np.allclose(dots[0].lines[0].get_xdata(), rows.mean())
    bar = dots[0].lines[2][0].get_segments()[0]
    assert np.allclose(sorted(bar[:, 0]), [rows.min(), rows.max()])
    # the random floor is a row of its own (last) and a dashed line at its linear/y mean
    labels = [t.get_text() for t in axes["probe:linear"].get_yticklabels()]
    assert labels[-1] == "random init (untrained)" and labels[0] == "DIM(G) JSD"
    rnd = probes[(probes["method"] == "random") & (probes["layer"] == "y") & (probes["probe"] == "linear")]
    floor = _lines_by_gid(axes["probe:linear"])["random_floor"]
    assert np.allclose(floor.get_xdata(), 100 * rnd["acc"].mean())


def test_infobal_robustness_lines(b_inputs, captured):
    FB.infobal_robustness(b_inputs["robustness"], "unused", METHODS)
    (fig,) = captured
    rob = pd.read_csv(b_inputs["robustness"], keep_default_na=False)
    axes = {ax.get_gid(): ax for ax in fig.axes}
    assert set(axes) == {"robustness:jsd", "robustness:dv", "robustness:nce"}
    for gid, ax in axes.items():
        lines = _lines_by_gid(ax)
        assert "random/none" in lines  # the floor in every panel
        assert {g.split("/")[1] for g in lines if not g.startswith("random")} == {gid.split(":")[1]}
    line = _lines_by_gid(axes["robustness:jsd"])["dim_g/jsd"]
    expected = rob[(rob["method"] == "dim_g") & (rob["estimator"] == "jsd")].groupby("level")["acc"].mean()
    assert np.allclose(line.get_xdata(), B_LEVELS) and np.allclose(line.get_ydata(), 100 * expected.values)


def test_make_infobal_figures(tmp_path, b_inputs):
    import matplotlib.image

    out = tmp_path / "figs"
    written = FB.make_figures(b_inputs["curves"], b_inputs["probes"], b_inputs["robustness"], out, METHODS)
    names = ["infobal_curves", "infobal_probes", "infobal_robustness"]
    assert len(written) == 6
    for name in names:
        assert_figure_files([p for p in written if p.stem == name], out / name)
        img = matplotlib.image.imread(out / f"{name}.png")
        assert img.ndim == 3 and img.shape[0] > 300 and img.shape[1] > 600


def test_infobal_one_seed(tmp_path):
    inp = make_infobal_inputs(tmp_path / "in", seeds=(0,), runs=[("dim_g", "jsd"), ("infobal_m2", "jsd")])
    written = FB.make_figures(inp["curves"], inp["probes"], inp["robustness"], tmp_path / "figs", METHODS)
    assert len(written) == 6
    for p in written:
        assert p.stat().st_size > 1000


def test_infobal_missing_random_warns_and_still_draws(tmp_path):
    inp = make_infobal_inputs(tmp_path / "in", seeds=(0,), runs=[("dim_g", "jsd")], random=False)
    with pytest.warns(UserWarning, match="random"):
        paths = FB.infobal_curves(inp["curves"], tmp_path / "c", METHODS)
    assert_figure_files(paths, tmp_path / "c")


@pytest.mark.parametrize("which,column,func", [
    ("curves", "mi_estimate", lambda p, out: FB.infobal_curves(p["curves"], out, METHODS)),
    ("probes", "layer", lambda p, out: FB.infobal_probes(p["probes"], out, METHODS)),
    ("probes", "acc", lambda p, out: FB.infobal_probes(p["probes"], out, METHODS)),
    ("robustness", "level", lambda p, out: FB.infobal_robustness(p["robustness"], out, METHODS)),
])
def test_infobal_missing_column_names_file_and_column(tmp_path, b_inputs, which, column, func):
    bad = tmp_path / f"bad_{which}.csv"
    pd.read_csv(b_inputs[which], keep_default_na=False).drop(columns=[column]).to_csv(bad, index=False)
    with pytest.raises(ValueError, match=column) as info:
        func({**b_inputs, which: bad}, tmp_path / "f")
    assert str(bad) in str(info.value)
    assert "expected columns" in str(info.value)
    assert not list(tmp_path.glob("f.*"))  # nothing written


def test_infobal_missing_or_empty_file(tmp_path, b_inputs):
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        FB.infobal_probes(tmp_path / "nope.csv", tmp_path / "p", METHODS)
    header_only = tmp_path / "probes.csv"
    header_only.write_text("method,estimator,seed,layer,probe,acc\n")
    with pytest.raises(ValueError, match=r"probes\.csv: the table has no rows"):
        FB.infobal_probes(header_only, tmp_path / "p", METHODS)
    blank = tmp_path / "robustness.csv"
    blank.write_text("")
    with pytest.raises(ValueError, match=r"robustness\.csv: file is empty"):
        FB.infobal_robustness(blank, tmp_path / "r", METHODS)
    no_noise = tmp_path / "rob2.csv"
    pd.read_csv(b_inputs["robustness"], keep_default_na=False).assign(attack="fgsm").to_csv(no_noise, index=False)
    with pytest.raises(ValueError, match="attack=gaussian"):
        FB.infobal_robustness(no_noise, tmp_path / "r", METHODS)
