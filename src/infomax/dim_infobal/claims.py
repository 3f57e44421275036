"""Study B's claims (B1-B4) from its collected tables: what each claim measures, its
comparisons, and which rows of our tables hold a published anchor's quantity.

Methods are grouped by their config ``kind`` (``tables.Methods``), never by their names.  The
metrics and margins are this project's reading of claims the sources state in words
(RECONSTRUCTED); each claim says exactly what it measured.
"""

from ..stats import ACCURACY, BELOW, comparison, fmt, missing
from ..tables import per_seed
from .tables import DIM_LAYER_LABELS, LAYER_LABELS, PROBE_NAMES, RANDOM, Y_NAMES, Methods, probe_description, read

CLAIMS = {
    "B1": "InfoBal does not beat DIM (the InfoBal post's conclusion).",
    "B2": "The MI estimate keeps rising while the probe accuracy plateaus.",
    "B3": "DIM(L) beats DIM(G) by a wide margin.",
    "B4": "The JSD estimator is more stable than DV.",
}
METRIC_TEXT = {
    "B1": "the post's linear probe on R against DIM(L)'s Y, same estimator; DIM's probe is additional",
    "B2": "per run, the change of the validation MI estimate and of the curve probe over the second half of training",
    "B3": "DIM's MLP probe on Y, DIM(L) minus DIM(G), same estimator; other probes and layers are additional",
    "B4": "per method and seed, how far the per-epoch probe accuracy falls from its best epoch to the last, JSD vs DV",
}
RECONSTRUCTED = [
    "Study B: InfoBal's modules (views from horizontal bands of DIM's local map, a copy of DIM's tail "
    "per view, the linear aggregator R, the InfoMin adversary or CLUB, the lambda warm-up): the post "
    "lists the modules, not their sizes.  The post's figures and numbers are lost, so B1, B2 and B4 "
    "have no published anchor.",
    "Study B: with exact mutual information, 2-view InfoBal's objective equals I(X; [V1; V2]); for "
    "M >= 4 views the post's premise sum_i I(X;V_i) >= sum_{i<j} I(V_i;V_j) no longer holds.",
]


def _dim_probe_note(layer, probe, setup):
    what = probe_description(probe, setup)
    names = {**LAYER_LABELS, "y": f"{Y_NAMES['dim']} ({Y_NAMES['infobal']} for InfoBal)"}
    return f"{what} on {names.get(layer, layer)}, test accuracy"



def read_tables(paths: dict, options: dict) -> dict:
    """Study B's tables, read once (``paths``: table name -> CSV); every method in them must be one
    of the experiment's (``options``: ``study.options``) or the untrained floor."""
    methods = Methods(options["methods"], options["kinds"])
    probes = read(paths["probes"], "probes")
    for m in sorted(set(probes["method"])):
        methods.kind(m)                      # names the unknown method and the known ones
    return {"probes": probes, "curves": read(paths["curves"], "curves"), "methods": methods,
            "probe_setup": options["probes"]}


