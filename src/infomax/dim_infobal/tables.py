"""Study B's collected tables and their vocabulary: the columns (the output contract), collecting
evaluation JSONs into rows, reading the CSVs back, and ``Methods``: what the figures and the
report call each method, keyed on its config ``kind`` (never on its name).
"""

from pathlib import Path

from ..tables import num, read_evals, read_table, write_tables
from .runs import RANDOM

# The output contract (docs/outputs.md): columns of results/<experiment>/dim_infobal/<table>.csv.
COLUMNS = {
    "curves": ["method", "estimator", "seed", "epoch", "mi_estimate", "probe_acc"],
    "probes": ["method", "estimator", "seed", "layer", "probe", "acc", "precision"],
    "robustness": ["method", "estimator", "seed", "attack", "level", "acc"],
}
# Columns that record how a run was made (the precision it trained in): written in every table,
# read by the report's facts, never by a claim or figure, so tables from before them still read.
RECORDS = ("precision",)
TEXT = {"curves": ("method", "estimator"), "probes": ("method", "estimator", "layer", "probe", "precision"),
        "robustness": ("method", "estimator", "attack")}

RANDOM_METHOD = RANDOM[0]

# vocabulary
KIND_NAMES = {"dim_g": "DIM(G)", "dim_l": "DIM(L)", "infobal": "InfoBal", "random": "random init (untrained)"}
KIND_ORDER = {"dim_g": 0, "dim_l": 1, "infobal": 2, "random": 9}
FAMILY = {"dim_g": "dim", "dim_l": "dim", "infobal": "infobal", "random": "random"}
RANDOM_COLOR = "0.45"
FAMILY_PALETTES = {
    "dim": ["#08519c", "#17a2b8", "#6baed6", "#3f007d"],                 # cool: DIM
    "infobal": ["#e6550d", "#a50f15", "#f4a21b", "#e7298a", "#7f2704"],  # warm: InfoBal
    "other": ["#31a354", "#756bb1", "#8c6d31", "#636363"],               # a kind added later
}
# Layers and probes: their names are evaluate.LAYERS and probes.PROBES, next to the code that
# computes them (which imports torch); the labels here are keyed on those names
# (tests/dim_infobal/test_figures.py checks both).  Layer "y", the representation every claim
# reads, has two names: DIM calls it Y, InfoBal R.  Its label says both; text about DIM's methods
# alone says Y (claim B3), and text that puts InfoBal first says "R / Y" (claim B1).
Y_NAMES = {"dim": "Y", "infobal": "R"}                  # by family (FAMILY)
LAYER_LABELS = {"y": f"{Y_NAMES['dim']} / {Y_NAMES['infobal']}", "fc": "fc", "conv": "conv"}  # in plotting order
DIM_LAYER_LABELS = {**LAYER_LABELS, "y": Y_NAMES["dim"]}
LAYER_MARKERS = {"y": "o", "fc": "s", "conv": "^"}
PROBE_NAMES = {"linear": "linear probe", "mlp": "MLP probe (DIM's)"}


def probe_order() -> tuple[str, ...]:
    """The probes in plotting order: infomax.probes.PROBES (imported when asked: it imports torch)."""
    from ..probes import PROBES

    return PROBES


def probe_title(probe: str, setup: dict) -> str:
    """A probe's name with its configured setup (``setup``: study.options' "probes", from the
    experiment's evaluate block), e.g. 'linear (4 ep., InfoBal post)'."""
    if probe == "linear":
        return f"linear ({setup['linear_epochs']} ep., InfoBal post)"
    if probe == "mlp":
        return f"MLP {setup['mlp_hidden']} units, {setup['mlp_epochs']} ep. (DIM)"
    return probe


def probe_description(probe: str, setup: dict) -> str:
    """A probe in words for the report, e.g. "the post's linear probe (4 epochs)"."""
    if probe == "linear":
        return f"the post's linear probe ({setup['linear_epochs']} epochs)"
    return (f"DIM's probe ({setup['mlp_hidden']} hidden units, dropout {setup['mlp_dropout']:g}, "
            f"{setup['mlp_epochs']} epochs)")
# how a non-default option shows in a label, in this order; per-view or per-pair weights show as
# one word, "weighted" (the post's "weighted InfoBal")
OPTION_TEXT = {"infomin": lambda v: str(v).upper(), "target": lambda v: f"target {str(v).upper()}",
               "lam": lambda v: f"λ={v:g}"}
WEIGHTS = ("view_weights", "pair_weights")


# The estimators' order and labels are infomax.estimators.MI_ESTIMATORS', read when a label or an
# order is needed: importing it imports torch (~2.5 s), which the collect step does not need.
def estimator_order() -> tuple[str, ...]:
    """The estimators in plotting order."""
    from ..estimators import MI_ESTIMATORS

    return tuple(MI_ESTIMATORS)


