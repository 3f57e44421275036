"""
Figures for the VIB vs VIM (Variational InfoMax) comparison on MNIST.

One function per figure. Every figure function takes input paths and an output
*stem* (a Path without suffix), writes both <stem>.png and <stem>.pdf atomically
(temp file next to the target + os.replace) and returns the written paths.

Inputs (CSV files written by other pipeline steps):
- metrics.csv    : objective,beta,seed,K,err_1,err_12,rate_bits,izy_bits,probe_acc,knn_acc,train_seconds
- validation.csv : objective,beta,seed,K,val_err_12
- robustness.csv : objective,beta,seed,attack,level,acc
- K=2 embeddings : one .npz per model with mu, sigma, y, W, b, objective, beta, err_12

Model selection (which beta to show in the robustness figure) uses the
validation split only, see best_betas().

Study B (Deep InfoMax vs InfoBal) has its own section at the end: make_infobal_figures().
"""

import re
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display, ever
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.collections import EllipseCollection  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.ticker import FuncFormatter, MaxNLocator  # noqa: E402

from .config import (CURVES_COLUMNS, INFOBAL_ROBUSTNESS_COLUMNS, METRICS_COLUMNS,  # noqa: E402
                     PROBES_COLUMNS, RANDOM, ROBUSTNESS_COLUMNS, VALIDATION_COLUMNS, beta_tag)
from .files import atomic_write  # noqa: E402

# -----------------------------------------------------------------------------
# constants

OBJECTIVES = ("deterministic", "vib", "vim")  # plotting order
COLORS = {"deterministic": "0.3", "vib": "tab:blue", "vim": "#e6550d"}
MARKERS = {"deterministic": "s", "vib": "o", "vim": "^"}
MAIN_K = 256
DPI = 150
MAX_IZY_BITS = float(np.log2(10))  # I(Z;Y) <= H(Y) = log2(10) for 10 balanced classes
CHI2_2DOF_95 = 5.991  # chi2 quantile, 2 dof, 0.95 -> 95% ellipse of a 2-d Gaussian

EMBEDDING_KEYS = ["mu", "sigma", "y", "W", "b", "objective", "beta", "err_12"]

ATTACKS = [  # (attack name in robustness.csv, panel title, x label)
    ("gaussian", "Gaussian pixel noise", "noise std σ (pixel units, images in [0, 1])"),
    ("saltpepper", "Salt-and-pepper noise", "fraction of corrupted pixels p"),
    ("fgsm", "FGSM adversarial attack", "L∞ budget ε (pixel units, images in [0, 1])"),
]

# -----------------------------------------------------------------------------
# small helpers

def beta_label(beta):
    """Compact beta for labels: 0 -> '0', 0.001 -> '1e-3', 2.5e-4 -> '2.5e-4', 1 -> '1', 10 -> '1e1'."""
    tag = beta_tag(float(beta))
    return "1" if tag == "1e0" else tag


def _read_csv(path, required, text=("objective",), **read_kw):
    """Read a CSV, failing loudly (file + expected columns named) if it is absent or incomplete.
    The ``text`` columns are kept as strings."""
    path = Path(path)
    expected = ", ".join(required)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: file not found (expected a CSV with columns: {expected})")
    try:
        df = pd.read_csv(path, **read_kw)
    except pd.errors.EmptyDataError:
        raise ValueError(f"{path}: file is empty (expected a CSV with columns: {expected})") from None
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(missing)} "
                         f"(expected columns: {expected}; found: {', '.join(map(str, df.columns))})")
    for c in text:
        df[c] = df[c].astype(str)
    return df


def _main_rows(df, path, K):
    """Keep the rows of the main bottleneck size K."""
    out = df[df["K"] == K]
    if out.empty:
        raise ValueError(f"{path}: no rows with K={K} (found K values: {sorted(df['K'].unique().tolist())})")
    return out


def _objectives_in(df):
    """Objectives present, known ones first in the canonical order, unknown ones after."""
    present = list(dict.fromkeys(df["objective"]))
    return [o for o in OBJECTIVES if o in present] + sorted(o for o in present if o not in OBJECTIVES)


def _color(objective):
    return COLORS.get(objective, "tab:green")


def _mean_std(df, by, value):
    """Mean, std (0 with a single seed) and seed count of `value` grouped by `by`, sorted by `by`."""
    g = df.dropna(subset=[value]).groupby(by)[value]
    out = pd.DataFrame({"mean": g.mean(), "std": g.std(ddof=1).fillna(0.0), "n": g.count()})
    return out.sort_index()


def _seeds_note(df):
    """'n seeds = 3', or 'n seeds = 2–3' when the number differs between runs."""
    counts = df.groupby(["objective", "beta"])["seed"].nunique()
    if counts.empty:
        return "n seeds = 0"
    lo, hi = int(counts.min()), int(counts.max())
    return f"n seeds = {lo}" if lo == hi else f"n seeds = {lo}–{hi}"


