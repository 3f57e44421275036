"""Study A's figures (VIM vs VIB on MNIST): one function per figure.

Every figure function takes input paths and an output *stem* (a Path without suffix), writes
<stem>.png and <stem>.pdf atomically and returns the written paths.  Inputs are the collected
tables (columns: ``vib_vim.tables.COLUMNS``) and the K=2 embeddings (one .npz per model with mu,
sigma, y, W, b, objective, beta, err_avg).  Labels, colours and model selection come from
``vib_vim.tables``: the robustness figure shows each objective at its validation-best beta
(or its only beta, without a validation split).
"""

import textwrap
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from ..figures import plt, save_figure
NAME = __name__.split(".")[-2]     # the study package's name: figure files are <study>_<function>
from ..attacks import ATTACKS
from .tables import MARKERS, OBJECTIVES, beta_label, choose, main_rows, objectives_in, objective_color, read
from matplotlib.collections import EllipseCollection
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter

MAX_IZY_BITS = float(np.log2(10))  # I(Z;Y) <= H(Y) = log2(10) for 10 balanced classes
CHI2_2DOF_95 = 5.991  # chi2 quantile, 2 dof, 0.95 -> 95% ellipse of a 2-d Gaussian
EMBEDDING_KEYS = ["mu", "sigma", "y", "W", "b", "objective", "beta", "err_avg"]


# -----------------------------------------------------------------------------
# small helpers

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


def _plot_vs_beta(ax, df, value, scale=100.0):
    """On one axis: value vs beta (log x) for every beta-dependent objective, deterministic as a band."""
    for obj in objectives_in(df):
        sub = df[df["objective"] == obj]
        color = objective_color(obj)
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
    df = main_rows(read(metrics_csv, "metrics"), metrics_csv, K)
    K = int(df["K"].iloc[0])
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4.2),
                             sharey=True, constrained_layout=True)
    for ax, (column, title) in zip(np.atleast_1d(axes), panels):
        _plot_vs_beta(ax, df, column)
        ax.set_title(title)
        ax.legend(loc="best", fontsize=9, framealpha=0.85)
    np.atleast_1d(axes)[0].set_ylabel(ylabel)
    fig.suptitle(f"{suptitle} (MNIST, K={K}) — mean ± std over seeds, {_seeds_note(df)}")
    return save_figure(fig, stem)

# -----------------------------------------------------------------------------
# figures

def samples_text(samples) -> str:
    """'12 samples' (err_avg's count, vib_vim.evaluate.samples), or 'samples' where it is not given."""
    return "samples" if samples is None else f"{samples} samples"


def error_vs_beta(metrics_csv, stem, K=None, samples=None):
    """Test error (%) vs beta: 1-sample and sample-averaged predictions, vib and vim, deterministic band.
    ``samples``: how many samples of z err_avg averaged (vib_vim.evaluate.samples)."""
    panels = [("err_1", "1 sample of z per test image"),
              ("err_avg", f"{samples_text(samples)} of z, predictions averaged")]
    return _beta_panels(metrics_csv, stem, panels, "test error (%)", "Test error vs β", K)


def representation_vs_beta(metrics_csv, stem, K=None):
    """Linear-probe and 5-NN accuracy (%) on the encoder mean vs beta."""
    panels = [("probe_acc", "Linear probe on frozen μ(x)"),
              ("knn_acc", "5-nearest-neighbour classifier on frozen μ(x)")]
    return _beta_panels(metrics_csv, stem, panels, "test accuracy (%)",
                        "Representation quality vs β", K)


def information_plane(metrics_csv, stem, K=None):
    """I(Z;Y) vs I(Z;X) (log x), one path per objective in beta order, each point labelled with beta."""
    df = main_rows(read(metrics_csv, "metrics"), metrics_csv, K)
    K = int(df["K"].iloc[0])
    fig, ax = plt.subplots(figsize=(7.5, 5.2), constrained_layout=True)
    for obj in objectives_in(df):
        if obj == "deterministic":
            continue  # no noise -> I(Z;X) is not finite
        sub = df[(df["objective"] == obj) & (df["rate_bits"] > 0)]
        x, y = _mean_std(sub, "beta", "rate_bits"), _mean_std(sub, "beta", "izy_bits")
        betas = x.index.intersection(y.index)
        if len(betas) == 0:
            continue
        x, y = x.loc[betas], y.loc[betas]
        color = objective_color(obj)
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
    return save_figure(fig, stem)


