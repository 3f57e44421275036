"""Study A (vib_vim) as the base sees it: the small interface every study module offers, so the
config checks, the report, the summary and the ``infomax`` command loop over the studies
(``infomax.studies``) instead of naming them.  Torch-free at import (the Snakefile imports it);
the report's parts import their modules when called.

    NAME, TITLE, TABLES, FIGURES       names: the study's block, its report heading (and its figures' category in
                                       `snakemake --report`), collected
                                       tables (<study>/<table>.csv) and figures (figures/<figure>.png / .pdf)
    overrides(config)                  an override block from the config's top level, merged onto the
                                       selected experiment (scheduling that follows the machine)
    checks(exp, at, defs)              config rules its schema cannot say (list of problems)
    size_checks(exp, at, sizes)        bounds against the data's split sizes
    facts(exp, paper), options(exp)    what the report compares with the published protocol;
                                       what its claims need beyond the tables
    claims_module()                    CLAIMS, METRIC_TEXT (its {keys} filled from read_tables), RECONSTRUCTED,
                                       read_tables, claims, anchor_values
    summarize(tables, plots_dir)       its part of summary.json
    plot_tables(exp)                   the plot tables summarize writes (plots/<name>.csv)
    register(sub)                      its `infomax <study> <step>` commands
    bench_module()                     what `infomax bench` times (``infomax.vib_vim.bench``: STEPS,
                                       dataset, jobs, headline, images, step); None for a study that
                                       trains nothing

Its workflow plumbing (run lists, paths, wildcard constraints) is its rule file,
workflow/rules/<NAME>.smk, which the Snakefile includes for every study.
"""

from ..attacks import ATTACKS
from ..config import data_used, reduced_levels
from . import runs
from .runs import DATASET

NAME = "vib_vim"
TITLE = "Study A (vib_vim)"
TABLES = ("metrics", "validation", "robustness")
# figure files figures/<study>_<function of figures.py>.png / .pdf (tests/vib_vim/test_figures.py checks the pairing)
FIGURES = tuple(f"{NAME}_{f}" for f in ("error_vs_beta", "information_plane", "robustness", "representation_vs_beta",
                                        "embedding_k2"))


def overrides(config: dict) -> dict:
    """The top-level ``group_size`` (when not null) as the experiment's group size: how many models
    one job stacks is scheduling only (a model trains alike alone or stacked:
    tests/vib_vim/test_train.py), so it may follow the machine (``--config group_size=5`` on a GPU)."""
    return {} if config["group_size"] is None else {NAME: {"group_size": config["group_size"]}}


def checks(exp: dict, at: str, defs: dict) -> list[str]:
    if DATASET not in exp["data"]:
        return [f"{at}.data.{DATASET}: missing (study A, vib_vim, trains on {DATASET})"]
    return []


def size_checks(exp: dict, at: str, sizes: dict) -> list[str]:
    """Batch sizes and k-NN's k against the MNIST train split."""
    if DATASET not in sizes:
        return []
    problems = []
    vv, train = exp[NAME], sizes[DATASET]["train"]
    blocks = [("vib_vim.train", vv["train"])]
    if "batch_size" in vv["k2"]["train"]:
        blocks.append(("vib_vim.k2.train", {**vv["train"], **vv["k2"]["train"]}))
    for name, block in blocks:
        if block["batch_size"] > train:
            problems.append(f"{at}.{name}.batch_size: {block['batch_size']} is larger than the {DATASET} train split "
                            f"({train} images): no full batch to train on")
    if sizes[DATASET]["val"] == 0:                  # val_size 0: nothing to choose a beta on
        for obj in vv["objectives"]:
            grid = vv["betas"].get(obj, [])
            if len(grid) > 1:
                problems.append(f"{at}.data.{DATASET}.val_size: 0 (no validation split), but vib_vim.betas.{obj} lists "
                                f"{len(grid)} betas, and study A (vib_vim) chooses among them on validation: give "
                                f"val_size > 0, or one beta")
    if vv["evaluate"]["knn_k"] > train:
        problems.append(f"{at}.vib_vim.evaluate.knn_k: {vv['evaluate']['knn_k']} neighbours, but the {DATASET} train "
                        f"split has {train} images")
    return problems


def facts(exp: dict, paper: dict) -> dict:
    vv = exp[NAME]
    return {"dataset": DATASET, "epochs": vv["train"]["epochs"],
            "k2_epochs": {**vv["train"], **vv["k2"]["train"]}["epochs"],     # the K=2 models' (figure 2's anchors)
            "data": data_used(exp, DATASET, {"noise and FGSM": (vv["evaluate"]["robustness_images"], "test")},
                              reduced_levels(vv["evaluate"], paper[NAME]["evaluate"],
                                             {a: spec.words for a, spec in ATTACKS.items()})),
            "covariance": "diagonal",
            "precision": vv["train"]["precision"]}


def options(exp: dict) -> dict:
    """What the claims' texts say beyond the tables: how many samples of z err_avg averages
    (evaluate.samples).  How each beta was come by is the validation table's to say
    (tables.choose: chosen on validation, or each objective's only one without a validation split)."""
    return {"samples": exp[NAME]["evaluate"]["samples"]}


def claims_module():
    from . import claims
    return claims


def summarize(tables: dict, plots_dir) -> dict:
    from .summary import summarize
    return summarize(tables["metrics"], tables["validation"], tables["robustness"], plots_dir)


def plot_tables(exp: dict) -> list[str]:
    return runs.plot_tables(exp)


def bench_module():
    from . import bench
    return bench


def register(sub):
    from .cli import register
    register(sub)