def _save(fig, stem):
    """Write <stem>.png and <stem>.pdf atomically; close the figure; return the paths."""
    stem = Path(stem)
    try:
        return [atomic_write(stem.with_name(f"{stem.name}.{fmt}"),
                             lambda f, fmt=fmt: fig.savefig(f, format=fmt, dpi=DPI))
                for fmt in ("png", "pdf")]
    finally:
        plt.close(fig)


def _plot_vs_beta(ax, df, value, scale=100.0):
    """On one axis: value vs beta (log x) for every beta-dependent objective, deterministic as a band."""
    for obj in _objectives_in(df):
        sub = df[df["objective"] == obj]
        color = _color(obj)
        if obj == "deterministic":
            s = _mean_std(sub, "objective", value)
            if s.empty:
                continue
            m, sd = s["mean"].iloc[0] * scale, s["std"].iloc[0] * scale
            ax.axhspan(m - sd, m + sd, color=color, alpha=0.15, lw=0)
            ax.axhline(m, color=color, ls="--", lw=1.5, label="deterministic (no β)")
            continue
        sub = sub[sub["beta"] > 0]  # log axis: beta = 0 cannot be drawn
        s = _mean_std(sub, "beta", value)
        if s.empty:
            continue
        ax.errorbar(s.index, s["mean"] * scale, yerr=s["std"] * scale, color=color,
                    marker=MARKERS.get(obj, "o"), ms=5, lw=1.5, capsize=3, label=obj)
    ax.set_xscale("log")
    ax.set_xlabel("β (regulariser weight: KL for vib, MMD² for vim)")
    ax.grid(True, which="major", alpha=0.3)


def _beta_panels(metrics_csv, stem, panels, ylabel, suptitle, K):
    """Shared body of error_vs_beta and representation_vs_beta: one panel per metric column."""
    df = _main_rows(_read_csv(metrics_csv, METRICS_COLUMNS), metrics_csv, K)
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4.2),
                             sharey=True, constrained_layout=True)
    for ax, (column, title) in zip(np.atleast_1d(axes), panels):
        _plot_vs_beta(ax, df, column)
        ax.set_title(title)
        ax.legend(loc="best", fontsize=9, framealpha=0.85)
    np.atleast_1d(axes)[0].set_ylabel(ylabel)
    fig.suptitle(f"{suptitle} (MNIST, K={K}) — mean ± std over seeds, {_seeds_note(df)}")
    return _save(fig, stem)

# -----------------------------------------------------------------------------
# model selection

def best_betas(validation_csv, K=MAIN_K):
    """
    For each objective, the beta with the lowest MEAN validation 12-sample error over seeds
    (ties -> the smaller beta). Deterministic has no beta -> 0.0. Reads validation data only.
    """
    df = _main_rows(_read_csv(validation_csv, VALIDATION_COLUMNS), validation_csv, K)
    df = df.dropna(subset=["val_err_12"])
    best = {}
    for obj in _objectives_in(df):
        if obj == "deterministic":
            best[obj] = 0.0
            continue
        means = df[df["objective"] == obj].groupby("beta")["val_err_12"].mean()
        tied = means[means <= means.min() + 1e-12]  # robust to float noise in the means
        best[obj] = float(min(tied.index))
    return best

# -----------------------------------------------------------------------------
# figures

def error_vs_beta(metrics_csv, stem, K=MAIN_K):
    """Test error (%) vs beta: 1-sample and 12-sample predictions, vib and vim, deterministic band."""
    panels = [("err_1", "1 sample of z per test image"),
              ("err_12", "12 samples of z, predictions averaged")]
    return _beta_panels(metrics_csv, stem, panels, "test error (%)", "Test error vs β", K)


def representation_vs_beta(metrics_csv, stem, K=MAIN_K):
    """Linear-probe and 5-NN accuracy (%) on the encoder mean vs beta."""
    panels = [("probe_acc", "Linear probe on frozen μ(x)"),
              ("knn_acc", "5-nearest-neighbour classifier on frozen μ(x)")]
    return _beta_panels(metrics_csv, stem, panels, "test accuracy (%)",
                        "Representation quality vs β", K)


