"""Side-by-side of two runs of one experiment that differ in training precision (float32 and
bfloat16): for each study-B run kind (method, estimator), the mean over seeds of each headline
metric in both runs, their difference, and the seed-to-seed standard deviation of each run.  A
metric agrees when the difference of the means is within the larger of the two standard
deviations (the spread seeds give anyway).  Prints a markdown table; exits 1 if any metric
disagrees.

    python scripts/compare_precision.py FLOAT32_RESULTS/quick BFLOAT16_RESULTS/quick [--study dim_infobal]

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
    rows = [m.assign(metric=f"{c} (%)", value=100 * m[c]) for c in ("err_12", "probe_acc", "knn_acc")]
    return pd.concat(rows)[["method", "estimator", "seed", "metric", "value"]]


def compare(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    keys = ["method", "estimator", "metric"]
    sa = a.groupby(keys)["value"].agg(["mean", "std", "count"])
    sb = b.groupby(keys)["value"].agg(["mean", "std", "count"])
    t = sa.add_suffix("_a").join(sb.add_suffix("_b"), how="inner")
    t["difference"] = t["mean_b"] - t["mean_a"]
    t["spread"] = t[["std_a", "std_b"]].max(axis=1)
    t["agrees"] = t["difference"].abs() <= t["spread"]
    return t.reset_index()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("float32", type=Path, help="results/<experiment> of the float32 run")
    p.add_argument("bfloat16", type=Path, help="results/<experiment> of the bfloat16 run")
    p.add_argument("--study", choices=["dim_infobal", "vib_vim"], default="dim_infobal")
    a = p.parse_args(argv)
    read = study_b if a.study == "dim_infobal" else study_a
    t = compare(read(a.float32), read(a.bfloat16))
    if t.empty:
        print("no run kind appears in both results", file=sys.stderr)
        return 1
    print("| run | metric | float32 mean (sd) | bfloat16 mean (sd) | difference | seeds | within the spread |")
    print("|---|---|---|---|---|---|---|")
    for r in t.itertuples():
        print(f"| {r.method} {r.estimator} | {r.metric} | {r.mean_a:.2f} ({r.std_a:.2f}) | {r.mean_b:.2f} ({r.std_b:.2f}) "
              f"| {r.difference:+.2f} | {int(r.count_a)}/{int(r.count_b)} | {'yes' if r.agrees else '**no**'} |")
    n_bad = int((~t["agrees"]).sum())
    print(f"\n{len(t) - n_bad} of {len(t)} metrics agree within the seed-to-seed spread "
          f"(|difference of means| <= the larger standard deviation over seeds)")
    return 1 if n_bad else 0


if __name__ == "__main__":
    sys.exit(main())
