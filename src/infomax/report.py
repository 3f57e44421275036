"""The replication report: did the published claims replicate?  ``claims.json`` + ``REPLICATION.md``.

Built from the collected tables only (never a model), the published numbers of
``config/published.yaml`` and the experiment's settings.  For each claim of PROTOCOL.md (A1-A4,
B1-B4) it states the metric, each side's mean and 95% confidence interval over seeds, the test,
and a verdict:

- every comparison is a *difference* oriented so that positive favours the claim (for errors the
  claimed-better side's error is subtracted from the other's);
- the interval of the difference is a Student-t interval: paired across seeds when both sides
  have the same seeds (runs of one seed share the data split, so pairing removes that source of
  variance), Welch's otherwise.  With 2-5 seeds, bootstrap intervals are too narrow to be honest;
  the t interval is the standard small-sample choice;
- "X beats Y (by more than m)": supported when the whole interval lies above m, contradicted
  when it lies below m, inconclusive when it contains m;  "X does not beat Y by more than m": the
  mirror image.  Fewer than ``min_seeds`` per side is inconclusive whatever the numbers;
- a claim with several comparisons is contradicted if any is, supported if all are, else
  inconclusive.  Comparisons marked "additional" are reported but do not vote;
- an anchored claim (A4: "reaches about 1.13%") also checks our number against the published
  one, only when the experiment matches the published protocol (data, epochs, model options);
  otherwise that part is inconclusive and says why.

The claims' metrics and margins are this project's operationalisation (RECONSTRUCTED: the
sources state the claims in words); each claim says exactly what it measured.
"""

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from .config import CURVES_COLUMNS, METRICS_COLUMNS, PROBES_COLUMNS, RANDOM, ROBUSTNESS_COLUMNS
from .files import atomic_write, save_json

SUPPORTED, CONTRADICTED, INCONCLUSIVE = "supported", "contradicted", "inconclusive"
ABOVE, BELOW = "above", "below"          # the claimed difference lies above / below the margin
PUBLISHED_STUDIES = ("vib_vim", "infobal")

CLAIMS = {
    "A1": "VIM is more accurate than VIB.",
    "A2": "VIM is more robust to noise than VIB.",
    "A3": "VIM's representation is better than VIB's.",
    "A4": "VIB (beta = 1e-3) beats the deterministic baseline and reaches about 1.13% test error.",
    "B1": "InfoBal does not beat DIM (the InfoBal post's conclusion).",
    "B2": "The MI estimate keeps rising while the probe accuracy plateaus.",
    "B3": "DIM(L) beats DIM(G) by a wide margin.",
    "B4": "The JSD estimator is more stable than DV.",
}

RECONSTRUCTED = [
    "Study A: VIM's loss (cross-entropy + beta * MMD^2 between the batch's aggregate posterior and "
    "N(0, I), inverse-multiquadric kernel) and its beta grid: only the VIM paper's abstract is available.",
    "Study A: the noise-robustness protocol (Gaussian and salt-and-pepper levels on [0,1] pixels) and "
    "the representation-quality protocol (logistic-regression probe and 5-NN on the frozen mean mu(x)).",
    "Study A: the K=2 models use a diagonal Gaussian encoder; VIB's figure 2 used a full covariance.",
    "Study B: InfoBal's modules (views from horizontal bands of DIM's local map, a copy of DIM's tail "
    "per view, the linear aggregator R, the InfoMin adversary or CLUB, the lambda warm-up): the post "
    "lists the modules, not their sizes.  The post's figures and numbers are lost, so B1, B2 and B4 "
    "have no published anchor.",
    "Study B: with exact mutual information, 2-view InfoBal's objective equals I(X; [V1; V2]); for "
    "M >= 4 views the post's premise sum_i I(X;V_i) >= sum_{i<j} I(V_i;V_j) no longer holds.",
    "How each claim is measured (its metric, margin and test, stated in its section): the sources "
    "state the claims in words.",
]


@dataclass
class ReportConfig:
    confidence: float = 0.95
    min_seeds: int = 2              # fewer runs on a side: inconclusive
    not_better_points: float = 1.0  # B1: "does not beat": InfoBal's advantage is at most this (points)
    plateau_points: float = 1.0     # B2: "plateaus": the probe's second-half gain is at most this
    wide_points: float = 5.0        # B3: "by a wide margin": DIM(L) - DIM(G) exceeds this
    anchor_tolerance: float = 0.25  # anchors: ours / published within [1/(1+t), 1+t], or inside our CI

    def __post_init__(self):
        if not 0 < self.confidence < 1:
            raise ValueError(f"report.confidence = {self.confidence}: expected a probability in (0, 1)")
        if self.min_seeds < 2:
            raise ValueError(f"report.min_seeds = {self.min_seeds}: expected >= 2 (an interval needs 2 runs)")
        if self.anchor_tolerance <= 0:
            raise ValueError(f"report.anchor_tolerance = {self.anchor_tolerance}: expected > 0")