def information_plane(metrics_csv, stem, K=MAIN_K):
    """I(Z;Y) vs I(Z;X) (log x), one path per objective in beta order, each point labelled with beta."""
    df = _main_rows(_read_csv(metrics_csv, METRICS_COLUMNS), metrics_csv, K)
    fig, ax = plt.subplots(figsize=(7.5, 5.2), constrained_layout=True)
    for obj in _objectives_in(df):
        if obj == "deterministic":
            continue  # no noise -> I(Z;X) is not finite
        sub = df[(df["objective"] == obj) & (df["rate_bits"] > 0)]
        x, y = _mean_std(sub, "beta", "rate_bits"), _mean_std(sub, "beta", "izy_bits")
        betas = x.index.intersection(y.index)
        if len(betas) == 0:
            continue
        x, y = x.loc[betas], y.loc[betas]
        color = _color(obj)
        ax.errorbar(x["mean"], y["mean"], xerr=x["std"], yerr=y["std"], color=color,
                    marker=MARKERS.get(obj, "o"), ms=5, lw=1.5, capsize=2, label=f"{obj} (β increases ←)")
        # label each point with its beta; vib above the point, vim below, to limit collisions
        dy = 6 if obj == "vib" else -11
        for beta, xm, ym in zip(betas, x["mean"], y["mean"]):
            ax.annotate(beta_label(beta), (xm, ym), xytext=(3, dy), textcoords="offset points",
                        fontsize=7, color=color)
    ax.axhline(MAX_IZY_BITS, color="k", ls="--", lw=1, label="max I(Z;Y) = log₂10 ≈ 3.32 bits")
    ax.plot([], [], ls="none", label="deterministic omitted: no noise, I(Z;X) not finite")
    ax.set_xscale("log")
    # plain numbers on the log axis (2, 3, 5, 10, 20, ...), not 2x10^0
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(FuncFormatter(
        lambda v, _: f"{v:g}" if round(v / 10 ** np.floor(np.log10(v))) in (2, 3, 5) else ""))
    ax.tick_params(axis="x", which="both", labelsize=8)
    ax.margins(x=0.08, y=0.08)  # room for the beta labels at both ends
    ax.set_xlabel("I(Z;X) upper bound: rate E KL(p(z|x) ‖ N(0,I)) (bits, log scale)")
    ax.set_ylabel("I(Z;Y) (bits)")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(loc="lower right", fontsize=8, framealpha=0.9)
    ax.set_title(f"Information plane (MNIST, K={K}) — mean ± std over seeds, {_seeds_note(df)}")
    return _save(fig, stem)


def robustness(robustness_csv, validation_csv, stem, K=MAIN_K):
    """Accuracy (%) under three corruptions, each objective at its validation-selected beta."""
    df = _read_csv(robustness_csv, ROBUSTNESS_COLUMNS)
    best = best_betas(validation_csv, K=K)
    # keep, per objective, only the rows at that objective's selected beta
    keep = []
    for obj in _objectives_in(df):
        if obj not in best:
            warnings.warn(f"{robustness_csv}: objective {obj!r} has no validation runs; not plotted")
            continue
        rows = df[(df["objective"] == obj) & np.isclose(df["beta"], best[obj], rtol=1e-9, atol=0)]
        if rows.empty:
            warnings.warn(f"{robustness_csv}: no rows for {obj} at its best beta {best[obj]}; not plotted")
            continue
        keep.append(rows)
    sel = pd.concat(keep) if keep else df.iloc[:0]

    fig, axes = plt.subplots(1, len(ATTACKS), figsize=(15, 4.3), sharey=True, constrained_layout=True)
    for ax, (attack, title, xlabel) in zip(axes, ATTACKS):
        for obj in _objectives_in(sel):
            s = _mean_std(sel[(sel["objective"] == obj) & (sel["attack"] == attack)], "level", "acc")
            if s.empty:
                continue
            label = obj if obj == "deterministic" else f"{obj} (β={beta_label(best[obj])})"
            m, sd = s["mean"] * 100, s["std"] * 100
            ax.plot(s.index, m, color=_color(obj), marker=MARKERS.get(obj, "o"), ms=4, lw=1.5, label=label)
            ax.fill_between(s.index, m - sd, m + sd, color=_color(obj), alpha=0.2, lw=0)
        ax.set_title(title)
        ax.set_xlabel(xlabel)
        ax.set_ylim(0, 101)
        ax.grid(True, alpha=0.3)
        ax.legend(loc="lower left", fontsize=9, framealpha=0.85)
    axes[0].set_ylabel("test accuracy (%)")
    fig.suptitle(f"Robustness (MNIST, K={K}), β chosen on validation 12-sample error — "
                 f"mean ± std over seeds, {_seeds_note(sel)}")
    return _save(fig, stem)


def _load_embedding(path):
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: file not found (expected an .npz with arrays: {', '.join(EMBEDDING_KEYS)})")
    with np.load(path, allow_pickle=False) as d:
        missing = [k for k in EMBEDDING_KEYS if k not in d.files]
        if missing:
            raise ValueError(f"{path}: missing array(s) {', '.join(missing)} "
                             f"(expected: {', '.join(EMBEDDING_KEYS)})")
        e = {k: d[k] for k in EMBEDDING_KEYS}
    e["objective"], e["beta"], e["err_12"] = str(e["objective"]), float(e["beta"]), float(e["err_12"])
    e["path"] = path
    return e


def _entropy_bits(W, b, zx, zy):
    """Entropy (bits) of q(y|z) = softmax(W z + b) on the grid of points (zx, zy)."""
    z = np.stack([zx.ravel(), zy.ravel()], axis=1)
    logits = z @ W.T + b
    logits -= logits.max(axis=1, keepdims=True)
    p = np.exp(logits)
    p /= p.sum(axis=1, keepdims=True)
    h = -(p * np.log2(np.clip(p, 1e-300, None))).sum(axis=1)
    return h.reshape(zx.shape)


