"""Statistics over seeds: pure functions of {run key: value} dicts, and the verdict rules.

- every comparison is a *difference* oriented so that positive favours the claim (for errors the
  claimed-better side's error is subtracted from the other's);
- its interval is a Student-t interval: paired across seeds when both sides have the same run keys
  (runs of one seed share the data split, so pairing removes that source of variance), Welch's
  otherwise.  With 2-5 seeds, bootstrap intervals are too narrow to be honest;
- "X beats Y (by more than m)": supported when the whole interval lies above m, contradicted when
  it lies below m, inconclusive when it contains m;  "X does not beat Y by more than m": the mirror
  image.  Fewer than ``min_seeds`` per side is inconclusive whatever the numbers;
- a direction claim ("X beats Y", margin 0) whose metric is an accuracy or an error in % also has
  a smallest effect of interest delta (``smallest_effect``: ``report.negligible_fraction`` times
  the error of the side the claim says is beaten): when the whole interval lies inside
  (-delta, +delta) the comparison is *negligible*, whatever its sign, a decided outcome that is not
  "supported".  Claims with an explicit margin keep the three outcomes;
- an inconclusive comparison projects how many seeds per side would decide it if its observed
  difference and spread held (``projected_seeds``);
- a claim with several comparisons is contradicted if any is, supported if all are, negligible if
  all are negligible or supported (at least one negligible), else inconclusive.  Comparisons marked
  "additional" are reported but do not vote.
"""

import math

import numpy as np

SUPPORTED, CONTRADICTED, INCONCLUSIVE = "supported", "contradicted", "inconclusive"
NEGLIGIBLE = "negligible"                # decided: the whole interval lies inside (-delta, +delta)
ABOVE, BELOW = "above", "below"          # the claimed difference lies above / below the margin
ACCURACY, ERROR = "accuracy", "error"    # what a metric in % is, for delta (error = 100 - accuracy)
PROJECTION_CAP = 10_000                  # seeds per side beyond which a projection says "more than"


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


def _outcome(lo: float, hi: float, direction: str, margin: float, delta: float | None) -> tuple[str, str] | None:
    """The verdict of the finite interval [lo, hi] and its reason, or None (inconclusive).  Negligible
    comes first: a difference inside (-delta, +delta) is too small to matter even when its interval
    excludes the margin."""
    interval = f"the interval [{fmt(lo)}, {fmt(hi)}]"
    if delta is not None and -delta < lo and hi < delta:
        clear = (" (clearly above 0, but too small to matter)" if lo > 0 else
                 " (clearly below 0, but too small to matter)" if hi < 0 else "")
        return NEGLIGIBLE, f"{interval} lies inside ±δ = ±{fmt(delta)}{clear}"
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
    return None


def decide(diff: dict, direction: str, margin: float, min_seeds: int, delta: float | None = None) -> tuple[str, str]:
    """(verdict, reason) for "the difference lies ``direction`` (above / below) ``margin``"; with a
    ``delta`` (direction claims only), an interval inside (-delta, +delta) is negligible."""
    n = diff["n"]
    if n < min_seeds:
        return INCONCLUSIVE, f"{n} run(s) per side; at least {min_seeds} are needed for an interval"
    lo, hi = diff["ci"]
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return INCONCLUSIVE, "no finite interval"
    decided = _outcome(lo, hi, direction, margin, delta)
    if decided is not None:
        return decided
    inside = f" and does not lie inside ±δ = ±{fmt(delta)}" if delta is not None else ""
    return INCONCLUSIVE, (f"the interval [{fmt(lo)}, {fmt(hi)}] contains {fmt(margin)}{inside} "
                          "(too wide, or no clear difference)")


