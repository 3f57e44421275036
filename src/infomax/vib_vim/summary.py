"""Study A's part of the experiment summary (summary.json, DVC metrics) and its plot-ready tables
(DVC plots), derived from the collected tables, never from a model.

For each objective: the beta with the lowest mean validation error, val_err_avg (``tables.choose``,
the same choice as the robustness figure) and that beta's test numbers, averaged over seeds.
Files (``results/<experiment>/plots/``):
- ``vib_vim_error_vs_beta_<objective>.csv``: ``beta,log10_beta,err_1,err_avg,seeds``, one row per
  beta (main K, mean over seeds); deterministic has no beta and no file.
- ``vib_vim_robustness_<attack>.csv``: ``level,<objective>...``: test accuracy at each level, each
  objective at its validation-best beta (mean over seeds).
DVC wants one x and named y columns per file, hence these small wide tables next to the long ones.
"""

import math
from pathlib import Path

from ..files import save_csv
from ..tables import num
from ..attacks import ATTACKS
from .runs import error_vs_beta_plot, robustness_plot
from .tables import at_beta, choose, main_rows, objectives_in, read

HEADLINE = ["err_1", "err_avg", "rate_bits", "izy_bits", "probe_acc", "knn_acc"]
ERROR_VS_BETA_COLUMNS = ["beta", "log10_beta", "err_1", "err_avg", "seeds"]


def summarize(metrics_csv, validation_csv, robustness_csv, plots_dir) -> dict:
    """Study A's part of the summary; also writes its plot tables into ``plots_dir``."""
    metrics = main_rows(read(metrics_csv, "metrics"), metrics_csv)
    K = int(metrics["K"].iloc[0])
    rob = read(robustness_csv, "robustness")
    choice = choose(validation_csv, K=K)
    best, val = choice.best, choice.val
    attacks = list(ATTACKS)
    out = {"models": int(len(metrics)),
           "attack_levels": {a: num(rob.loc[rob["attack"] == a, "level"].max()) for a in attacks
                             if (rob["attack"] == a).any()}}
    plots_dir = Path(plots_dir)
    curves = {a: {} for a in attacks}
    for obj in objectives_in(metrics):
        if obj not in best:
            raise ValueError(f"{validation_csv}: no validation rows for objective {obj!r} with K={K} "
                             f"(it has test rows in {metrics_csv}); rerun collect_vib_vim")
        beta = best[obj]
        rows = at_beta(metrics, obj, beta)
        entry = {"beta": beta, "seeds": int(rows["seed"].nunique()),
                 "val_err_avg": num(at_beta(val, obj, beta)["val_err_avg"].mean())}
        for col in HEADLINE:
            value = num(rows[col].mean())
            if value is not None:   # rate_bits of the deterministic model: no noise, no rate
                entry[col] = value
        r = at_beta(rob, obj, beta)
        entry["robust_acc"] = {}
        for attack in attacks:
            by_level = r[r["attack"] == attack].groupby("level")["acc"].mean().sort_index()
            curves[attack][obj] = by_level
            if len(by_level):
                entry["robust_acc"][attack] = num(by_level.iloc[-1])   # at the strongest level
        out[obj] = entry

        if obj != "deterministic":
            g = metrics[metrics["objective"] == obj].groupby("beta")
            table = [{"beta": num(b), "log10_beta": num(math.log10(b)) if b > 0 else "",
                      "err_1": num(grp["err_1"].mean()), "err_avg": num(grp["err_avg"].mean()),
                      "seeds": int(grp["seed"].nunique())} for b, grp in sorted(g, key=lambda t: t[0])]
            save_csv(table, ERROR_VS_BETA_COLUMNS, plots_dir / f"{error_vs_beta_plot(obj)}.csv")

    for attack, by_obj in curves.items():
        objs = list(by_obj)
        levels = sorted({lv for s in by_obj.values() for lv in s.index})
        table = [{"level": num(lv), **{o: (num(by_obj[o][lv]) if lv in by_obj[o].index else "")
                                        for o in objs}} for lv in levels]
        save_csv(table, ["level", *objs], plots_dir / f"{robustness_plot(attack)}.csv")
    return out