def embedding_k2(npz_paths, stem, max_points=1000, grid=200, seed=0):
    """
    K=2 embeddings: rows = objective, columns = its betas (increasing). Each panel shows 95% ellipses of
    p(z|x) for up to max_points test points coloured by class, over the entropy of q(y|z) (grey).
    """
    if not npz_paths:
        raise ValueError("embedding_k2: no .npz files given")
    embs = [_load_embedding(p) for p in sorted(map(Path, npz_paths))]
    # one model per (objective, beta): if several seeds were given, keep the first path
    by_obj = {}
    for e in embs:
        by_obj.setdefault(e["objective"], {}).setdefault(e["beta"], e)
    objs = [o for o in OBJECTIVES if o in by_obj] + sorted(o for o in by_obj if o not in OBJECTIVES)
    ncols = max(len(v) for v in by_obj.values())
    nrows = len(objs)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.3 * ncols + 1.6, 3.3 * nrows + 0.6),
                             squeeze=False, constrained_layout=True)
    cmap = plt.get_cmap("tab10")
    rng = np.random.default_rng(seed)
    radius = np.sqrt(CHI2_2DOF_95)
    image = None
    for r, obj in enumerate(objs):
        betas = sorted(by_obj[obj])
        for c in range(ncols):
            ax = axes[r, c]
            if c >= len(betas):
                ax.axis("off")
                continue
            e = by_obj[obj][betas[c]]
            n = len(e["y"])
            idx = rng.choice(n, size=min(n, max_points), replace=False)
            mu, sigma, y = e["mu"][idx], e["sigma"][idx], e["y"][idx].astype(int)
            # view: cover the points (robust to a few far outliers) with a margin
            lo = np.percentile(mu - radius * sigma, 0.5, axis=0)
            hi = np.percentile(mu + radius * sigma, 99.5, axis=0)
            pad = 0.08 * (hi - lo) + 1e-6
            lo, hi = lo - pad, hi + pad
            zx, zy = np.meshgrid(np.linspace(lo[0], hi[0], grid), np.linspace(lo[1], hi[1], grid))
            H = _entropy_bits(e["W"], e["b"], zx, zy)
            image = ax.imshow(H, extent=(lo[0], hi[0], lo[1], hi[1]), origin="lower", cmap="Greys",
                              vmin=0, vmax=MAX_IZY_BITS, alpha=0.55, aspect="auto", interpolation="bilinear")
            colors = cmap(y % 10)
            fill, edge = colors.copy(), colors.copy()
            fill[:, 3], edge[:, 3] = 0.12, 0.45
            ells = EllipseCollection(2 * radius * sigma[:, 0], 2 * radius * sigma[:, 1], np.zeros(len(y)),
                                     units="xy", offsets=mu, offset_transform=ax.transData,
                                     facecolors=fill, edgecolors=edge, linewidths=0.4)
            ells.set_rasterized(True)  # keeps the PDF small and fast with thousands of ellipses
            ax.add_collection(ells)
            ax.scatter(mu[:, 0], mu[:, 1], s=2, c=colors, lw=0, rasterized=True)
            ax.set_xlim(lo[0], hi[0])
            ax.set_ylim(lo[1], hi[1])
            ax.set_title(f"{obj} β={beta_label(e['beta'])}, err12={100 * e['err_12']:.1f}%", fontsize=10)
            ax.tick_params(labelsize=7)
            if r == nrows - 1 or c >= len(by_obj[objs[r + 1]]):  # bottom of its column
                ax.set_xlabel("z₁", fontsize=8)
            if c == 0:
                ax.set_ylabel("z₂", fontsize=8)
    handles = [Line2D([], [], ls="none", marker="o", color=cmap(k), label=str(k)) for k in range(10)]
    fig.legend(handles=handles, title="digit", loc="outside right upper", fontsize=8, title_fontsize=9)
    if image is not None:
        cb = fig.colorbar(image, ax=axes, location="right", shrink=0.5, pad=0.01)
        cb.set_label("entropy of q(y|z) (bits)")
    fig.suptitle(f"K=2 bottleneck: 95% ellipses of p(z|x) for {max_points} test points, "
                 f"background = decoder uncertainty")
    return _save(fig, stem)

# -----------------------------------------------------------------------------
# everything

def make_vib_vim_figures(metrics_csv, validation_csv, robustness_csv, embedding_npzs, figures_dir):
    """Render all VIB-vs-VIM figures into figures_dir; return every written path."""
    figures_dir = Path(figures_dir)
    figures_dir.mkdir(parents=True, exist_ok=True)
    written = []
    written += error_vs_beta(metrics_csv, figures_dir / "error_vs_beta")
    written += information_plane(metrics_csv, figures_dir / "information_plane")
    written += robustness(robustness_csv, validation_csv, figures_dir / "robustness")
    written += representation_vs_beta(metrics_csv, figures_dir / "representation_vs_beta")
    written += embedding_k2(list(embedding_npzs), figures_dir / "embedding_k2")
    return written

