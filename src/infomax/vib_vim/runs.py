"""Study A's run lists: which models an experiment trains, their file names and each training
job's settings.  Plain Python on the merged experiment (no torch): the workflow's common.smk,
the bench and the tests call it."""

from ..attacks import ATTACKS
from ..config import beta_tag

# Study A's objectives, in plotting order: the one list (objectives.py, tables.py and the schema's
# enum follow it; tests/base/test_config.py checks the schema).
OBJECTIVES = ("deterministic", "vib", "vim")
DATASET = "mnist"          # Alemi et al.'s MLP reads 28x28 digits: the one data set study A trains on


def run_name(objective: str, beta: float, seed: int) -> str:
    return f"{objective}_b{beta_tag(beta)}_s{seed}"


def runs(exp: dict) -> list[tuple[str, float, int]]:
    """(objective, beta, seed) of every main-K model; deterministic has the single beta 0."""
    vv = exp["vib_vim"]
    out = []
    for obj in vv["objectives"]:
        betas = [0.0] if obj == "deterministic" else vv["betas"][obj]
        out += [(obj, float(b), int(s)) for b in betas for s in vv["seeds"]]
    return out


def k2_runs(exp: dict) -> list[tuple[str, float, int]]:
    """(objective, beta, seed) of the K=2 embedding models: the first seed only."""
    vv = exp["vib_vim"]
    seed = int(vv["seeds"][0])
    return [(obj, float(b), seed) for obj, betas in vv["k2"]["betas"].items()
            if obj in vv["objectives"] for b in betas]


def train_settings(exp: dict, objective: str, beta: float, seed: int, K: int) -> dict:
    """The settings of one training job: the train block (for K=2 models with vib_vim.k2.train
    merged on), then what identifies the run."""
    vv = exp["vib_vim"]
    train = {**vv["train"], **(vv["k2"]["train"] if K == 2 else {})}
    return {**train, "objective": objective, "beta": float(beta), "seed": int(seed), "K": int(K)}


def link_files(models_dir, evals_dir, run: str, outputs: dict, log) -> list[str]:
    """A link rule's work: each of ``outputs`` ({model|eval|embedding: its path}) is the run's file
    in its group's folders (models/<run>.pt, eval/<run>.json and, for K=2 groups, eval/<run>.npz),
    hard-linked or copied (infomax.files.link_or_copy); what was done is written to ``log``."""
    from pathlib import Path

    from ..files import link_or_copy

    sources = {"model": f"{models_dir}/{run}.pt", "eval": f"{evals_dir}/{run}.json",
               "embedding": f"{evals_dir}/{run}.npz"}
    for name in outputs:
        src = Path(sources[name])
        if not src.is_file():
            held = sorted(p.name for p in src.parent.iterdir() if not p.name.startswith(".")) if src.parent.is_dir() else []
            raise FileNotFoundError(
                f"{src}: not in its group's folder, which holds {', '.join(held) or 'nothing'}. A group is named by "
                f"the position of its seeds in vib_vim.seeds, so this group was trained for other runs (a seed list "
                f"that is not the start of the one it was trained with, e.g. [0, 1, 2, 4] against groups of [0..4], "
                f"or a group folder copied from elsewhere): list the seeds in the same order, or remove "
                f"{src.parent.parent} to train it for {run}")
    lines = [link_or_copy(sources[name], dest) for name, dest in outputs.items()]
    Path(log).write_text("\n".join(lines) + "\n")
    return lines


def error_vs_beta_plot(objective: str) -> str:
    """The summary's plot table (plots/<name>.csv) of one regularised objective's error against beta."""
    return f"vib_vim_error_vs_beta_{objective}"


def robustness_plot(attack: str) -> str:
    """The summary's plot table of accuracy against one attack's level, a column per objective."""
    return f"vib_vim_robustness_{attack}"


def plot_tables(exp: dict) -> list[str]:
    """Every plot table the summary writes for ``exp`` (its DVC plots): error vs beta of each
    regularised objective, accuracy vs level of each attack."""
    return ([error_vs_beta_plot(o) for o in exp["vib_vim"]["objectives"] if o != "deterministic"]
            + [robustness_plot(a) for a in ATTACKS])


def groups(exp: dict) -> dict[str, list[tuple[str, float, int, int]]]:
    """The training groups: {name: [(objective, beta, seed, K), ...]}.  A group holds models of one
    objective and K (they train as one stacked model, ``vib_vim.train``): each objective's runs in
    (seed, beta) order, cut into chunks of ``vib_vim.group_size``.  Names: ``<objective>_g<i>``
    for the main K, ``k2_<objective>_g<i>`` for the K=2 embedding models."""
    vv = exp["vib_vim"]
    size = int(vv["group_size"])
    out = {}
    for prefix, K, run_list in (("", int(vv["K"]), runs(exp)), ("k2_", 2, k2_runs(exp))):
        for obj in vv["objectives"]:
            mine = sorted((r for r in run_list if r[0] == obj), key=lambda r: (r[2], r[1]))
            for i in range(0, len(mine), size):
                out[f"{prefix}{obj}_g{i // size}"] = [(o, b, s, K) for o, b, s in mine[i:i + size]]
    return out


def group_of(exp: dict, k2: bool = False) -> dict[str, str]:
    """{run name: its group} for the main-K runs, or for the K=2 runs with ``k2``."""
    return {run_name(o, b, s): g for g, members in groups(exp).items() if g.startswith("k2_") == k2
            for o, b, s, _ in members}


def group_train_settings(exp: dict, group: str) -> list[dict]:
    """Each member's training settings (``train_settings``), in the group's order."""
    try:
        members = groups(exp)[group]
    except KeyError:
        raise ValueError(f"vib_vim training group {group!r} is not one of this experiment's "
                         f"({', '.join(groups(exp))})") from None
    return [train_settings(exp, o, b, s, K) for o, b, s, K in members]
