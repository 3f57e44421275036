"""Study B's figures (InfoBal vs DIM): pre-training curves, probe accuracies, robustness.

Inputs are the collected tables (columns: ``dim_infobal.tables.COLUMNS``): curves.csv (the
untrained `random` encoder has only its epoch-0 point), probes.csv and robustness.csv (`random` /
`none` included).  Every figure draws the mean over seeds and, as its spread, the min–max range
over seeds (a band or an error bar; with one seed it collapses onto the mean).  Colour = method,
from its config kind (``tables.Methods``): DIM in blues / teal, InfoBal in oranges / reds, the
untrained encoder grey and dashed.  MI estimates of different estimators have different scales,
so every estimator gets its own panel.
"""

import warnings

import numpy as np
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from ..attacks import ATTACKS
from ..figures import plt, save_figure
NAME = __name__.split(".")[-2]     # the study package's name: figure files are <study>_<function>
from .runs import NOISE_ATTACK
from .tables import (LAYER_LABELS, LAYER_MARKERS, RANDOM, RANDOM_COLOR,
                     RANDOM_METHOD, Methods, estimator_label, estimator_order, probe_order, probe_title,
                     read)


def _methods_in(df, methods: Methods):
    return sorted(set(df["method"]), key=methods.key)


def _estimators_in(df):
    """Estimators of the trained runs: jsd, dv, nce first, unknown ones after (random's 'none' left out)."""
    present = set(df.loc[df["method"] != RANDOM_METHOD, "estimator"])
    order = estimator_order()
    return [e for e in order if e in present] + sorted(present - set(order))


def _ordered(values, canonical):
    present = set(values)
    return [v for v in canonical if v in present] + sorted(present - set(canonical))


def _runs_in(df, methods: Methods):
    """(method, estimator) pairs: methods in canonical order, then estimators; random last."""
    pairs = set(zip(df["method"], df["estimator"]))
    order = {e: i for i, e in enumerate(estimator_order())}
    return sorted(pairs, key=lambda p: (methods.key(p[0]), order.get(p[1], len(order)), p[1]))


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


def _method_handles(names, colors, methods: Methods):
    return [Line2D([], [], color=colors[m], lw=2, label=methods.label(m)) for m in names]


def curve_floor(curves):
    """The curve probe's accuracy on the untrained random encoder (its epoch-0 rows), mean over seeds;
    NaN if curves.csv has no such rows."""
    rnd = curves[curves["method"] == RANDOM_METHOD]["probe_acc"]
    return float(rnd.mean()) if len(rnd) else float("nan")


