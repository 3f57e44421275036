"""Study A's claims (A1-A4) from its collected tables: what each claim measures, its
comparisons, and which rows of our tables hold a published anchor's quantity.

Every comparison uses K=256 rows and each objective's validation-best beta (``tables.choose``;
without a validation split, its only beta): the test set picks nothing.  The metrics and margins are this project's reading of claims the
sources state in words (RECONSTRUCTED); each claim says exactly what it measured.
"""

from ..stats import ACCURACY, ERROR, comparison, fmt, missing
from ..tables import close, per_seed
from ..attacks import ATTACKS
from .tables import at_beta, choose, label, main_rows, read

CLAIMS = {
    "A1": "VIM is more accurate than VIB.",
    "A2": "VIM is more robust to noise than VIB.",
    "A3": "VIM's representation is better than VIB's.",
    "A4": "VIB (beta = 1e-3) beats the deterministic baseline and reaches about 1.13% test error.",
}
# what each claim measures; its {keys} are filled from read_tables: {samples} (how many samples of z err_avg
# averaged, study.options) and {beta} (how each beta was come by, from the validation table: tables.Choice.words)
METRIC_TEXT = {
    "A1": "test error (K=256) of each objective at its {beta}; {samples} samples of z vote, 1 sample is "
          "additional",
    "A2": "mean test accuracy over the noise levels above 0 (Gaussian and salt-and-pepper vote; FGSM is additional), "
          "each objective at its {beta}",
    "A3": "logistic-regression probe and 5-NN accuracy on the frozen mean mu(x), at each objective's {beta}",
    "A4": "{samples}-sample test error of VIB at beta=1e-3 against the deterministic model; and the published 1.13%",
}
RECONSTRUCTED = [
    "Study A: VIM's loss (cross-entropy + beta * MMD^2 between the batch's aggregate posterior and "
    "N(0, I), inverse-multiquadric kernel) and its beta grid: only the VIM paper's abstract is available.",
    "Study A: the noise-robustness protocol (Gaussian and salt-and-pepper levels on [0,1] pixels) and "
    "the representation-quality protocol (logistic-regression probe and 5-NN on the frozen mean mu(x)).",
    "Study A: the K=2 models use a diagonal Gaussian encoder; VIB's figure 2 used a full covariance.",
]


def read_tables(paths: dict, options: dict | None = None) -> dict:
    """Study A's tables, read once (``paths``: table name -> CSV): every metrics row (K=256 and
    K=2), the robustness rows, each objective's validation-best beta (its only one without a validation
    split: ``selected`` says which, ``beta`` in words), and (``options``: the study's ``study.options``)
    how many samples of z err_avg averaged (None: not given).  The claims' METRIC_TEXT is filled from it."""
    metrics, robustness = read(paths["metrics"], "metrics"), read(paths["robustness"], "robustness")
    choice = choose(paths["validation"])
    return {"metrics": metrics, "robustness": robustness, "best": choice.best, "selected": choice.selected, "beta": choice.words,
            "samples": (options or {}).get("samples")}


def grid_position(m, objective: str, beta: float) -> str:
    """Where the validation-best ``beta`` lies in the objective's grid (its betas in ``m``): a
    best beta at an end of the grid may not be the best beta at all."""
    grid = sorted(m[m["objective"] == objective]["beta"].unique())
    if len(grid) == 1:
        return f"{label(objective, beta)} is the only point of its grid"
    where = ("inside its grid" if grid[0] < beta < grid[-1]
             else "the lowest of its grid" if beta == grid[0] else "the highest of its grid")
    return f"{label(objective, beta)} is {where} {fmt(grid[0])} .. {fmt(grid[-1])} ({len(grid)} points)"


def claims(a: dict, rc) -> dict:
    """Claims A1-A4 from study A's tables (``read_tables``): the main K, best beta from validation.
    ``rc``: the report's settings (confidence, min_seeds)."""
    m = main_rows(a["metrics"], "metrics.csv")
    rob, best = a["robustness"], a["best"]

    at = at_beta

    have = {o: o in best and not at(m, o, best[o]).empty for o in ("vib", "vim", "deterministic")}
    both = have["vib"] and have["vim"]
    why = "this experiment has no {} runs".format(" and ".join(o for o in ("vib", "vim") if not have[o]))
    n = a.get("samples")                                       # how many samples of z err_avg averaged
    avg = "samples" if n is None else f"{n} samples"
    if a["selected"]:
        best_note = (f"each objective at its validation-best beta (lowest mean validation "
                     f"{'sample-averaged' if n is None else f'{n}-sample'} error; "
                     "the test set picks nothing)")
        sep, which = "; ", lambda o: grid_position(m, o, best[o])     # where each best beta lies in its grid
    else:
        best_note = f"each objective at its {a['beta']}"
        sep, which = ": ", lambda o: label(o, best[o])
    if both:
        best_note += sep + ", ".join(which(o) for o in ("vim", "vib"))
    out = {}

    def vs(metric, label_text, unit, scale, higher, votes=True, df=None, note=best_note):
        if not both:
            return missing(label_text, why, votes)
        src = m if df is None else df
        a = per_seed(at(src, "vim", best["vim"]), metric, scale)
        b = per_seed(at(src, "vib", best["vib"]), metric, scale)
        return comparison(label_text, metric, unit, label("vim", best["vim"]), a, label("vib", best["vib"]), b,
                          rc, higher_is_better=higher, votes=votes, note=note, error=ACCURACY if higher else ERROR)

    out["A1"] = [vs("err_avg", f"test error, {avg} of z", "%", 100, False),
                 vs("err_1", "test error, 1 sample of z", "%", 100, False, votes=False)]

    def robust(attack, votes):
        name = ATTACKS[attack].words
        df = rob[(rob["attack"] == attack) & (rob["level"] > 0)]
        if df.empty:
            return missing(f"accuracy under {name}", f"no {attack} levels above 0 in robustness.csv", votes)
        levels = ", ".join(fmt(x) for x in sorted(df["level"].unique()))
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
        out["A4"] = [comparison(f"test error ({avg}), VIB beta=1e-3 vs deterministic", "err_avg", "%",
                                label("vib", 1e-3), per_seed(vib3, "err_avg", 100), label("deterministic"),
                                per_seed(det, "err_avg", 100), rc, higher_is_better=False, error=ERROR,
                                note="beta fixed at the published 1e-3, not selected")]
    return out



def anchor_values(match: dict, tables: dict, scale: float) -> dict:
    """Our values ({seed: value * scale}) for a published anchor's ``match``
    ({objective, beta, K, metric}: a column of metrics.csv); {} if we have none."""
    m = tables["metrics"]
    rows = m[(m["objective"] == match["objective"]) & (m["K"] == match["K"]) & close(m["beta"], match["beta"])]
    return per_seed(rows, match["metric"], scale)
