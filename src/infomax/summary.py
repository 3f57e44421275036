"""The experiment summary: headline numbers (DVC metrics) and plot-ready tables (DVC plots).

Everything is derived from the collected tables, never from a model, so it is cheap and
regenerates from pulled CSVs.  For each objective the summary reports the beta with the lowest
mean validation 12-sample error (``figures.best_betas``: the same choice as the robustness
figure) and that beta's test numbers, averaged over seeds.  The test set never picks anything.

Files (``results/<experiment>/``):
- ``summary.json``: ``{"vib_vim": {"models": n, "attack_levels": {...}, "<objective>": {...}},
  "infobal": {"<method>_<estimator>": {"seeds": n, "linear_y": acc, "mlp_conv": acc, ...}}}``
- ``plots/vib_vim_error_vs_beta_<objective>.csv``: ``beta,log10_beta,err_1,err_12,seeds``, one row per
  beta (K=256, mean over seeds); deterministic has no beta and no file.
- ``plots/vib_vim_robustness_<attack>.csv``: ``level,<objective>...``: test accuracy at each level,
  each objective at its validation-best beta (mean over seeds).

DVC wants one x and named y columns per file, hence these small wide tables next to the long
ones of the output contract.
"""

import math
from pathlib import Path

import numpy as np

from .config import METRICS_COLUMNS, PROBES_COLUMNS, ROBUSTNESS_COLUMNS
from .figures import ATTACKS, MAIN_K, _main_rows, _objectives_in, _read_csv, best_betas
from .files import save_csv, save_json

HEADLINE = ["err_1", "err_12", "rate_bits", "izy_bits", "probe_acc", "knn_acc"]
ERROR_VS_BETA_COLUMNS = ["beta", "log10_beta", "err_1", "err_12", "seeds"]


def _num(x):
    """6 significant digits, like the collected tables; None for NaN (JSON has no NaN)."""
    x = float(x)
    return None if math.isnan(x) else float(f"{x:.6g}")


def _at_beta(df, objective, beta):
    return df[(df["objective"] == objective) & np.isclose(df["beta"], beta, rtol=1e-9, atol=0)]


def summarize_vib_vim(metrics_csv, validation_csv, robustness_csv, plots_dir, K=MAIN_K) -> dict:
    """Study A's part of the summary; also writes its plot tables into ``plots_dir``."""
    metrics = _main_rows(_read_csv(metrics_csv, METRICS_COLUMNS), metrics_csv, K)
    rob = _read_csv(robustness_csv, ROBUSTNESS_COLUMNS)
    best = best_betas(validation_csv, K=K)
    val = _main_rows(_read_csv(validation_csv, ["objective", "beta", "seed", "K", "val_err_12"]),
                     validation_csv, K)
    attacks = [a for a, _, _ in ATTACKS]
    out = {"models": int(len(metrics)),
           "attack_levels": {a: _num(rob.loc[rob["attack"] == a, "level"].max()) for a in attacks
                             if (rob["attack"] == a).any()}}
    plots_dir = Path(plots_dir)
    curves = {a: {} for a in attacks}
    for obj in _objectives_in(metrics):
        if obj not in best:
            raise ValueError(f"{validation_csv}: no validation rows for objective {obj!r} with K={K} "
                             f"(it has test rows in {metrics_csv}); rerun collect_vib_vim")
        beta = best[obj]
        rows = _at_beta(metrics, obj, beta)
        entry = {"beta": beta, "seeds": int(rows["seed"].nunique()),
                 "val_err_12": _num(_at_beta(val, obj, beta)["val_err_12"].mean())}
        for col in HEADLINE:
            value = _num(rows[col].mean())
            if value is not None:   # rate_bits of the deterministic model: no noise, no rate
                entry[col] = value
        r = _at_beta(rob, obj, beta)
        entry["robust_acc"] = {}
        for attack in attacks:
            by_level = r[r["attack"] == attack].groupby("level")["acc"].mean().sort_index()
            curves[attack][obj] = by_level
            if len(by_level):
                entry["robust_acc"][attack] = _num(by_level.iloc[-1])   # at the strongest level
        out[obj] = entry

        if obj != "deterministic":
            g = metrics[metrics["objective"] == obj].groupby("beta")
            table = [{"beta": _num(b), "log10_beta": _num(math.log10(b)) if b > 0 else "",
                      "err_1": _num(grp["err_1"].mean()), "err_12": _num(grp["err_12"].mean()),
                      "seeds": int(grp["seed"].nunique())} for b, grp in sorted(g, key=lambda t: t[0])]
            save_csv(table, ERROR_VS_BETA_COLUMNS, plots_dir / f"vib_vim_error_vs_beta_{obj}.csv")

    for attack, by_obj in curves.items():
        objs = list(by_obj)
        levels = sorted({lv for s in by_obj.values() for lv in s.index})
        table = [{"level": _num(lv), **{o: (_num(by_obj[o][lv]) if lv in by_obj[o].index else "")
                                        for o in objs}} for lv in levels]
        save_csv(table, ["level", *objs], plots_dir / f"vib_vim_robustness_{attack}.csv")
    return out


def summarize_infobal(probes_csv) -> dict:
    """Study B's part: per method and estimator ("<method>_<estimator>"), the test accuracy of each
    probe on each layer ("<probe>_<layer>", e.g. linear_y), mean over seeds."""
    from .figures import _read_table

    probes = _read_table(probes_csv, PROBES_COLUMNS, text=("method", "estimator", "layer", "probe"))
    out = {}
    for (method, est), runs in probes.groupby(["method", "estimator"], sort=True):
        entry = {"seeds": int(runs["seed"].nunique())}
        for (probe, layer), rows in runs.groupby(["probe", "layer"], sort=True):
            entry[f"{probe}_{layer}"] = _num(rows["acc"].mean())
        out[f"{method}_{est}"] = entry
    return out


def write_summary(out_path, plots_dir, metrics, validation, robustness, infobal_probes=None) -> Path:
    """``summary.json`` with one section per study: ``vib_vim`` and (given its probes) ``infobal``."""
    summary = {"vib_vim": summarize_vib_vim(metrics, validation, robustness, plots_dir)}
    if infobal_probes is not None:
        summary["infobal"] = summarize_infobal(infobal_probes)
    return save_json(summary, out_path)