def claims(b: dict, rc) -> dict:
    """Claims B1-B4 from study B's tables (``read_tables``).  ``rc``: the report's settings
    (confidence, min_seeds and the margins)."""
    probes, curves, methods = b["probes"], b["curves"], b["methods"]
    names = sorted(m for m in methods.specs if m != RANDOM[0])
    of_kind = {k: methods.of_kind(k) for k in ("dim_g", "dim_l", "infobal")}

    def ests(method):
        return sorted(set(probes.loc[probes["method"] == method, "estimator"]))

    def probe_values(method, est, layer="y", probe="linear"):
        rows = probes[(probes["method"] == method) & (probes["estimator"] == est)
                      & (probes["layer"] == layer) & (probes["probe"] == probe)]
        return per_seed(rows, "acc", 100)

    def same_estimator(kind_a, kind_b):
        """(method of kind_a, method of kind_b, estimator) for every estimator both ran."""
        return [(a, b, est) for a in of_kind[kind_a] for b in of_kind[kind_b] for est in ests(a) if est in ests(b)]

    out = {}

    # B1: each InfoBal variant against DIM(L) with the same estimator, the post's probe on R vs Y
    b1 = []
    for infobal, dim_l, est in same_estimator("infobal", "dim_l"):
        for probe, votes in (("linear", True), ("mlp", False)):
            b1.append(comparison(
                f"{methods.run_label(infobal, est)} vs {methods.run_label(dim_l, est)}, {PROBE_NAMES[probe]} on {Y_NAMES['infobal']} / {Y_NAMES['dim']}",
                f"{probe}_y", "%", methods.run_label(infobal, est), probe_values(infobal, est, "y", probe),
                methods.run_label(dim_l, est), probe_values(dim_l, est, "y", probe), rc,
                direction=BELOW, margin=rc.margin('not_better_points'), votes=votes,
                note=_dim_probe_note("y", probe, b["probe_setup"]) + f"; InfoBal 'does not beat' DIM(L): its advantage "
                f"is at most {fmt(rc.margin('not_better_points'))} points"))
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
                return per_seed(rows, col, scale, key=lambda r: f"{r.method}/{r.estimator}/s{int(r.seed)}")

            note = (f"epoch {mid} -> {last}, each run paired with itself, pooled over all "
                    f"{trained.groupby(['method', 'estimator', 'seed']).ngroups} trained runs")
            b2.append(comparison("MI estimate rises over the second half of training", "mi_estimate", "nats",
                                 f"epoch {last}", at_epoch(last, "mi_estimate", 1), f"epoch {mid}",
                                 at_epoch(mid, "mi_estimate", 1), rc, note=note + " (validation split, eval mode)",
                                 no_delta="an MI estimate in nats has no error to take a fraction of, so the rise "
                                          "has no negligible outcome (supported / contradicted / inconclusive)"))
            b2.append(comparison("probe accuracy plateaus over the second half (gain at most "
                                 f"{fmt(rc.margin('plateau_points'))} points)", "probe_acc", "%",
                                 f"epoch {last}", at_epoch(last, "probe_acc", 100), f"epoch {mid}",
                                 at_epoch(mid, "probe_acc", 100), rc, direction=BELOW, margin=rc.margin('plateau_points'),
                                 note=note + f" (the post's linear probe on {LAYER_LABELS['y']}, train subset, scored on validation)"))
    out["B2"] = b2

    # B3: DIM(L) against DIM(G) with the same estimator; DIM's probe on Y votes
    b3 = []
    probed = set(probes["layer"])               # fc and conv only where the experiment probes them
    for dim_g, dim_l, est in same_estimator("dim_g", "dim_l"):
        for layer, probe, votes in (("y", "mlp", True), ("y", "linear", False),
                                    ("fc", "mlp", False), ("conv", "mlp", False)):
            if layer != "y" and layer not in probed:
                continue
            b3.append(comparison(
                f"{methods.run_label(dim_l, est)} vs {methods.run_label(dim_g, est)}, {PROBE_NAMES[probe]} on {DIM_LAYER_LABELS[layer]}",
                f"{probe}_{layer}", "%", methods.run_label(dim_l, est), probe_values(dim_l, est, layer, probe),
                methods.run_label(dim_g, est), probe_values(dim_g, est, layer, probe), rc,
                margin=rc.margin('wide_points'), votes=votes,
                note=_dim_probe_note(layer, probe, b["probe_setup"]) + f"; 'a wide margin': more than {fmt(rc.margin('wide_points'))} points"))
    out["B3"] = b3 or [missing("DIM(L) vs DIM(G)", "this experiment has no DIM(G) and DIM(L) runs with a "
                               "shared estimator")]

    # B4: JSD against DV within each method that ran both; stability = the curve probe's drawdown
    b4 = []
    for method in names:
        if not {"jsd", "dv"} <= set(ests(method)):
            continue

        def drawdown(est):
            rows = curves[(curves["method"] == method) & (curves["estimator"] == est) & (curves["epoch"] >= 1)]
            out_ = {}
            for seed, g in rows.groupby("seed"):
                g = g.sort_values("epoch")
                out_[f"s{int(seed)}"] = 100 * float(g["probe_acc"].max() - g["probe_acc"].iloc[-1])
            return out_

        jsd_label, dv_label = methods.run_label(method, "jsd"), methods.run_label(method, "dv")
        b4.append(comparison(f"{jsd_label} vs {dv_label}, drop of the curve probe from its best epoch to the last",
                             "probe_drawdown", "%", jsd_label, drawdown("jsd"), dv_label, drawdown("dv"), rc,
                             higher_is_better=False,
                             no_delta="a drawdown is a fall in accuracy points, not either side's error rate, so "
                                      "the one rule for delta (a fraction of the beaten side's error) does not apply",
                             note="stability: best minus final per-epoch probe accuracy (validation), epochs >= 1; "
                                  "smaller is more stable"))
        b4.append(comparison(f"{jsd_label} vs {dv_label}, linear probe on {LAYER_LABELS['y']}", "linear_y", "%", jsd_label,
                             probe_values(method, "jsd"), dv_label, probe_values(method, "dv"), rc, votes=False,
                             error=ACCURACY,
                             note=_dim_probe_note("y", "linear", b["probe_setup"])))
    out["B4"] = b4 or [missing("JSD vs DV", "no method of this experiment ran both JSD and DV")]
    return out



def anchor_values(match: dict, tables: dict, scale: float) -> dict:
    """Our values ({seed: value * scale}) for a published anchor's ``match`` ({kind, estimator,
    layer, probe}): rows of probes.csv whose method has that kind; {} if we have none."""
    p, methods = tables["probes"], tables["methods"]
    for method in methods.of_kind(match["kind"]):
        rows = p[(p["method"] == method) & (p["estimator"] == match["estimator"])
                 & (p["layer"] == match["layer"]) & (p["probe"] == match["probe"])]
        if not rows.empty:
            return per_seed(rows, "acc", scale)
    return {}