# -----------------------------------------------------------------------------
# statistics: pure functions of {run key: value} dicts

def _t(confidence, df):
    from scipy.stats import t

    return float(t.ppf((1 + confidence) / 2, df))


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
    if set(a) == set(b) and len(a) >= 2:
        d = {k: sign * (a[k] - b[k]) for k in a}
        out = mean_ci(d, confidence)
        out["test"] = f"paired t interval over {out['n']} matched runs"
        out["paired"] = True
        return out
    na, nb = len(a), len(b)
    mean = sign * (np.mean(list(a.values())) - np.mean(list(b.values()))) if na and nb else math.nan
    out = {"mean": float(mean), "ci": [math.nan, math.nan], "n": min(na, nb), "paired": False,
           "test": f"Welch t interval (unpaired: the sides have different runs, {na} and {nb})"}
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
    interval = f"the interval [{_fmt(lo)}, {_fmt(hi)}]"
    if direction == ABOVE:
        if lo > margin:
            return SUPPORTED, f"{interval} lies above {_fmt(margin)}"
        if hi < margin:
            return CONTRADICTED, f"{interval} lies below {_fmt(margin)}"
    elif direction == BELOW:
        if hi <= margin:
            return SUPPORTED, f"{interval} lies at or below {_fmt(margin)}"
        if lo > margin:
            return CONTRADICTED, f"{interval} lies above {_fmt(margin)}"
    else:
        raise ValueError(f"direction {direction!r}: expected {ABOVE!r} or {BELOW!r}")
    return INCONCLUSIVE, f"{interval} contains {_fmt(margin)} (too wide, or no clear difference)"


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


def _fmt(x, digits=3):
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    return f"{x:.{digits}g}"


def comparison(name, metric, unit, claimed_label, claimed, other_label, other, rc: ReportConfig,
               direction=ABOVE, margin=0.0, higher_is_better=True, votes=True, note="") -> dict:
    """One comparison of a claim: both sides (mean and CI), the difference, the test and the verdict."""
    diff = difference(claimed, other, rc.confidence, higher_is_better)
    verdict, reason = decide(diff, direction, margin, rc.min_seeds)
    relation = "above" if direction == ABOVE else "at or below"
    return {
        "name": name, "metric": metric, "unit": unit, "votes": votes, "note": note,
        "sides": [{"label": claimed_label, **mean_ci(claimed, rc.confidence), "values": _finite(claimed)},
                  {"label": other_label, **mean_ci(other, rc.confidence), "values": _finite(other)}],
        "difference": diff,
        "hypothesis": f"advantage of {claimed_label} over {other_label} {relation} {_fmt(margin)} {unit}"
                      + (" (lower is better)" if not higher_is_better else ""),
        "margin": margin, "direction": direction, "higher_is_better": higher_is_better, "test": diff["test"],
        "verdict": verdict, "reason": reason,
    }


def missing(name, why, votes=True) -> dict:
    """A comparison this experiment cannot make (no such runs): inconclusive, with the reason."""
    return {"name": name, "votes": votes, "verdict": INCONCLUSIVE, "reason": why, "sides": [], "test": "none"}


# -----------------------------------------------------------------------------
# reading the tables

def _read(path, columns, text):
    from .figures import _read_table

    return _read_table(path, columns, text=text)


def _close(a, b):
    return np.isclose(a, b, rtol=1e-9, atol=0)


def _per_seed(df, value, scale=1.0, key=lambda r: f"s{int(r.seed)}") -> dict:
    """{run key: mean of ``value``} (mean over duplicate rows of a run, e.g. noise levels)."""
    out = {}
    for r in df.itertuples(index=False):
        out.setdefault(key(r), []).append(float(getattr(r, value)) * scale)
    return {k: float(np.mean(v)) for k, v in out.items()}


# -----------------------------------------------------------------------------
# study A

def read_study_a(metrics_csv, validation_csv, robustness_csv) -> dict:
    """Study A's tables, read once: every metrics row (K=256 and K=2), the robustness rows, and
    each objective's validation-best beta (K=256)."""
    from .figures import MAIN_K, best_betas

    return {"metrics": _read(metrics_csv, METRICS_COLUMNS, text=("objective",)),
            "robustness": _read(robustness_csv, ROBUSTNESS_COLUMNS, text=("objective", "attack")),
            "best": best_betas(validation_csv, K=MAIN_K)}


