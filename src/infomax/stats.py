"""Statistics over seeds: pure functions of {run key: value} dicts, and the verdict rules.

- every comparison is a *difference* oriented so that positive favours the claim (for errors the
  claimed-better side's error is subtracted from the other's);
- its interval is a Student-t interval: paired across seeds when both sides have the same run keys
  (runs of one seed share the data split, so pairing removes that source of variance), Welch's
  otherwise.  With 2-5 seeds, bootstrap intervals are too narrow to be honest;
- "X beats Y (by more than m)": supported when the whole interval lies above m, contradicted when
  it lies below m, inconclusive when it contains m;  "X does not beat Y by more than m": the mirror
  image.  Fewer than ``min_seeds`` per side is inconclusive whatever the numbers;
- a claim with several comparisons is contradicted if any is, supported if all are, else
  inconclusive.  Comparisons marked "additional" are reported but do not vote.
"""

import math

import numpy as np

SUPPORTED, CONTRADICTED, INCONCLUSIVE = "supported", "contradicted", "inconclusive"
ABOVE, BELOW = "above", "below"          # the claimed difference lies above / below the margin


def _t(confidence, df):
    from scipy.stats import t

    return float(t.ppf((1 + confidence) / 2, df))


def detectable(diff: dict) -> float | None:
    """The smallest difference this experiment could have detected: the half-width of the
    difference's interval (None without a finite interval).  A true difference smaller than this
    leaves the interval around it, so the comparison could not decide."""
    lo, hi = diff["ci"]
    if lo is None or hi is None or not (math.isfinite(lo) and math.isfinite(hi)):
        return None
    return (hi - lo) / 2.0


def nonfinite(values: dict) -> list:
    """The run keys of ``values`` whose value is missing, NaN or infinite (failed runs)."""
    return [k for k, v in values.items() if v is None or not math.isfinite(float(v))]


def _finite(values: dict) -> dict:
    return {k: float(v) for k, v in values.items() if v is not None and math.isfinite(float(v))}


def mean_ci(values: dict, confidence: float) -> dict:
    """Mean and Student-t interval of ``values`` ({run key: value}); the interval is NaN for n < 2."""
    v = np.array(list(_finite(values).values()), dtype=float)
    n = len(v)
    mean = float(v.mean()) if n else math.nan
    if n < 2:
        return {"mean": mean, "ci": [math.nan, math.nan], "n": n}
    half = _t(confidence, n - 1) * float(v.std(ddof=1)) / math.sqrt(n)
    return {"mean": mean, "ci": [mean - half, mean + half], "n": n}


def difference(claimed: dict, other: dict, confidence: float, higher_is_better: bool = True) -> dict:
    """The claimed side's advantage over the other (positive = the claim's direction), with its
    interval: paired t over the shared run keys when both sides have the same keys, else Welch."""
    a, b = _finite(claimed), _finite(other)
    sign = 1.0 if higher_is_better else -1.0
    matched = set(a) == set(b)
    if matched and len(a) >= 2:
        d = {k: sign * (a[k] - b[k]) for k in a}
        out = mean_ci(d, confidence)
        out["test"] = f"paired t interval over {out['n']} matched runs"
        out["paired"] = True
        return out
    na, nb = len(a), len(b)
    mean = sign * (np.mean(list(a.values())) - np.mean(list(b.values()))) if na and nb else math.nan
    test = (f"no interval: {na} matched run(s), a paired t interval needs 2" if matched else
            f"Welch t interval (unpaired: the sides have different runs, {na} and {nb})")
    out = {"mean": float(mean), "ci": [math.nan, math.nan], "n": min(na, nb), "paired": False, "test": test}
    if na >= 2 and nb >= 2:
        va, vb = np.var(list(a.values()), ddof=1) / na, np.var(list(b.values()), ddof=1) / nb
        se = math.sqrt(va + vb)
        if se == 0:
            out["ci"] = [out["mean"], out["mean"]]
        else:
            df = (va + vb) ** 2 / (va ** 2 / (na - 1) + vb ** 2 / (nb - 1))
            half = _t(confidence, df) * se
            out["ci"] = [out["mean"] - half, out["mean"] + half]
    return out