def robustness(robustness_csv, validation_csv, stem, K=None, samples=None):
    """Accuracy (%) under each attack, each objective at its validation-selected beta (``samples``:
    of z, in the validation error that selects it).  Without a validation split (val_size 0: every
    val_err_avg empty) each objective has one beta, and the title says so instead of a selection."""
    df = read(robustness_csv, "robustness")
    choice = choose(validation_csv, K=K)
    best, K = choice.best, choice.K
    # keep, per objective, only the rows at that objective's selected beta
    keep = []
    for obj in objectives_in(df):
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
    for ax, (attack, title, xlabel) in zip(axes, [(a.name, a.title, a.level) for a in ATTACKS.values()]):
        for obj in objectives_in(sel):
            s = _mean_std(sel[(sel["objective"] == obj) & (sel["attack"] == attack)], "level", "acc")
            if s.empty:
                continue
            label = obj if obj == "deterministic" else f"{obj} (β={beta_label(best[obj])})"
            m, sd = s["mean"] * 100, s["std"] * 100
            ax.plot(s.index, m, color=objective_color(obj), marker=MARKERS.get(obj, "o"), ms=4, lw=1.5, label=label)
            ax.fill_between(s.index, m - sd, m + sd, color=objective_color(obj), alpha=0.2, lw=0)
        ax.set_title(title)
        ax.set_xlabel(xlabel)
        ax.set_ylim(0, 101)
        ax.grid(True, alpha=0.3)
        ax.legend(loc="lower left", fontsize=9, framealpha=0.85)
    axes[0].set_ylabel("test accuracy (%)")
    if choice.selected:
        chosen_on = "sample-averaged" if samples is None else f"{samples}-sample"
        how = f"β chosen on validation {chosen_on} error"
    else:
        how = f"each objective at its {choice.words.replace('beta', 'β')}"
    fig.suptitle(f"Robustness (MNIST, K={K}), {how} — mean ± std over seeds, {_seeds_note(sel)}")
    return save_figure(fig, stem)


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
    e["objective"], e["beta"], e["err_avg"] = str(e["objective"]), float(e["beta"]), float(e["err_avg"])
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


def embedding_k2(npz_paths, stem, max_points=1000, grid=200, seed=0, samples=None):
    """
    K=2 embeddings: rows = objective, columns = its betas (increasing). Each panel shows 95% ellipses of
    p(z|x) for up to max_points test points coloured by class, over the entropy of q(y|z) (grey);
    each title has the model's err_avg (over ``samples`` samples of z).
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
            ax.set_title(f"{obj} β={beta_label(e['beta'])}, err{'_avg' if samples is None else samples}="
                         f"{100 * e['err_avg']:.1f}%", fontsize=10)
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
    title = f"K=2 bottleneck: 95% ellipses of p(z|x) for {max_points} test points, background = decoder uncertainty"
    # wrapped to the figure's width: one panel (table1) is too narrow for it on one line
    fig.suptitle("\n".join(textwrap.wrap(title, int(9 * fig.get_figwidth()))), fontsize=11)
    return save_figure(fig, stem)

# -----------------------------------------------------------------------------
# everything

def make_figures(metrics_csv, validation_csv, robustness_csv, embedding_npzs, figures_dir, samples=None):
    """Render all VIB-vs-VIM figures into figures_dir; return every written path.  ``samples``: how
    many samples of z err_avg averaged (vib_vim.evaluate.samples), for the labels."""
    figures_dir = Path(figures_dir)
    figures_dir.mkdir(parents=True, exist_ok=True)
    written = []
    counted = {"samples": samples}
    for draw, inputs, kw in ((error_vs_beta, [metrics_csv], counted), (information_plane, [metrics_csv], {}),
                             (robustness, [robustness_csv, validation_csv], counted),
                             (representation_vs_beta, [metrics_csv], {}),
                             (embedding_k2, [list(embedding_npzs)], counted)):
        written += draw(*inputs, figures_dir / f"{NAME}_{draw.__name__}", **kw)     # study.FIGURES
    return written