def estimator_label(estimator) -> str:
    from ..estimators import MI_ESTIMATORS

    entry = MI_ESTIMATORS.get(str(estimator))
    return entry.label if entry else str(estimator)


class Methods:
    """The experiment's study-B methods and their names in figures and the report.

    ``specs``: method name -> its options (``kind`` and the kind's options, the method's own
    overrides applied: ``dim_infobal.runs.method_specs``); ``kinds``: the config's
    ``dim_infobal.kinds`` block (each kind's default options).  A label says the kind, InfoBal's
    number of views, and every option that differs from its kind's default; two methods with the
    same label get their config names appended."""

    def __init__(self, specs: dict, kinds: dict):
        self.specs = {**specs, RANDOM_METHOD: {"kind": "random"}}
        self.defaults = {**kinds, "random": {}}
        base = {m: self._label(m) for m in self.specs}
        counts = {}
        for text in base.values():
            counts[text] = counts.get(text, 0) + 1
        self.labels = {m: text if counts[text] == 1 else f"{text} [{m}]" for m, text in base.items()}

    def spec(self, method) -> dict:
        try:
            return self.specs[str(method)]
        except KeyError:
            raise ValueError(f"method {method!r} is not in the experiment's config (known: "
                             f"{', '.join(sorted(self.specs))}); rerun collect_dim_infobal") from None

    def kind(self, method) -> str:
        return self.spec(method)["kind"]

    def _label(self, method) -> str:
        spec = self.spec(method)
        kind = spec["kind"]
        text = KIND_NAMES.get(kind, kind) + (f" M={spec['views']}" if kind == "infobal" else "")
        defaults = self.defaults[kind]
        changed = [k for k, v in spec.items() if k in defaults and k != "views" and v != defaults[k]]
        extras = [OPTION_TEXT[k](spec[k]) for k in OPTION_TEXT if k in changed]
        extras += ["weighted"] if any(k in WEIGHTS for k in changed) else []
        extras += [f"{k}={spec[k]}" for k in changed if k not in OPTION_TEXT and k not in WEIGHTS]
        return text + (f" ({', '.join(extras)})" if extras else "")

    def label(self, method) -> str:
        """'DIM(G)', 'InfoBal M=4 (CLUB)', 'random init (untrained)', ..."""
        self.spec(method)
        return self.labels[str(method)]

    def run_label(self, method, estimator) -> str:
        """'DIM(G) JSD', 'InfoBal M=2 DV', ...; the random floor has no estimator."""
        if self.kind(method) == "random":
            return self.label(method)
        return f"{self.label(method)} {estimator_label(estimator)}"

    def family(self, method) -> str:
        return FAMILY.get(self.kind(method), "other")

    def key(self, method):
        """Canonical order: DIM(G), DIM(L), InfoBal by views, random last; then label, name."""
        spec = self.spec(method)
        return (KIND_ORDER.get(spec["kind"], 5), spec.get("views") or 0, self.label(method), str(method))

    def of_kind(self, kind) -> list[str]:
        """The methods of ``kind``, by name."""
        return sorted(m for m, s in self.specs.items() if s["kind"] == kind)

    def colors(self, methods) -> dict:
        """Colour per method: a palette per family (DIM cool, InfoBal warm), random grey."""
        colors, used = {}, {}
        for m in sorted(set(methods), key=self.key):
            fam = self.family(m)
            if fam == "random":
                colors[m] = RANDOM_COLOR
                continue
            palette = FAMILY_PALETTES[fam]
            colors[m] = palette[used.get(fam, 0) % len(palette)]
            used[fam] = used.get(fam, 0) + 1
        return colors


# -----------------------------------------------------------------------------
# collect: evaluation JSONs -> the three tables

def rows(evals: list[dict]) -> dict[str, list[dict]]:
    """The rows of each table from the evaluation JSONs of ``infomax dim_infobal evaluate``."""
    out = {t: [] for t in COLUMNS}
    for e in evals:
        head = {k: e[k] for k in ("method", "estimator", "seed")}
        # the untrained floor's curve is its epoch-0 point: the curve probe on it, no MI estimate
        out["curves"] += [{**head, "epoch": c["epoch"], "mi_estimate": num(c["mi_estimate"]),
                           "probe_acc": num(c["probe_acc"])} for c in e["curves"]]
        out["probes"] += [{**head, **p, "acc": num(p["acc"]), "precision": e.get("precision", "")}
                          for p in e["probes"]]
        out["robustness"] += [{**head, **r, "acc": num(r["acc"])} for r in e["robustness"]]
    return out


def collect(eval_paths, out_dir) -> list[Path]:
    """Write curves.csv, probes.csv and robustness.csv into ``out_dir``."""
    return write_tables(rows(read_evals(eval_paths)), COLUMNS, out_dir)


def read(path, table: str):
    """One collected study-B table (``table``: curves, probes or robustness)."""
    return read_table(path, [c for c in COLUMNS[table] if c not in RECORDS], TEXT[table])