# =============================================================================
# Study B: Deep InfoMax (DIM) vs InfoBal — self-supervised pre-training, then probes
#
# Inputs (written by `collect-infobal`):
# - curves.csv     : method,estimator,seed,epoch,mi_estimate,probe_acc   (no rows for `random`)
# - probes.csv     : method,estimator,seed,layer,probe,acc               (`random`/`none` included)
# - robustness.csv : method,estimator,seed,attack,level,acc              (`random`/`none` included)
#
# Every figure draws the mean over seeds and, as its spread, the min–max range over seeds (a band
# or an error bar; with one seed it collapses onto the mean).  Colour = method: DIM runs in blues /
# teal, InfoBal runs in oranges / reds, the untrained `random` encoder in grey, dashed.  MI
# estimates of different estimators have different scales, so every estimator gets its own panel.

RANDOM_METHOD = RANDOM[0]
RANDOM_COLOR = "0.45"
FAMILY_PALETTES = {
    "dim": ["#08519c", "#17a2b8", "#6baed6", "#3f007d"],              # cool: DIM
    "infobal": ["#e6550d", "#a50f15", "#f4a21b", "#e7298a", "#7f2704"],  # warm: InfoBal
    "other": ["#31a354", "#756bb1", "#8c6d31", "#636363"],
}
INFOBAL_ESTIMATORS = ("jsd", "dv", "nce")  # plotting order
ESTIMATOR_LABELS = {"jsd": "JSD", "dv": "DV", "nce": "infoNCE"}
INFOBAL_LAYERS = (("y", "Y / R"), ("fc", "fc"), ("conv", "conv"))  # plotting order, label
LAYER_MARKERS = {"y": "o", "fc": "s", "conv": "^"}
PROBE_KINDS = (("linear", "linear (4 ep., InfoBal post)"), ("mlp", "MLP 200 (DIM)"))
NOISE_ATTACK = "gaussian"
_DIM_NAME = re.compile(r"^dim_([gl])(?:_(.+))?$")
_INFOBAL_NAME = re.compile(r"^infobal_m(\d+)(?:_(.+))?$")
_SUFFIX_LABELS = {"club": "CLUB", "r": "target R"}


def _suffix_label(suffix):
    return "" if not suffix else f" ({_SUFFIX_LABELS.get(suffix, suffix.replace('_', ' '))})"


def infobal_method_label(method):
    """dim_g -> 'DIM(G)', infobal_m4 -> 'InfoBal M=4', infobal_m2_club -> 'InfoBal M=2 (CLUB)',
    random -> 'random init (untrained)'; unknown names are returned as they are."""
    method = str(method)
    if method == RANDOM_METHOD:
        return "random init (untrained)"
    m = _DIM_NAME.match(method)
    if m:
        return f"DIM({m.group(1).upper()}){_suffix_label(m.group(2))}"
    m = _INFOBAL_NAME.match(method)
    if m:
        return f"InfoBal M={int(m.group(1))}{_suffix_label(m.group(2))}"
    return method


def infobal_estimator_label(estimator):
    return ESTIMATOR_LABELS.get(str(estimator), str(estimator))


def infobal_run_label(method, estimator):
    """'DIM(G) JSD', 'InfoBal M=2 DV', ...; the random floor has no estimator."""
    if str(method) == RANDOM_METHOD:
        return infobal_method_label(method)
    return f"{infobal_method_label(method)} {infobal_estimator_label(estimator)}"


def _family(method):
    if method == RANDOM_METHOD:
        return "random"
    if method.startswith("dim"):
        return "dim"
    if method.startswith("infobal"):
        return "infobal"
    return "other"


def _method_key(method):
    """Canonical order: DIM(G), DIM(L), other DIM, InfoBal by M then suffix, unknown, random."""
    m = _DIM_NAME.match(method)
    if m:
        return (0, m.group(1), 0, m.group(2) or "", method)
    m = _INFOBAL_NAME.match(method)
    if m:
        return (1, "", int(m.group(1)), m.group(2) or "", method)
    rank = {"dim": 0, "infobal": 1, "other": 2, "random": 3}[_family(method)]
    return (rank, "~", 0, "", method)


def _methods_in(df):
    return sorted(set(df["method"]), key=_method_key)


def _estimators_in(df):
    """Estimators of the trained runs: jsd, dv, nce first, unknown ones after (random's 'none' left out)."""
    present = set(df.loc[df["method"] != RANDOM_METHOD, "estimator"])
    return [e for e in INFOBAL_ESTIMATORS if e in present] + sorted(present - set(INFOBAL_ESTIMATORS))