def study_a_claims(a: dict, rc: ReportConfig) -> dict:
    """Claims A1-A4 from study A's tables (``read_study_a``): K=256 rows, best beta from validation."""
    from .figures import MAIN_K, beta_label

    m = a["metrics"][a["metrics"]["K"] == MAIN_K]
    rob, best = a["robustness"], a["best"]

    def at(df, obj, beta):
        return df[(df["objective"] == obj) & _close(df["beta"], beta)]

    def label(obj, beta=None):
        name = {"vib": "VIB", "vim": "VIM", "deterministic": "deterministic"}.get(obj, obj)
        return name if obj == "deterministic" or beta is None else f"{name} (beta={beta_label(beta)})"

    have = {o: o in best and not at(m, o, best[o]).empty for o in ("vib", "vim", "deterministic")}
    both = have["vib"] and have["vim"]
    why = "this experiment has no {} runs".format(" and ".join(o for o in ("vib", "vim") if not have[o]))
    best_note = ("each objective at its validation-best beta (lowest mean validation 12-sample error; "
                 "the test set picks nothing)")
    out = {}

    def vs(metric, label_text, unit, scale, higher, votes=True, df=None, note=best_note):
        if not both:
            return missing(label_text, why, votes)
        src = m if df is None else df
        a = _per_seed(at(src, "vim", best["vim"]), metric, scale)
        b = _per_seed(at(src, "vib", best["vib"]), metric, scale)
        return comparison(label_text, metric, unit, label("vim", best["vim"]), a, label("vib", best["vib"]), b,
                          rc, higher_is_better=higher, votes=votes, note=note)

    out["A1"] = [vs("err_12", "test error, 12 samples of z", "%", 100, False),
                 vs("err_1", "test error, 1 sample of z", "%", 100, False, votes=False)]

    def robust(attack, votes):
        name = {"gaussian": "Gaussian noise", "saltpepper": "salt-and-pepper noise", "fgsm": "FGSM"}[attack]
        df = rob[(rob["attack"] == attack) & (rob["level"] > 0)]
        if df.empty:
            return missing(f"accuracy under {name}", f"no {attack} levels above 0 in robustness.csv", votes)
        levels = ", ".join(_fmt(x) for x in sorted(df["level"].unique()))
        return vs("acc", f"accuracy under {name}, mean over levels {levels}", "%", 100, True, votes, df,
                  note=best_note + f"; mean test accuracy over the {name} levels above 0")

    out["A2"] = [robust("gaussian", True), robust("saltpepper", True), robust("fgsm", False)]
    out["A3"] = [vs("probe_acc", "logistic-regression probe accuracy on mu(x)", "%", 100, True),
                 vs("knn_acc", "5-NN accuracy on mu(x)", "%", 100, True)]

    # A4: VIB at beta = 1e-3 (the published setting) against the deterministic baseline
    vib3 = at(m, "vib", 1e-3)
    det = at(m, "deterministic", 0.0)
    if vib3.empty or det.empty:
        out["A4"] = [missing("test error, VIB beta=1e-3 vs deterministic",
                             "this experiment has no " + ("VIB beta=1e-3" if vib3.empty else "deterministic") + " runs")]
    else:
        out["A4"] = [comparison("test error (12 samples), VIB beta=1e-3 vs deterministic", "err_12", "%",
                                label("vib", 1e-3), _per_seed(vib3, "err_12", 100), label("deterministic"),
                                _per_seed(det, "err_12", 100), rc, higher_is_better=False,
                                note="beta fixed at the published 1e-3, not selected")]
    return out


# -----------------------------------------------------------------------------
# study B

PROBE_NAMES = {"linear": "linear probe", "mlp": "MLP probe (DIM's)"}
LAYER_NAMES = {"y": "Y", "fc": "fc", "conv": "conv"}


def _dim_probe_note(layer, probe):
    what = {"linear": "the post's linear probe (4 epochs)", "mlp": "DIM's probe (200 hidden units, dropout 0.1)"}[probe]
    return f"{what} on {dict(y='Y (R for InfoBal)', fc='fc', conv='conv').get(layer, layer)}, test accuracy"


def read_study_b(curves_csv, probes_csv, kinds: dict) -> dict:
    """Study B's tables, read once; every method in them must be one of the config's (``kinds``:
    method name -> kind) or the untrained floor."""
    text = ("method", "estimator")
    probes = _read(probes_csv, PROBES_COLUMNS, text=text + ("layer", "probe"))
    unknown = sorted(set(probes["method"]) - set(kinds) - {RANDOM[0]})
    if unknown:
        raise ValueError(f"{probes_csv}: method(s) {', '.join(unknown)} are not in the experiment's config "
                         f"(known: {', '.join(sorted(kinds))}); rerun collect_infobal")
    return {"probes": probes, "curves": _read(curves_csv, CURVES_COLUMNS, text=text)}