def smallest_effect(other: dict, error: str | None, fraction: float, label: str, unit: str,
                    direction: str, margin: float, no_delta: str = "") -> tuple[float | None, str]:
    """(delta, how it was computed) for a comparison: ``fraction`` (``report.negligible_fraction``)
    times the error, in points, of the side the claim says is beaten (``other``: its {run: value}).
    ``error``: what the metric is, ``ACCURACY`` (error = 100 - value) or ``ERROR`` (the value is the
    error), both in %; None: no delta, and ``no_delta`` says why.  Only direction claims (above a
    margin of 0) have a delta: an explicit margin already says what size matters."""
    if direction != ABOVE or margin != 0:
        return None, ("none: the claim has an explicit margin "
                      f"({'above' if direction == ABOVE else 'at or below'} {fmt(margin)} {unit}), "
                      "so it keeps supported / contradicted / inconclusive")
    if error is None:
        return None, "none: " + (no_delta or f"the metric ({unit}) is not an accuracy or an error in %")
    if error not in (ACCURACY, ERROR):
        raise ValueError(f"error {error!r}: expected {ACCURACY!r}, {ERROR!r} or None")
    if unit != "%":
        raise ValueError(f"a delta from the {error} needs the metric in %, not {unit!r}")
    values = list(_finite(other).values())
    if not values:
        return None, f"none: {label} has no finite value"
    mean = float(np.mean(values))
    err = 100.0 - mean if error == ACCURACY else mean
    if err <= 0:
        return None, f"none: {label}'s error is {fmt(err)} points (nothing to take a fraction of)"
    delta = fraction * err
    what = f"100 - {label}'s mean accuracy {mean:.2f}% = {err:.2f}" if error == ACCURACY else \
        f"{label}'s mean error {err:.2f}%"
    return delta, (f"δ = report.negligible_fraction {fmt(fraction)} × the error of the side the claim says is "
                   f"beaten ({what}) = {delta:.3g} points")


def combine(parts: list[dict]) -> tuple[str, str]:
    """A claim's verdict from its voting parts: contradicted if any is, supported if all are,
    negligible if all are negligible or supported (at least one negligible), else inconclusive."""
    voting = [p for p in parts if p.get("votes", True)]
    if not voting:
        return INCONCLUSIVE, "nothing to compare in this experiment"
    verdicts = [p["verdict"] for p in voting]

    def named(verdict):
        return "; ".join(p["name"] for p in voting if p["verdict"] == verdict)

    if CONTRADICTED in verdicts:
        return CONTRADICTED, "contradicted by: " + named(CONTRADICTED)
    if all(v == SUPPORTED for v in verdicts):
        return SUPPORTED, f"all {len(voting)} comparison(s) support it"
    if all(v in (SUPPORTED, NEGLIGIBLE) for v in verdicts):
        return NEGLIGIBLE, "negligible: " + named(NEGLIGIBLE) + (
            "; supported: " + named(SUPPORTED) if SUPPORTED in verdicts else "")
    reason = "not decided by: " + named(INCONCLUSIVE)
    if NEGLIGIBLE in verdicts:
        reason += "; negligible: " + named(NEGLIGIBLE)
    return INCONCLUSIVE, reason


def fmt(x, digits=3):
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    return f"{x:.{digits}g}"


def _spread(claimed: dict, other: dict, higher_is_better: bool, paired: bool):
    """The spread a projection keeps: the sd of the paired differences, or each side's sd."""
    a, b = _finite(claimed), _finite(other)
    if paired:
        sign = 1.0 if higher_is_better else -1.0
        return float(np.std([sign * (a[k] - b[k]) for k in a], ddof=1)), None
    return float(np.std(list(a.values()), ddof=1)), float(np.std(list(b.values()), ddof=1))


def projected_seeds(claimed: dict, other: dict, diff: dict, confidence: float, higher_is_better: bool,
                    direction: str, margin: float, delta: float | None, min_seeds: int) -> dict:
    """How many seeds per side would decide an open comparison if its observed difference and
    spread held: the smallest n (at least ``min_seeds``) at which the same test's interval, the
    observed mean +- t(n) * spread / sqrt(n), would exclude the margin or fall inside +-delta.
    Paired: the sd of the per-seed differences, t with n - 1 degrees of freedom; Welch: each side's
    sd, n runs each, Welch-Satterthwaite degrees of freedom.  A projection, not a promise: a new
    seed's spread and difference differ from the observed ones."""
    from scipy.stats import t

    if diff["n"] < 2 or not all(x is not None and math.isfinite(x) for x in diff["ci"]):
        return {"seeds": None, "text": "no projection: a spread needs at least 2 runs per side"}
    d = diff["mean"]
    s1, s2 = _spread(claimed, other, higher_is_better, diff["paired"])
    n = np.arange(2, PROJECTION_CAP + 1, dtype=float)
    if diff["paired"]:
        var, df, basis = s1 ** 2, n - 1, f"paired: sd of the {diff['n']} per-seed differences {fmt(s1)}"
    else:
        var = s1 ** 2 + s2 ** 2
        df = (n - 1) * var ** 2 / (s1 ** 4 + s2 ** 4) if var > 0 else n - 1
        basis = f"Welch: sds {fmt(s1)} and {fmt(s2)}, n runs on each side"
    if var == 0:
        return {"seeds": None, "text": "no projection: the runs do not vary", "basis": basis}
    half = t.ppf((1 + confidence) / 2, df) * np.sqrt(var / n)
    lo, hi = d - half, d + half
    negl = (-delta < lo) & (hi < delta) if delta is not None else np.zeros_like(n, dtype=bool)
    if direction == ABOVE:
        decided = negl | (lo > margin) | (hi < margin)
    else:
        decided = negl | (hi <= margin) | (lo > margin)
    decided &= n >= min_seeds
    if not decided.any():
        return {"seeds": None, "basis": basis,
                "text": f"at this spread, more than {PROJECTION_CAP} seeds per side: the observed difference "
                        f"{fmt(d)} lies too close to the margin {fmt(margin)}"
                        + (f" and to ±δ = ±{fmt(delta)}" if delta is not None else "")}
    i = int(np.argmax(decided))
    seeds = int(n[i])
    verdict, _ = _outcome(float(lo[i]), float(hi[i]), direction, margin, delta)
    where = {NEGLIGIBLE: f"fall inside ±δ = ±{fmt(delta)}",
             SUPPORTED: f"lie {'above' if direction == ABOVE else 'at or below'} {fmt(margin)}",
             CONTRADICTED: f"lie {'below' if direction == ABOVE else 'above'} {fmt(margin)}"}[verdict]
    return {"seeds": seeds, "verdict": verdict, "basis": basis,
            "text": f"at this spread, about {seeds} seeds per side would make the interval {where} ({verdict}), "
                    f"if the observed difference {fmt(d)} held"}