def _ordered(values, canonical):
    present = set(values)
    return [v for v in canonical if v in present] + sorted(present - set(canonical))


def _runs_in(df):
    """(method, estimator) pairs: methods in canonical order, then estimators; random last."""
    pairs = set(zip(df["method"], df["estimator"]))
    order = {e: i for i, e in enumerate(INFOBAL_ESTIMATORS)}
    return sorted(pairs, key=lambda p: (_method_key(p[0]), order.get(p[1], len(order)), p[1]))


def _method_colors(methods):
    """Colour per method: a palette per family (DIM cool, InfoBal warm), random grey."""
    colors, used = {}, {}
    for m in sorted(set(methods), key=_method_key):
        fam = _family(m)
        if fam == "random":
            colors[m] = RANDOM_COLOR
            continue
        palette = FAMILY_PALETTES[fam]
        colors[m] = palette[used.get(fam, 0) % len(palette)]
        used[fam] = used.get(fam, 0) + 1
    return colors


def _read_table(path, required, text):
    """Read a study-B CSV: file + expected columns named on any problem; an empty table is an error.
    `text` columns are kept as strings ('none' is the random run's estimator, not a missing value),
    every other required column must be numeric (empty cells -> NaN)."""
    path = Path(path)
    expected = ", ".join(required)
    df = _read_csv(path, required, text=text, keep_default_na=False, na_values=["", "nan", "NaN", "NA"])
    if df.empty:
        raise ValueError(f"{path}: the table has no rows (expected a CSV with columns: {expected})")
    for c in (c for c in required if c not in text):
        try:
            df[c] = pd.to_numeric(df[c])
        except (ValueError, TypeError) as err:
            raise ValueError(f"{path}: column {c} must be numeric ({err})") from None
    return df


def _spread(df, keys, value):
    """Mean, min (lo), max (hi) and count over seeds of `value` per `keys`; NaN/inf rows dropped."""
    d = df[list(keys) + [value]].replace([np.inf, -np.inf], np.nan).dropna(subset=[value])
    g = d.groupby(list(keys), sort=True)[value]
    return g.agg(mean="mean", lo="min", hi="max", n="count").reset_index()


def _runs_seeds_note(df):
    """'n seeds = 3', or 'n seeds = 2–3' when the number differs between runs (method × estimator)."""
    counts = df.groupby(["method", "estimator"])["seed"].nunique()
    if counts.empty:
        return "n seeds = 0"
    lo, hi = int(counts.min()), int(counts.max())
    note = f"n seeds = {lo}" if lo == hi else f"n seeds = {lo}–{hi}"
    return note + " (no spread)" if hi == 1 else note


def random_floor(probes, layer="y", probe="linear"):
    """The untrained encoder's probe accuracy (fraction): mean over seeds of probes.csv rows with
    method 'random' at `layer` and `probe`; NaN when there are none."""
    rows = probes[(probes["method"] == RANDOM_METHOD) & (probes["layer"] == layer) & (probes["probe"] == probe)]
    acc = rows["acc"].replace([np.inf, -np.inf], np.nan).dropna()
    return float(acc.mean()) if len(acc) else float("nan")


def _band_line(ax, s, color, scale=1.0, x="epoch", gid=None, **kw):
    """Mean line with a min–max band from a _spread table."""
    xs = s[x].to_numpy()
    ax.fill_between(xs, s["lo"] * scale, s["hi"] * scale, color=color, alpha=0.15, lw=0)
    style = dict(lw=1.6, ms=4)
    style.update(kw)
    (line,) = ax.plot(xs, s["mean"] * scale, color=color, gid=gid, **style)
    return line


def _method_handles(methods, colors):
    return [Line2D([], [], color=colors[m], lw=2, label=infobal_method_label(m)) for m in methods]


def curve_floor(curves):
    """The curve probe's accuracy on the untrained random encoder (its epoch-0 rows), mean over seeds;
    NaN if curves.csv has no such rows."""
    rnd = curves[curves["method"] == RANDOM_METHOD]["probe_acc"]
    return float(rnd.mean()) if len(rnd) else float("nan")


