"""Study A's collected tables and their vocabulary: the columns (the output contract), collecting
evaluation JSONs into rows, reading the CSVs back, model selection, and the labels, colours and
markers every figure and the report use.
"""

from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..config import beta_tag
from ..tables import num, read_evals, read_table, write_tables
from .runs import OBJECTIVES  # plotting order

# The output contract (docs/outputs.md): columns of results/<experiment>/vib_vim/<table>.csv.
# err_1: the error of one sample of z per image; err_avg (val_err_avg on validation): the error of
# the softmax averaged over vib_vim.evaluate.samples samples of z (the evaluation JSON's err_S).
COLUMNS = {
    "metrics": ["objective", "beta", "seed", "K", "err_1", "err_avg", "rate_bits", "izy_bits",
                "probe_acc", "knn_acc", "train_seconds", "precision"],
    "validation": ["objective", "beta", "seed", "K", "val_err_avg"],
    "robustness": ["objective", "beta", "seed", "attack", "level", "acc"],
}
# Columns that record how a run was made (the precision it trained in): written in every table,
# read by the report's facts, never by a claim or figure, so tables from before them still read.
RECORDS = ("precision",)
TEXT = {"metrics": ("objective", "precision"), "validation": ("objective",), "robustness": ("objective", "attack")}

# vocabulary: plotting order, colours, markers, names
COLORS = {"deterministic": "0.3", "vib": "tab:blue", "vim": "#e6550d"}
OTHER_COLOR = "tab:green"
MARKERS = {"deterministic": "s", "vib": "o", "vim": "^"}
NAMES = {"deterministic": "deterministic", "vib": "VIB", "vim": "VIM"}


def beta_label(beta) -> str:
    """Compact beta for labels: 0 -> '0', 0.001 -> '1e-3', 2.5e-4 -> '2.5e-4', 1 -> '1', 10 -> '1e1'."""
    tag = beta_tag(float(beta))
    return "1" if tag == "1e0" else tag


def label(objective, beta=None) -> str:
    """'VIB (beta=1e-3)', 'deterministic', ..."""
    name = NAMES.get(objective, objective)
    return name if objective == "deterministic" or beta is None else f"{name} (beta={beta_label(beta)})"


def objective_color(objective) -> str:
    return COLORS.get(objective, OTHER_COLOR)


def objectives_in(df) -> list[str]:
    """Objectives present, known ones first in the canonical order, unknown ones after."""
    present = list(dict.fromkeys(df["objective"]))
    return [o for o in OBJECTIVES if o in present] + sorted(o for o in present if o not in OBJECTIVES)


# -----------------------------------------------------------------------------
# collect: evaluation JSONs -> the three tables

def rows(evals: list[dict]) -> dict[str, list[dict]]:
    """The rows of each table from the evaluation JSONs of ``infomax vib_vim evaluate``."""
    out = {t: [] for t in COLUMNS}
    for e in evals:
        head = {k: e[k] for k in ("objective", "beta", "seed", "K")}
        t = e["test"]
        out["metrics"].append({**head, "err_1": num(t["err_1"]), "err_avg": num(t["err_S"]),
                               "rate_bits": num(t["rate_bits"]), "izy_bits": num(t["izy_bits"]),
                               "probe_acc": num(e["probe_acc"]), "knn_acc": num(e["knn_acc"]),
                               "train_seconds": num(e["train_seconds"]), "precision": e.get("precision", "")})   # "": an evaluation from before the column
        # no validation split (val_size 0): the row with its cell left empty, nothing invented
        out["validation"].append({**head, "val_err_avg": num(e["val"]["err_S"]) if e["val"] else None})
        out["robustness"] += [{**{k: head[k] for k in ("objective", "beta", "seed")}, **r, "acc": num(r["acc"])}
                              for r in e["robustness"]]
    return out


def collect(eval_paths, out_dir) -> list[Path]:
    """Write metrics.csv, validation.csv and robustness.csv into ``out_dir``."""
    return write_tables(rows(read_evals(eval_paths)), COLUMNS, out_dir)


def read(path, table: str):
    """One collected study-A table (``table``: metrics, validation or robustness)."""
    return read_table(path, [c for c in COLUMNS[table] if c not in RECORDS], TEXT[table])


def main_k(df) -> int:
    """The bottleneck size of the main grid: the largest K in the table (K=2 is the embedding
    variant)."""
    return int(df["K"].max())


def main_rows(df, path, K=None):
    """The rows of the main bottleneck size (``K``, or the table's largest)."""
    K = main_k(df) if K is None else K
    out = df[df["K"] == K]
    if out.empty:
        raise ValueError(f"{path}: no rows with K={K} (found K values: {sorted(df['K'].unique().tolist())})")
    return out


def at_beta(df, objective, beta):
    return df[(df["objective"] == objective) & np.isclose(df["beta"], beta, rtol=1e-9, atol=0)]


# -----------------------------------------------------------------------------
# model selection

class Choice(NamedTuple):
    """Each objective's beta at the main bottleneck size and how it was come by (``choose``)."""
    K: int
    best: dict              # objective -> beta (deterministic: 0.0)
    selected: bool          # chosen on validation; False: no validation split, each objective's only beta
    val: object             # the validation rows at K (DataFrame)

    @property
    def words(self) -> str:
        """How each objective's beta was come by, in the report's words."""
        return "validation-best beta" if self.selected else "only beta (no validation split: nothing chosen)"


def choose(validation_csv, K=None) -> Choice:
    """For each objective, the beta with the lowest MEAN validation error (val_err_avg) over seeds
    (ties -> the smaller beta), at ``K`` (the table's largest by default).  Deterministic has no
    beta -> 0.0.  Reads validation data only, once: the test set picks nothing.  Without a
    validation split (val_size 0: every val_err_avg empty) each objective has one beta, its own,
    and ``selected`` is False."""
    every = main_rows(read(validation_csv, "validation"), validation_csv, K)
    df = every.dropna(subset=["val_err_avg"])
    best = {}
    for obj in objectives_in(every):
        if obj == "deterministic":
            best[obj] = 0.0
            continue
        grid = sorted(every[every["objective"] == obj]["beta"].unique())
        if df[df["objective"] == obj].empty:          # no validation split (val_size 0): nothing to choose on
            if len(grid) != 1:
                raise ValueError(f"{validation_csv}: {obj} has {len(grid)} betas but no validation errors to choose "
                                 f"among them (an experiment with val_size 0 trains one beta per objective)")
            best[obj] = float(grid[0])
            continue
        means = df[df["objective"] == obj].groupby("beta")["val_err_avg"].mean()
        tied = means[means <= means.min() + 1e-12]  # robust to float noise in the means
        best[obj] = float(min(tied.index))
    return Choice(int(every["K"].iloc[0]), best, not df.empty, every)