def decide(diff: dict, direction: str, margin: float, min_seeds: int) -> tuple[str, str]:
    """(verdict, reason) for "the difference lies ``direction`` (above / below) ``margin``"."""
    n = diff["n"]
    if n < min_seeds:
        return INCONCLUSIVE, f"{n} run(s) per side; at least {min_seeds} are needed for an interval"
    lo, hi = diff["ci"]
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return INCONCLUSIVE, "no finite interval"
    interval = f"the interval [{fmt(lo)}, {fmt(hi)}]"
    if direction == ABOVE:
        if lo > margin:
            return SUPPORTED, f"{interval} lies above {fmt(margin)}"
        if hi < margin:
            return CONTRADICTED, f"{interval} lies below {fmt(margin)}"
    elif direction == BELOW:
        if hi <= margin:
            return SUPPORTED, f"{interval} lies at or below {fmt(margin)}"
        if lo > margin:
            return CONTRADICTED, f"{interval} lies above {fmt(margin)}"
    else:
        raise ValueError(f"direction {direction!r}: expected {ABOVE!r} or {BELOW!r}")
    return INCONCLUSIVE, f"{interval} contains {fmt(margin)} (too wide, or no clear difference)"


def combine(parts: list[dict]) -> tuple[str, str]:
    """A claim's verdict from its voting parts: contradicted if any is, supported if all are."""
    voting = [p for p in parts if p.get("votes", True)]
    if not voting:
        return INCONCLUSIVE, "nothing to compare in this experiment"
    verdicts = [p["verdict"] for p in voting]
    if CONTRADICTED in verdicts:
        names = [p["name"] for p in voting if p["verdict"] == CONTRADICTED]
        return CONTRADICTED, "contradicted by: " + "; ".join(names)
    if all(v == SUPPORTED for v in verdicts):
        return SUPPORTED, f"all {len(voting)} comparison(s) support it"
    open_ = [p["name"] for p in voting if p["verdict"] == INCONCLUSIVE]
    return INCONCLUSIVE, "not decided by: " + "; ".join(open_)


def fmt(x, digits=3):
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    return f"{x:.{digits}g}"


def comparison(name, metric, unit, claimed_label, claimed, other_label, other, rc,
               direction=ABOVE, margin=0.0, higher_is_better=True, votes=True, note="") -> dict:
    """One comparison of a claim: both sides (mean and CI), the difference, the test and the verdict."""
    diff = difference(claimed, other, rc.confidence, higher_is_better)
    verdict, reason = decide(diff, direction, margin, rc.min_seeds)
    failed = sorted(f"{label}: {k}" for label, side in ((claimed_label, claimed), (other_label, other))
                    for k in nonfinite(side))
    if failed:   # a failed model: say so, never decide on the runs that happen to be left
        verdict, reason = INCONCLUSIVE, (f"failed run(s) without a finite value ({'; '.join(failed)}): "
                                         "see their evaluation logs")
    relation = "above" if direction == ABOVE else "at or below"
    return {
        "name": name, "metric": metric, "unit": unit, "votes": votes, "note": note,
        "sides": [{"label": claimed_label, **mean_ci(claimed, rc.confidence), "values": _finite(claimed)},
                  {"label": other_label, **mean_ci(other, rc.confidence), "values": _finite(other)}],
        "difference": diff,
        "hypothesis": f"advantage of {claimed_label} over {other_label} {relation} {fmt(margin)} {unit}"
                      + (" (lower is better)" if not higher_is_better else ""),
        "margin": margin, "direction": direction, "higher_is_better": higher_is_better, "test": diff["test"],
        "verdict": verdict, "reason": reason, "failed_runs": failed,
        "detectable": detectable(diff),
    }


def missing(name, why, votes=True) -> dict:
    """A comparison this experiment cannot make (no such runs): inconclusive, with the reason."""
    return {"name": name, "votes": votes, "verdict": INCONCLUSIVE, "reason": why, "sides": [], "test": "none"}