def curves(curves_csv, stem, methods: Methods):
    """The InfoBal post's figure: MI estimate (top row) and linear-probe accuracy on val (bottom row)
    vs epoch, one column per estimator, a line per method; the same probe on the untrained random
    encoder (its epoch-0 curve point) dashed."""
    curves = read(curves_csv, "curves")
    floor = curve_floor(curves)
    curves = curves[curves["method"] != RANDOM_METHOD]  # the floor is a line, not a curve
    ests = _estimators_in(curves)
    if not ests:
        raise ValueError(f"{curves_csv}: no rows of a trained method (only {RANDOM_METHOD!r})")
    if np.isnan(floor):
        warnings.warn(f"{curves_csv}: no rows with method={RANDOM_METHOD}; random-init floor not drawn")
    names = _methods_in(curves, methods)
    colors = methods.colors(names)
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
        for method in _methods_in(sub, methods):
            rows = sub[sub["method"] == method]
            gid = f"{method}/{est}"
            label = methods.run_label(method, est)
            for ax, value, scale in ((ax_mi, "mi_estimate", 1.0), (ax_acc, "probe_acc", 100.0)):
                s = _spread(rows, ["epoch"], value)
                if not s.empty:
                    _band_line(ax, s, colors[method], scale=scale, gid=gid, label=label, marker=marker)
        if not np.isnan(floor):
            ax_acc.axhline(100 * floor, color=RANDOM_COLOR, ls="--", lw=1.4, gid="random_floor",
                           label="random init")
        ax_mi.set_title(f"{estimator_label(est)} estimator")
        ax_mi.set_ylabel(f"{estimator_label(est)} MI lower bound (nats)")
        ax_acc.set_ylabel("linear-probe accuracy, val (%)")
        ax_acc.set_xlabel("epoch (0 = initialisation)")
        ax_acc.xaxis.set_major_locator(MaxNLocator(integer=True, steps=[1, 2, 5, 10]))
        for ax in (ax_mi, ax_acc):
            ax.grid(True, alpha=0.3)
    handles = _method_handles(names, colors, methods)
    if not np.isnan(floor):
        handles.append(Line2D([], [], color=RANDOM_COLOR, ls="--", lw=1.4,
                              label="random init (untrained),\nthe same probe"))
    handles.append(Patch(color="0.5", alpha=0.25, lw=0, label="min–max over seeds"))
    fig.legend(handles=handles, loc="outside right center", fontsize=9, framealpha=0.9)  # clear of the title
    fig.suptitle("Study B pre-training curves\n"
                 f"line = mean, band = min–max over seeds, {_runs_seeds_note(curves)}\n"
                 f"MI estimators differ in scale (one panel each); linear probe on {LAYER_LABELS['y']}, scored on val")
    return save_figure(fig, stem)


def probes(probes_csv, stem, methods: Methods, setup: dict):
    """Final test accuracy of the probes: one row per method × estimator (random last), one marker per
    layer (Y/R, fc, conv), one panel per probe (``setup``: the evaluate block's probe settings,
    study.options' "probes"); dot = mean, bar = min–max over seeds."""
    table = read(probes_csv, "probes")
    probe_list = _ordered(table["probe"], probe_order())
    layers = _ordered(table["layer"], list(LAYER_LABELS))
    runs = _runs_in(table, methods)
    colors = methods.colors(table["method"])
    s = _spread(table, ["method", "estimator", "probe", "layer"], "acc")
    offsets = np.linspace(-0.25, 0.25, len(layers)) if len(layers) > 1 else np.zeros(1)

    fig, axes = plt.subplots(1, len(probe_list), figsize=(max(4.4 * len(probe_list) + 3.6, 10.0), 0.34 * len(runs) + 2.2),
                             sharey=True, squeeze=False, constrained_layout=True)
    for ax, probe in zip(axes[0], probe_list):
        ax.set_gid(f"probe:{probe}")
        for i, (method, est) in enumerate(runs):
            if i % 2:
                ax.axhspan(i - 0.5, i + 0.5, color="0.94", lw=0, zorder=0)
            for off, layer in zip(offsets, layers):
                r = s[(s["method"] == method) & (s["estimator"] == est) & (s["probe"] == probe)
                      & (s["layer"] == layer)]
                if r.empty:
                    continue
                m, lo, hi = (100 * float(r[c].iloc[0]) for c in ("mean", "lo", "hi"))
                ax.errorbar([m], [i + off], xerr=[[max(m - lo, 0.0)], [max(hi - m, 0.0)]],
                            fmt=LAYER_MARKERS.get(layer, "D"), color=colors[method], ms=5, lw=1.2,
                            capsize=2, gid=f"{method}/{est}/{layer}")
        # separators between the DIM, InfoBal, other and random groups
        fams = [methods.family(m) for m, _ in runs]
        for i in range(1, len(runs)):
            if fams[i] != fams[i - 1]:
                ax.axhline(i - 0.5, color="0.6", lw=0.8)
        floor = random_floor(table, "y", probe)
        if not np.isnan(floor):
            ax.axvline(100 * floor, color=RANDOM_COLOR, ls="--", lw=1.2, zorder=1, gid="random_floor")
        ax.set_title(f"probe: {probe_title(probe, setup)}")
        ax.set_xlabel("test accuracy (%)")
        ax.grid(True, axis="x", alpha=0.3)
    ax0 = axes[0, 0]
    ax0.set_yticks(range(len(runs)), [methods.run_label(m, e) for m, e in runs])
    for tick, (method, _) in zip(ax0.get_yticklabels(), runs):
        tick.set_color(colors[method])
    ax0.set_ylim(len(runs) - 0.5, -0.5)  # first run on top
    handles = [Line2D([], [], ls="none", marker=LAYER_MARKERS.get(layer, "D"), color="k",
                      label=f"layer {LAYER_LABELS.get(layer, layer)}") for layer in layers]
    handles.append(Line2D([], [], color=RANDOM_COLOR, ls="--", lw=1.2, label=f"random init, layer {LAYER_LABELS['y']}"))
    fig.legend(handles=handles, loc="outside right upper", fontsize=9, framealpha=0.9)
    fig.suptitle("Study B probe accuracy on the test split\n"
                 f"dot = mean, bar = min–max over seeds, {_runs_seeds_note(table)}")
    return save_figure(fig, stem)