def infobal_curves(curves_csv, stem):
    """The InfoBal post's figure: MI estimate (top row) and linear-probe accuracy on val (bottom row)
    vs epoch, one column per estimator, a line per method; the same probe on the untrained random
    encoder (its epoch-0 curve point) dashed."""
    curves = _read_table(curves_csv, CURVES_COLUMNS, text=("method", "estimator"))
    floor = curve_floor(curves)
    curves = curves[curves["method"] != RANDOM_METHOD]  # the floor is a line, not a curve
    ests = _estimators_in(curves)
    if not ests:
        raise ValueError(f"{curves_csv}: no rows of a trained method (only {RANDOM_METHOD!r})")
    if np.isnan(floor):
        warnings.warn(f"{curves_csv}: no rows with method={RANDOM_METHOD}; random-init floor not drawn")
    methods = _methods_in(curves)
    colors = _method_colors(methods)
    n_epochs = curves["epoch"].nunique()
    marker = "o" if n_epochs <= 25 else None

    n = len(ests)
    fig, axes = plt.subplots(2, n, figsize=(max(4.2 * n + 2.9, 11.5), 7.2), squeeze=False, sharex=True,
                             constrained_layout=True)
    for j, est in enumerate(ests):
        ax_mi, ax_acc = axes[0, j], axes[1, j]
        ax_mi.set_gid(f"mi:{est}")
        ax_acc.set_gid(f"acc:{est}")
        if j:
            ax_acc.sharey(axes[1, 0])  # accuracies are comparable across estimators; MI values are not
        sub = curves[curves["estimator"] == est]
        for method in _methods_in(sub):
            rows = sub[sub["method"] == method]
            gid = f"{method}/{est}"
            label = infobal_run_label(method, est)
            for ax, value, scale in ((ax_mi, "mi_estimate", 1.0), (ax_acc, "probe_acc", 100.0)):
                s = _spread(rows, ["epoch"], value)
                if not s.empty:
                    _band_line(ax, s, colors[method], scale=scale, gid=gid, label=label, marker=marker)
        if not np.isnan(floor):
            ax_acc.axhline(100 * floor, color=RANDOM_COLOR, ls="--", lw=1.4, gid="random_floor",
                           label="random init")
        ax_mi.set_title(f"{infobal_estimator_label(est)} estimator")
        ax_mi.set_ylabel(f"{infobal_estimator_label(est)} MI lower bound (nats)")
        ax_acc.set_ylabel("linear-probe accuracy, val (%)")
        ax_acc.set_xlabel("epoch (0 = initialisation)")
        ax_acc.xaxis.set_major_locator(MaxNLocator(integer=True, steps=[1, 2, 5, 10]))
        for ax in (ax_mi, ax_acc):
            ax.grid(True, alpha=0.3)
    handles = _method_handles(methods, colors)
    if not np.isnan(floor):
        handles.append(Line2D([], [], color=RANDOM_COLOR, ls="--", lw=1.4,
                              label="random init (untrained),\nthe same probe"))
    handles.append(Patch(color="0.5", alpha=0.25, lw=0, label="min–max over seeds"))
    fig.legend(handles=handles, loc="outside right center", fontsize=9, framealpha=0.9)  # clear of the title
    fig.suptitle("Study B pre-training curves\n"
                 f"line = mean, band = min–max over seeds, {_runs_seeds_note(curves)}\n"
                 "MI estimators differ in scale (one panel each); linear probe on Y / R, scored on val")
    return _save(fig, stem)


def infobal_probes(probes_csv, stem):
    """Final test accuracy of the probes: one row per method × estimator (random last), one marker per
    layer (Y/R, fc, conv), one panel per probe kind; dot = mean, bar = min–max over seeds."""
    probes = _read_table(probes_csv, PROBES_COLUMNS, text=("method", "estimator", "layer", "probe"))
    kinds = _ordered(probes["probe"], [k for k, _ in PROBE_KINDS])
    layers = _ordered(probes["layer"], [l for l, _ in INFOBAL_LAYERS])
    runs = _runs_in(probes)
    colors = _method_colors(probes["method"])
    kind_titles, layer_labels = dict(PROBE_KINDS), dict(INFOBAL_LAYERS)
    s = _spread(probes, ["method", "estimator", "probe", "layer"], "acc")
    offsets = np.linspace(-0.25, 0.25, len(layers)) if len(layers) > 1 else np.zeros(1)

    fig, axes = plt.subplots(1, len(kinds), figsize=(max(4.4 * len(kinds) + 3.6, 10.0), 0.34 * len(runs) + 2.2),
                             sharey=True, squeeze=False, constrained_layout=True)
    for ax, kind in zip(axes[0], kinds):
        ax.set_gid(f"probe:{kind}")
        for i, (method, est) in enumerate(runs):
            if i % 2:
                ax.axhspan(i - 0.5, i + 0.5, color="0.94", lw=0, zorder=0)
            for off, layer in zip(offsets, layers):
                r = s[(s["method"] == method) & (s["estimator"] == est) & (s["probe"] == kind)
                      & (s["layer"] == layer)]
                if r.empty:
                    continue
                m, lo, hi = (100 * float(r[c].iloc[0]) for c in ("mean", "lo", "hi"))
                ax.errorbar([m], [i + off], xerr=[[max(m - lo, 0.0)], [max(hi - m, 0.0)]],
                            fmt=LAYER_MARKERS.get(layer, "D"), color=colors[method], ms=5, lw=1.2,
                            capsize=2, gid=f"{method}/{est}/{layer}")
        # separators between the DIM, InfoBal, other and random groups
        fams = [_family(m) for m, _ in runs]
        for i in range(1, len(runs)):
            if fams[i] != fams[i - 1]:
                ax.axhline(i - 0.5, color="0.6", lw=0.8)
        floor = random_floor(probes, "y", kind)
        if not np.isnan(floor):
            ax.axvline(100 * floor, color=RANDOM_COLOR, ls="--", lw=1.2, zorder=1, gid="random_floor")
        ax.set_title(f"probe: {kind_titles.get(kind, kind)}")
        ax.set_xlabel("test accuracy (%)")
        ax.grid(True, axis="x", alpha=0.3)
    ax0 = axes[0, 0]
    ax0.set_yticks(range(len(runs)), [infobal_run_label(m, e) for m, e in runs])
    for tick, (method, _) in zip(ax0.get_yticklabels(), runs):
        tick.set_color(colors[method])
    ax0.set_ylim(len(runs) - 0.5, -0.5)  # first run on top
    handles = [Line2D([], [], ls="none", marker=LAYER_MARKERS.get(layer, "D"), color="k",
                      label=f"layer {layer_labels.get(layer, layer)}") for layer in layers]
    handles.append(Line2D([], [], color=RANDOM_COLOR, ls="--", lw=1.2, label="random init, layer Y / R"))
    fig.legend(handles=handles, loc="outside right upper", fontsize=9, framealpha=0.9)
    fig.suptitle("Study B probe accuracy on the test split\n"
                 f"dot = mean, bar = min–max over seeds, {_runs_seeds_note(probes)}")
    return _save(fig, stem)


