"""Study B's part of the experiment summary (summary.json, DVC metrics), from probes.csv."""

from ..tables import num
from .tables import read


def summarize(probes_csv) -> dict:
    """Study B's part: per method and estimator ("<method>_<estimator>"), the test accuracy of each
    probe on each layer ("<probe>_<layer>", e.g. linear_y), mean over seeds."""
    probes = read(probes_csv, "probes")
    out = {}
    for (method, est), runs in probes.groupby(["method", "estimator"], sort=True):
        entry = {"seeds": int(runs["seed"].nunique())}
        for (probe, layer), rows in runs.groupby(["probe", "layer"], sort=True):
            entry[f"{probe}_{layer}"] = num(rows["acc"].mean())
        out[f"{method}_{est}"] = entry
    return out