def robustness(robustness_csv, stem, methods: Methods):
    """Linear-probe (Y / R) test accuracy vs Gaussian noise std: one panel per estimator, a line per
    method, the untrained encoder dashed grey in every panel; mean with a min–max band over seeds."""
    df = read(robustness_csv, "robustness")
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
    names = _methods_in(trained, methods)
    colors = methods.colors(names)

    fig, axes = plt.subplots(1, len(ests), figsize=(max(4.2 * len(ests) + 2.9, 10.0), 4.6), sharey=True,
                             squeeze=False, constrained_layout=True)
    for ax, est in zip(axes[0], ests):
        ax.set_gid(f"robustness:{est}")
        sub = trained[trained["estimator"] == est]
        for method in _methods_in(sub, methods):
            s = _spread(sub[sub["method"] == method], ["level"], "acc")
            if not s.empty:
                _band_line(ax, s, colors[method], scale=100.0, x="level", gid=f"{method}/{est}",
                           label=methods.run_label(method, est), marker="o")
        if not rnd.empty:
            _band_line(ax, rnd, RANDOM_COLOR, scale=100.0, x="level", gid=f"{RANDOM_METHOD}/{RANDOM[1]}",
                       label=methods.label(RANDOM_METHOD), marker="s", ls="--")
        ax.set_title(f"{estimator_label(est)} estimator" if est else "untrained encoder only")
        ax.set_xlabel(ATTACKS[NOISE_ATTACK].level)
        ax.set_ylim(0, 101)
        ax.grid(True, alpha=0.3)
    axes[0, 0].set_ylabel(f"linear probe on {LAYER_LABELS['y']}, noisy test images: accuracy (%)")
    handles = _method_handles(names, colors, methods)
    if not rnd.empty:
        handles.append(Line2D([], [], color=RANDOM_COLOR, ls="--", marker="s", ms=4,
                              label=methods.label(RANDOM_METHOD)))
    handles.append(Patch(color="0.5", alpha=0.25, lw=0, label="min–max over seeds"))
    fig.legend(handles=handles, loc="outside right upper", fontsize=9, framealpha=0.9)
    fig.suptitle(f"Study B robustness to {ATTACKS[NOISE_ATTACK].title}\n"
                 f"line = mean, band = min–max over seeds, {_runs_seeds_note(noise)}")
    return save_figure(fig, stem)


def make_figures(curves_csv, probes_csv, robustness_csv, figures_dir, methods: Methods, setup: dict):
    """Render all study-B figures into figures_dir; return every written path."""
    from pathlib import Path

    figures_dir = Path(figures_dir)
    figures_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for draw, table in ((curves, curves_csv), (probes, probes_csv), (robustness, robustness_csv)):
        extra = [setup] if draw is probes else []
        written += draw(table, figures_dir / f"{NAME}_{draw.__name__}", methods, *extra)     # study.FIGURES
    return written