def study_b_claims(b: dict, kinds: dict, rc: ReportConfig) -> dict:
    """Claims B1-B4 from study B's tables (``read_study_b``).  ``kinds``: method name -> kind."""
    from .figures import infobal_run_label

    probes, curves = b["probes"], b["curves"]
    methods = sorted(kinds)
    of_kind = {k: [n for n in methods if kinds[n] == k] for k in ("dim_g", "dim_l", "infobal")}

    def ests(method):
        return sorted(set(probes.loc[probes["method"] == method, "estimator"]))

    def probe_values(method, est, layer="y", probe="linear"):
        rows = probes[(probes["method"] == method) & (probes["estimator"] == est)
                      & (probes["layer"] == layer) & (probes["probe"] == probe)]
        return _per_seed(rows, "acc", 100)

    def same_estimator(kind_a, kind_b):
        """(method of kind_a, method of kind_b, estimator) for every estimator both ran."""
        return [(a, b, est) for a in of_kind[kind_a] for b in of_kind[kind_b] for est in ests(a) if est in ests(b)]

    out = {}

    # B1: each InfoBal variant against DIM(L) with the same estimator, the post's probe on R vs Y
    b1 = []
    for ib, dl, est in same_estimator("infobal", "dim_l"):
        for probe, votes in (("linear", True), ("mlp", False)):
            b1.append(comparison(
                f"{infobal_run_label(ib, est)} vs {infobal_run_label(dl, est)}, {PROBE_NAMES[probe]} on R / Y",
                f"{probe}_y", "%", infobal_run_label(ib, est), probe_values(ib, est, "y", probe),
                infobal_run_label(dl, est), probe_values(dl, est, "y", probe), rc,
                direction=BELOW, margin=rc.not_better_points, votes=votes,
                note=_dim_probe_note("y", probe) + f"; InfoBal 'does not beat' DIM(L): its advantage "
                f"is at most {_fmt(rc.not_better_points)} points"))
    out["B1"] = b1 or [missing("InfoBal vs DIM(L)", "this experiment has no InfoBal and DIM(L) runs "
                               "with a shared estimator")]

    # B2: over the second half of training, pooled over every trained run
    trained = curves[curves["method"] != RANDOM[0]]
    b2 = []
    if trained.empty:
        b2 = [missing("MI estimate and probe over training", "no trained study-B runs")]
    else:
        last = int(trained["epoch"].max())
        mid = max(1, last // 2)
        if mid >= last:
            b2 = [missing("MI estimate and probe over training", f"{last} epoch(s): no second half to compare")]
        else:
            def at_epoch(e, col, scale):
                rows = trained[trained["epoch"] == e]
                return _per_seed(rows, col, scale, key=lambda r: f"{r.method}/{r.estimator}/s{int(r.seed)}")

            note = (f"epoch {mid} -> {last}, each run paired with itself, pooled over all "
                    f"{trained.groupby(['method', 'estimator', 'seed']).ngroups} trained runs")
            b2.append(comparison("MI estimate rises over the second half of training", "mi_estimate", "nats",
                                 f"epoch {last}", at_epoch(last, "mi_estimate", 1), f"epoch {mid}",
                                 at_epoch(mid, "mi_estimate", 1), rc, note=note + " (validation split, eval mode)"))
            b2.append(comparison("probe accuracy plateaus over the second half (gain at most "
                                 f"{_fmt(rc.plateau_points)} points)", "probe_acc", "%",
                                 f"epoch {last}", at_epoch(last, "probe_acc", 100), f"epoch {mid}",
                                 at_epoch(mid, "probe_acc", 100), rc, direction=BELOW, margin=rc.plateau_points,
                                 note=note + " (the post's linear probe on Y / R, train subset, scored on validation)"))
    out["B2"] = b2

    # B3: DIM(L) against DIM(G) with the same estimator; DIM's probe on Y votes
    b3 = []
    for dg, dl, est in same_estimator("dim_g", "dim_l"):
        for layer, probe, votes in (("y", "mlp", True), ("y", "linear", False),
                                    ("fc", "mlp", False), ("conv", "mlp", False)):
            b3.append(comparison(
                f"{infobal_run_label(dl, est)} vs {infobal_run_label(dg, est)}, {PROBE_NAMES[probe]} on {LAYER_NAMES[layer]}",
                f"{probe}_{layer}", "%", infobal_run_label(dl, est), probe_values(dl, est, layer, probe),
                infobal_run_label(dg, est), probe_values(dg, est, layer, probe), rc,
                margin=rc.wide_points, votes=votes,
                note=_dim_probe_note(layer, probe) + f"; 'a wide margin': more than {_fmt(rc.wide_points)} points"))
    out["B3"] = b3 or [missing("DIM(L) vs DIM(G)", "this experiment has no DIM(G) and DIM(L) runs with a "
                               "shared estimator")]

    # B4: JSD against DV within each method that ran both; stability = the curve probe's drawdown
    b4 = []
    for method in methods:
        if not {"jsd", "dv"} <= set(ests(method)):
            continue

        def drawdown(est):
            rows = curves[(curves["method"] == method) & (curves["estimator"] == est) & (curves["epoch"] >= 1)]
            out_ = {}
            for seed, g in rows.groupby("seed"):
                g = g.sort_values("epoch")
                out_[f"s{int(seed)}"] = 100 * float(g["probe_acc"].max() - g["probe_acc"].iloc[-1])
            return out_

        jl, dl_ = infobal_run_label(method, "jsd"), infobal_run_label(method, "dv")
        b4.append(comparison(f"{jl} vs {dl_}, drop of the curve probe from its best epoch to the last",
                             "probe_drawdown", "%", jl, drawdown("jsd"), dl_, drawdown("dv"), rc,
                             higher_is_better=False,
                             note="stability: best minus final per-epoch probe accuracy (validation), epochs >= 1; "
                                  "smaller is more stable"))
        b4.append(comparison(f"{jl} vs {dl_}, linear probe on Y / R", "linear_y", "%", jl,
                             probe_values(method, "jsd"), dl_, probe_values(method, "dv"), rc, votes=False,
                             note=_dim_probe_note("y", "linear")))
    out["B4"] = b4 or [missing("JSD vs DV", "no method of this experiment ran both JSD and DV")]
    return out


# -----------------------------------------------------------------------------
# published anchors

def load_published(path) -> dict:
    """``config/published.yaml``, checked: every anchor names its study, value, unit and source."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: published numbers file not found (expected config/published.yaml)")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise ValueError(f"{path}: not valid YAML ({e})") from None
    if not isinstance(data, dict) or not {"protocols", "anchors"} <= set(data):
        raise ValueError(f"{path}: expected top-level keys 'protocols' and 'anchors'")
    for study in PUBLISHED_STUDIES:
        if study not in data["protocols"]:
            raise ValueError(f"{path}: protocols.{study}: missing")
    need = {"study", "claims", "what", "value", "unit", "source", "match"}
    for aid, a in data["anchors"].items():
        lacking = sorted(need - set(a or {}))
        if lacking:
            raise ValueError(f"{path}: anchors.{aid}: missing {', '.join(lacking)}")
        if a["study"] not in PUBLISHED_STUDIES:
            raise ValueError(f"{path}: anchors.{aid}.study: {a['study']!r}, expected one of {PUBLISHED_STUDIES}")
        if a["unit"] not in ("percent", "bits"):
            raise ValueError(f"{path}: anchors.{aid}.unit: {a['unit']!r}, expected 'percent' or 'bits'")
        if not isinstance(a["value"], (int, float)):
            raise ValueError(f"{path}: anchors.{aid}.value: {a['value']!r} is not a number")
    return data


def _not_comparable(protocol: dict, facts: dict) -> list[str]:
    """Why our run is not the published protocol (empty: comparable)."""
    reasons = []
    for key, want in protocol.items():
        if key == "source":
            continue
        have = facts.get(key)
        if key == "epochs":
            if have is None or have < want:
                reasons.append(f"{have} of the published {want} epochs")
        elif have != want:
            reasons.append(f"{key} {have} (published: {want})")
    return reasons


def anchor_values(anchor, tables) -> dict:
    """Our values (display units, {seed: value}) for an anchor's ``match``; {} if we have none."""
    match = anchor["match"]
    if match is None:
        return {}
    scale = 100.0 if anchor["unit"] == "percent" else 1.0
    if anchor["study"] == "vib_vim":
        m = tables["metrics"]
        rows = m[(m["objective"] == match["objective"]) & (m["K"] == match["K"]) & _close(m["beta"], match["beta"])]
        return _per_seed(rows, match["metric"], scale)
    p, kinds = tables["probes"], tables["kinds"]
    for method in sorted(n for n, k in kinds.items() if k == match["kind"]):
        rows = p[(p["method"] == method) & (p["estimator"] == match["estimator"])
                 & (p["layer"] == match["layer"]) & (p["probe"] == match["probe"])]
        if not rows.empty:
            return _per_seed(rows, "acc", scale)
    return {}


def anchors(published: dict, facts: dict, tables: dict, rc: ReportConfig) -> list[dict]:
    out = []
    for aid, a in published["anchors"].items():
        protocol = {**published["protocols"][a["study"]], **(a.get("protocol") or {})}
        study_facts = facts.get(a["study"], {})
        ours = mean_ci(anchor_values(a, tables), rc.confidence)
        if a["match"] is None:
            reasons = ["this pipeline does not train this model"]
        elif ours["n"] == 0:
            reasons = ["no matching run in this experiment"]
        else:
            reasons = _not_comparable(protocol, study_facts)
        same_data = study_facts.get("dataset") == protocol.get("dataset")
        ratio = ours["mean"] / a["value"] if same_data and ours["n"] and a["value"] else math.nan
        entry = {"id": aid, "study": a["study"], "claims": list(a["claims"]), "what": a["what"],
                 "published": a["value"], "unit": "%" if a["unit"] == "percent" else "bits", "source": a["source"],
                 "ours": ours, "ratio": ratio, "comparable": not reasons, "not_comparable_because": reasons,
                 "primary": bool(a.get("primary", False))}
        out.append(entry)
    return out


def anchor_check(entry: dict, rc: ReportConfig) -> dict:
    """A claim's "reaches about <published>" part: decided only on a comparable experiment."""
    name = f"{entry['what']} reaches about {_fmt(entry['published'])}{entry['unit']} ({entry['source']})"
    base = {"name": name, "votes": True, "anchor": entry["id"], "sides": [], "test": ""}
    if not entry["comparable"]:
        return {**base, "verdict": INCONCLUSIVE,
                "reason": "not comparable with the published protocol: " + "; ".join(entry["not_comparable_because"]),
                "test": "none: the published number is only checked on the published protocol"}
    lo, hi = entry["ours"]["ci"]
    ratio, tol = entry["ratio"], rc.anchor_tolerance
    inside = math.isfinite(lo) and lo <= entry["published"] <= hi
    near = 1 / (1 + tol) <= ratio <= 1 + tol
    test = f"published value inside our {rc.confidence:.0%} interval, or ours / published within [{1 / (1 + tol):.3g}, {1 + tol:.3g}]"
    if inside or near:
        return {**base, "verdict": SUPPORTED, "test": test,
                "reason": f"ours {_fmt(entry['ours']['mean'])} vs published {_fmt(entry['published'])} (ratio {ratio:.3g})"}
    return {**base, "verdict": CONTRADICTED, "test": test,
            "reason": f"ours {_fmt(entry['ours']['mean'])} vs published {_fmt(entry['published'])} (ratio {ratio:.3g})"}


# -----------------------------------------------------------------------------
# the report

METRIC_TEXT = {
    "A1": "test error of each objective at its validation-best beta (K=256); 12 samples of z vote, 1 sample is additional",
    "A2": "mean test accuracy over the noise levels above 0 (Gaussian and salt-and-pepper vote; FGSM is additional), "
          "each objective at its validation-best beta",
    "A3": "logistic-regression probe and 5-NN accuracy on the frozen mean mu(x), at the validation-best beta",
    "A4": "12-sample test error of VIB at beta=1e-3 against the deterministic model; and the published 1.13%",
    "B1": "the post's linear probe (4 epochs) on R against DIM(L)'s Y, same estimator; DIM's probe is additional",
    "B2": "per run, the change of the validation MI estimate and of the curve probe over the second half of training",
    "B3": "DIM's probe (200 units) on Y, DIM(L) minus DIM(G), same estimator; other probes and layers are additional",
    "B4": "per method and seed, how far the per-epoch probe accuracy falls from its best epoch to the last, JSD vs DV",
}


def _sanitize(x):
    """JSON without NaN: NaN / inf -> null (strict JSON readers reject NaN)."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: _sanitize(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_sanitize(v) for v in x]
    return x


def build_claims(settings: dict, tables_paths: dict, published_path) -> dict:
    """Everything of claims.json: settings (from the workflow), table paths, the published file."""
    rc = ReportConfig(**settings.get("report", {}))
    published = load_published(published_path)
    kinds = settings["methods"]
    a = read_study_a(tables_paths["metrics"], tables_paths["validation"], tables_paths["robustness"])
    b = read_study_b(tables_paths["curves"], tables_paths["probes"], kinds)
    parts = {**study_a_claims(a, rc), **study_b_claims(b, kinds, rc)}
    anchor_list = anchors(published, settings["facts"],
                          {"metrics": a["metrics"], "probes": b["probes"], "kinds": kinds}, rc)
    by_claim = {}
    for a in anchor_list:
        for c in a["claims"]:
            by_claim.setdefault(c, []).append(a)
    claims = []
    for cid, statement in CLAIMS.items():
        comps = list(parts[cid])
        comps += [anchor_check(a, rc) for a in by_claim.get(cid, []) if a["primary"]]
        verdict, reason = combine(comps)
        claims.append({"id": cid, "statement": statement, "study": "vib_vim" if cid[0] == "A" else "infobal",
                       "metric": METRIC_TEXT[cid], "verdict": verdict, "reason": reason, "comparisons": comps,
                       "anchors": [a["id"] for a in by_claim.get(cid, [])]})
    return _sanitize({
        "experiment": settings["experiment"], "confidence": rc.confidence, "min_seeds": rc.min_seeds,
        "margins": {"not_better_points": rc.not_better_points, "plateau_points": rc.plateau_points,
                    "wide_points": rc.wide_points, "anchor_tolerance": rc.anchor_tolerance},
        "facts": settings["facts"], "protocols": published["protocols"],
        "claims": claims, "anchors": anchor_list, "reconstructed": RECONSTRUCTED,
        "deviations": deviations(settings["facts"], published["protocols"]),
    })


def deviations(facts: dict, protocols: dict) -> dict:
    """Per study, how this experiment differs from the published protocol (empty: it does not)."""
    return {study: _not_comparable(protocols[study], facts.get(study, {})) for study in PUBLISHED_STUDIES}


# -----------------------------------------------------------------------------
# markdown

def _num(x, unit):
    """Accuracies and errors in % with 2 decimals; bits and nats with 3 significant digits."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    return f"{x:.2f}" if unit == "%" else f"{x:.3g}"


def _ci_text(s, unit):
    if not s.get("n"):
        return "no runs"
    lo, hi = s["ci"]
    if lo is None or hi is None:
        return f"{_num(s['mean'], unit)} {unit} (n={s['n']}, no interval)"
    return f"{_num(s['mean'], unit)} {unit} [{_num(lo, unit)}, {_num(hi, unit)}] (n={s['n']})"


def _difference_label(p):
    a, b = p["sides"][0]["label"], p["sides"][1]["label"]
    if p.get("higher_is_better", True):
        return f"{a} minus {b}"
    return f"{b} minus {a} (lower is better: positive favours {a})"


VERDICT_MARK = {SUPPORTED: "**supported**", CONTRADICTED: "**contradicted**", INCONCLUSIVE: "inconclusive"}


def render_markdown(claims: dict, figures: list[dict]) -> str:
    """REPLICATION.md from claims.json's content and the figures ({name, caption, rule, path})."""
    conf = f"{claims['confidence']:.0%}"
    lines = [f"# Replication report: experiment `{claims['experiment']}`", "",
             "Generated by the `replication` rule (`infomax replication`, src/infomax/report.py) from the "
             "collected tables and `config/published.yaml`; do not edit by hand. The same content as data: "
             "`claims.json`; as one web page with the figures embedded: `REPLICATION.html`.", "",
             f"Intervals are {conf} Student-t intervals over seeds (paired across seeds when both sides ran the "
             f"same seeds). A verdict needs at least {claims['min_seeds']} runs per side; otherwise it is "
             "inconclusive. A claim is contradicted if any of its voting comparisons is, supported if all are.", ""]
    dev = claims["deviations"]
    if any(dev.values()):
        lines += ["**This experiment is not the published protocol**, so published numbers are shown for "
                  "orientation and cannot decide a verdict:", ""]
        for study, reasons in dev.items():
            if reasons:
                lines.append(f"- {'Study A' if study == 'vib_vim' else 'Study B'}: " + "; ".join(reasons) + ".")
        lines.append("")
    lines += ["## Verdicts", "", "| claim | statement | verdict | why |", "|---|---|---|---|"]
    for c in claims["claims"]:
        lines.append(f"| {c['id']} | {c['statement']} | {VERDICT_MARK[c['verdict']]} | {c['reason']} |")
    lines.append("")
    for c in claims["claims"]:
        lines += [f"## {c['id']}: {c['statement']}", "", f"Verdict: {VERDICT_MARK[c['verdict']]} ({c['reason']}).", "",
                  f"Metric: {c['metric']}.", ""]
        for p in c["comparisons"]:
            vote = "" if p.get("votes", True) else " (additional: does not vote)"
            lines.append(f"- **{p['name']}**{vote}: {VERDICT_MARK[p['verdict']]}, {p['reason']}.")
            unit = p.get("unit", "")
            for s in p.get("sides", []):
                per_seed = ", ".join(f"{k}: {_num(v, unit)}" for k, v in s["values"].items())
                lines.append(f"  - {s['label']}: {_ci_text(s, unit)}" + (f"; runs {per_seed}" if per_seed else ""))
            if p.get("difference"):
                d = p["difference"]
                lines.append(f"  - difference, {_difference_label(p)}: {_ci_text(d, unit)}; "
                             f"claimed: {p['hypothesis']}")
            if p.get("test"):
                lines.append(f"  - test: {p['test']}" + (f"; {p['note']}" if p.get("note") else ""))
        anchored = [a for a in claims["anchors"] if c["id"] in a["claims"]]
        if anchored:
            lines += ["", "Published anchors for this claim: " + ", ".join(f"`{a['id']}`" for a in anchored)
                      + " (table below).", ""]
        lines.append("")
    lines += ["## Published anchors", "",
              "Every number of `config/published.yaml`, next to ours (mean and interval over seeds). The ratio "
              "is ours / published, given when the data set matches; a number is comparable only when the "
              "experiment follows the published protocol.", "",
              "| anchor | what | published | ours | ratio | comparable | source |", "|---|---|---|---|---|---|---|"]
    for a in claims["anchors"]:
        comp = "yes" if a["comparable"] else "no: " + "; ".join(a["not_comparable_because"])
        lines.append(f"| `{a['id']}` | {a['what']} | {a['published']:g} {a['unit']} | "
                     f"{_ci_text(a['ours'], a['unit'])} | {_fmt(a['ratio'])} | {comp} | {a['source']} |")
    lines += ["", "## What is reconstructed", "",
              "The sources do not fix these parts; this project did (PROTOCOL.md, README):", ""]
    lines += [f"- {r}" for r in claims["reconstructed"]]
    lines += ["", "## Figures", ""]
    for f in figures:
        lines += [f"![{f['caption']}]({f['path']})", "",
                  f"*{f['caption']}* Made by rule `{f['rule']}` (workflow/rules/report.smk).", ""]
    return "\n".join(lines)


def read_caption(captions_dir, name) -> str:
    """The one-line caption of figure ``name`` (workflow/report/<name>.rst, shared with
    ``snakemake --report``)."""
    path = Path(captions_dir) / f"{name}.rst"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: caption of figure {name!r} not found (expected one line of text)")
    text = " ".join(path.read_text().split())
    if not text:
        raise ValueError(f"{path}: empty caption of figure {name!r}")
    return text


HTML_STYLE = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;line-height:1.45}
table{border-collapse:collapse;font-size:.9em}td,th{border:1px solid #ccc;padding:.25em .5em;vertical-align:top}
img{max-width:100%}code{background:#f3f3f3;padding:0 .2em}"""


def _web_png(path, width=1000) -> bytes:
    """The figure at most ``width`` pixels wide, 256 colours: about 50 kB instead of 100-750 kB.
    Browsers refuse data URLs over 2 MB, and `snakemake --report` shows an HTML result as one."""
    import io

    from PIL import Image

    with Image.open(path) as im:
        im = im.convert("RGB")
        if im.width > width:
            im = im.resize((width, round(im.height * width / im.width)), Image.LANCZOS)
        buf = io.BytesIO()
        im.quantize(colors=256).save(buf, "PNG", optimize=True)
    return buf.getvalue()


def render_html(markdown: str, figure_files: dict) -> str:
    """REPLICATION.md as one self-contained HTML page: the figures are embedded (data URIs), so
    the page works anywhere, also inside `snakemake --report`.  ``figure_files``: markdown image
    path -> file."""
    import base64
    import html as html_lib

    from markdown_it import MarkdownIt

    for rel, path in figure_files.items():
        data = base64.b64encode(_web_png(path)).decode()
        markdown = markdown.replace(f"]({rel})", f"](data:image/png;base64,{data})")
    body = MarkdownIt("commonmark").enable("table").render(markdown)
    title = html_lib.escape(markdown.splitlines()[0].lstrip("# "))
    return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title>"
            f"<style>{HTML_STYLE}</style></head><body>\n{body}</body></html>\n")


def write_report(settings: dict, tables: dict, published, captions_dir, claims_out, markdown_out,
                 html_out=None) -> dict:
    """Write claims.json and REPLICATION.md (and, given ``html_out``, the same as a self-contained
    HTML page); figure paths in the markdown are relative to it."""
    claims = build_claims(settings, tables, published)
    md_dir = Path(markdown_out).parent
    figures = []
    for f in settings.get("figures", []):
        path = Path(f["path"])
        if not path.is_file():
            raise FileNotFoundError(f"{path}: figure not found (made by rule {f['rule']}; rerun it)")
        rel = path.resolve().relative_to(md_dir.resolve()) if path.resolve().is_relative_to(md_dir.resolve()) else path
        figures.append({"name": f["name"], "rule": f["rule"], "path": rel.as_posix(),
                        "caption": read_caption(captions_dir, f["name"])})
    claims["figures"] = figures
    save_json(claims, claims_out)
    markdown = render_markdown(claims, figures) + "\n"
    atomic_write(markdown_out, lambda fh: fh.write(markdown), mode="w")
    if html_out is not None:
        files = {f["path"]: p["path"] for f, p in zip(figures, settings.get("figures", []))}
        page = render_html(markdown, files)
        atomic_write(html_out, lambda fh: fh.write(page), mode="w")
    json.loads(Path(claims_out).read_text())   # strict JSON (no NaN): fail here, not in a reader
    return claims