def infobal_robustness(robustness_csv, stem):
    """Linear-probe (Y / R) test accuracy vs Gaussian noise std: one panel per estimator, a line per
    method, the untrained encoder dashed grey in every panel; mean with a min–max band over seeds."""
    df = _read_table(robustness_csv, INFOBAL_ROBUSTNESS_COLUMNS, text=("method", "estimator", "attack"))
    noise = df[df["attack"] == NOISE_ATTACK]
    if noise.empty:
        raise ValueError(f"{robustness_csv}: no rows with attack={NOISE_ATTACK} "
                         f"(found: {', '.join(sorted(set(df['attack'])))})")
    others = sorted(set(df["attack"]) - {NOISE_ATTACK})
    if others:
        warnings.warn(f"{robustness_csv}: attack(s) {', '.join(others)} not plotted")
    trained = noise[noise["method"] != RANDOM_METHOD]
    rnd = _spread(noise[noise["method"] == RANDOM_METHOD], ["level"], "acc")
    ests = _estimators_in(noise) or [None]  # only random rows: one panel
    methods = _methods_in(trained)
    colors = _method_colors(methods)

    fig, axes = plt.subplots(1, len(ests), figsize=(max(4.2 * len(ests) + 2.9, 10.0), 4.6), sharey=True,
                             squeeze=False, constrained_layout=True)
    for ax, est in zip(axes[0], ests):
        ax.set_gid(f"robustness:{est}")
        sub = trained[trained["estimator"] == est]
        for method in _methods_in(sub):
            s = _spread(sub[sub["method"] == method], ["level"], "acc")
            if not s.empty:
                _band_line(ax, s, colors[method], scale=100.0, x="level", gid=f"{method}/{est}",
                           label=infobal_run_label(method, est), marker="o")
        if not rnd.empty:
            _band_line(ax, rnd, RANDOM_COLOR, scale=100.0, x="level", gid=f"{RANDOM_METHOD}/{RANDOM[1]}",
                       label=infobal_method_label(RANDOM_METHOD), marker="s", ls="--")
        ax.set_title(f"{infobal_estimator_label(est)} estimator" if est else "untrained encoder only")
        ax.set_xlabel("Gaussian noise std σ (pixel units, images in [0, 1])")
        ax.set_ylim(0, 101)
        ax.grid(True, alpha=0.3)
    axes[0, 0].set_ylabel("linear probe on Y / R, noisy test images: accuracy (%)")
    handles = _method_handles(methods, colors)
    if not rnd.empty:
        handles.append(Line2D([], [], color=RANDOM_COLOR, ls="--", marker="s", ms=4,
                              label=infobal_method_label(RANDOM_METHOD)))
    handles.append(Patch(color="0.5", alpha=0.25, lw=0, label="min–max over seeds"))
    fig.legend(handles=handles, loc="outside right upper", fontsize=9, framealpha=0.9)
    fig.suptitle("Study B robustness to Gaussian pixel noise\n"
                 f"line = mean, band = min–max over seeds, {_runs_seeds_note(noise)}")
    return _save(fig, stem)


def make_infobal_figures(curves_csv, probes_csv, robustness_csv, figures_dir):
    """Render all study-B figures into figures_dir; return every written path."""
    figures_dir = Path(figures_dir)
    figures_dir.mkdir(parents=True, exist_ok=True)
    written = []
    written += infobal_curves(curves_csv, figures_dir / "infobal_curves")
    written += infobal_probes(probes_csv, figures_dir / "infobal_probes")
    written += infobal_robustness(robustness_csv, figures_dir / "infobal_robustness")
    return written