def comparison(name, metric, unit, claimed_label, claimed, other_label, other, rc,
               direction=ABOVE, margin=0.0, higher_is_better=True, votes=True, note="",
               error=None, no_delta="") -> dict:
    """One comparison of a claim: both sides (mean and CI), the difference, the test and the verdict.
    ``error``: ``ACCURACY`` or ``ERROR`` when the metric is one in % (a direction claim then has a
    delta, ``smallest_effect``), else None with ``no_delta`` saying why."""
    diff = difference(claimed, other, rc.confidence, higher_is_better)
    delta, delta_rule = smallest_effect(other, error, rc.negligible_fraction, other_label, unit, direction,
                                        margin, no_delta)
    verdict, reason = decide(diff, direction, margin, rc.min_seeds, delta)
    failed = sorted(f"{label}: {k}" for label, side in ((claimed_label, claimed), (other_label, other))
                    for k in nonfinite(side))
    projection = None
    if failed:   # a failed model: say so, never decide on the runs that happen to be left
        verdict, reason = INCONCLUSIVE, (f"failed run(s) without a finite value ({'; '.join(failed)}): "
                                         "see their evaluation logs")
    elif verdict == NEGLIGIBLE:  # say it in the claim's words: how large, and whether it is clear
        lo, hi = diff["ci"]
        better = "better" if diff["mean"] > 0 else "worse"
        clear = (f"significant (the interval [{fmt(lo)}, {fmt(hi)}] excludes 0), but" if lo > 0 or hi < 0 else
                 f"not significant (the interval [{fmt(lo)}, {fmt(hi)}] contains 0), and")
        reason = (f"{claimed_label} is {fmt(abs(diff['mean']))} {unit} {better} than {other_label}: {clear} it lies "
                  f"inside ±δ = ±{fmt(delta)}, too small to matter")
    elif verdict == INCONCLUSIVE:
        projection = projected_seeds(claimed, other, diff, rc.confidence, higher_is_better, direction, margin,
                                     delta, rc.min_seeds)
    relation = "above" if direction == ABOVE else "at or below"
    return {
        "name": name, "metric": metric, "unit": unit, "votes": votes, "note": note,
        "sides": [{"label": claimed_label, **mean_ci(claimed, rc.confidence), "values": _finite(claimed)},
                  {"label": other_label, **mean_ci(other, rc.confidence), "values": _finite(other)}],
        "difference": diff,
        "hypothesis": f"advantage of {claimed_label} over {other_label} {relation} {fmt(margin)} {unit}"
                      + (" (lower is better)" if not higher_is_better else ""),
        "margin": margin, "direction": direction, "higher_is_better": higher_is_better, "test": diff["test"],
        "delta": delta, "delta_rule": delta_rule,
        "verdict": verdict, "reason": reason, "failed_runs": failed,
        "detectable": detectable(diff), "projection": projection,
    }


def missing(name, why, votes=True) -> dict:
    """A comparison this experiment cannot make (no such runs): inconclusive, with the reason."""
    return {"name": name, "votes": votes, "verdict": INCONCLUSIVE, "reason": why, "sides": [], "test": "none"}

