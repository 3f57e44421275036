"""Side-by-side of two runs of one experiment that differ in training precision (float32 and
bfloat16): are they equivalent?  For each run kind (study B: method and estimator; study A:
objective and beta) and each headline metric, the paired differences bfloat16 - float32 over the
seeds both runs trained (a seed starts both from the same weights and data order), their mean and
Student-t interval.  A metric is **equivalent** when the whole interval lies inside +-margin:
1 point for accuracies, 0.1 nats for MI estimates (``--margin-points``, ``--margin-nats``).  An
interval that crosses the margin is not shown to be equivalent, whatever its mean: with few seeds
or noisy metrics the test says so instead of passing by chance (the old rule, |difference of
means| <= the larger seed-to-seed sd, let about one metric in ten fail by chance and passed
differences of several points when seeds vary a lot).  Prints a markdown table; exits 1 unless
every metric is equivalent.

    python scripts/compare_precision.py FLOAT32_RESULTS/quick BFLOAT16_RESULTS/quick [--study vib_vim]

The inputs are the collected tables of each run (dim_infobal/{probes,curves,robustness}.csv, or
vib_vim/{metrics,robustness}.csv with --study vib_vim); accuracies are shown in points (%).
"""

import argparse
import sys
from pathlib import Path

import pandas as pd


def study_b(d: Path) -> pd.DataFrame:
    """One row per (method, estimator, seed, metric): the numbers the claims of study B read."""
    probes = pd.read_csv(d / "dim_infobal/probes.csv")
    curves = pd.read_csv(d / "dim_infobal/curves.csv")
    rob = pd.read_csv(d / "dim_infobal/robustness.csv")
    rows = []
    for (layer, probe), g in probes.groupby(["layer", "probe"]):
        if layer == "y":
            rows.append(g.assign(metric=f"{probe} probe on y (%)", value=100 * g["acc"]))
    last = curves.loc[curves.groupby(["method", "estimator", "seed"])["epoch"].idxmax()]
    rows.append(last.assign(metric="curve probe, last epoch (%)", value=100 * last["probe_acc"]))
    rows.append(last.assign(metric="validation MI estimate, last epoch (nats)", value=last["mi_estimate"]))
    noisy = rob[rob["level"] > 0].groupby(["method", "estimator", "seed"], as_index=False)["acc"].mean()
    rows.append(noisy.assign(metric="linear probe under Gaussian noise, mean over levels (%)", value=100 * noisy["acc"]))
    out = pd.concat(rows)[["method", "estimator", "seed", "metric", "value"]]
    return out.dropna(subset=["value"])


def study_a(d: Path) -> pd.DataFrame:
    m = pd.read_csv(d / "vib_vim/metrics.csv")
    m = m[m["K"] != 2].rename(columns={"objective": "method", "beta": "estimator"})
    rows = [m.assign(metric=f"{c} (%)", value=100 * m[c]) for c in ("err_avg", "probe_acc", "knn_acc")]
    return pd.concat(rows)[["method", "estimator", "seed", "metric", "value"]]


def compare(a: pd.DataFrame, b: pd.DataFrame, margin_points: float, margin_nats: float,
            confidence: float) -> pd.DataFrame:
    """One row per (method, estimator, metric): both runs' means, the paired difference b - a
    over the shared seeds with its interval, the margin and whether the interval lies inside it."""
    from infomax.stats import mean_ci

    keys = ["method", "estimator", "metric"]
    joined = a.merge(b, on=[*keys, "seed"], suffixes=("_a", "_b"))
    rows = []
    for key, g in joined.groupby(keys, sort=True):
        d = mean_ci({s: vb - va for s, va, vb in zip(g["seed"], g["value_a"], g["value_b"])}, confidence)
        lo, hi = d["ci"]
        margin = margin_nats if "(nats)" in key[2] else margin_points
        rows.append({**dict(zip(keys, key)), "mean_a": g["value_a"].mean(), "mean_b": g["value_b"].mean(),
                     "difference": d["mean"], "lo": lo, "hi": hi, "seeds": d["n"], "margin": margin,
                     "equivalent": bool(d["n"] >= 2 and -margin <= lo and hi <= margin)})
    return pd.DataFrame(rows)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("float32", type=Path, help="results/<experiment> of the float32 run")
    p.add_argument("bfloat16", type=Path, help="results/<experiment> of the bfloat16 run")
    p.add_argument("--study", choices=["dim_infobal", "vib_vim"], default="dim_infobal")
    p.add_argument("--margin-points", type=float, default=1.0, help="equivalence margin of accuracies (points)")
    p.add_argument("--margin-nats", type=float, default=0.1, help="equivalence margin of MI estimates (nats)")
    p.add_argument("--confidence", type=float, default=0.95)
    a = p.parse_args(argv)
    read = study_b if a.study == "dim_infobal" else study_a
    t = compare(read(a.float32), read(a.bfloat16), a.margin_points, a.margin_nats, a.confidence)
    if t.empty:
        print("no run kind and seed appear in both results", file=sys.stderr)
        return 1
    conf = f"{a.confidence:.0%}"
    print(f"| run | metric | float32 mean | bfloat16 mean | paired difference [{conf} interval] | seeds | margin | equivalent |")
    print("|---|---|---|---|---|---|---|---|")
    for r in t.itertuples():
        print(f"| {r.method} {r.estimator} | {r.metric} | {r.mean_a:.2f} | {r.mean_b:.2f} "
              f"| {r.difference:+.2f} [{r.lo:+.2f}, {r.hi:+.2f}] | {r.seeds} | ±{r.margin:g} "
              f"| {'yes' if r.equivalent else '**no**'} |")
    n_bad = int((~t["equivalent"]).sum())
    print(f"\n{len(t) - n_bad} of {len(t)} metrics equivalent: the {conf} interval of the paired bfloat16 - float32 "
          f"difference lies inside ±{a.margin_points:g} points (accuracies) or ±{a.margin_nats:g} nats (MI estimates)")
    return 1 if n_bad else 0


if __name__ == "__main__":
    sys.exit(main())
