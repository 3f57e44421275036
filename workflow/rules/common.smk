# Config -> run lists and paths.  No logic beyond that: everything else is in src/infomax.
import json
import sys
from pathlib import Path

# The rules run `python -m infomax <step>`.  src/ goes on PYTHONPATH, so that works with or
# without `pip install -e .`, in --sdm conda environments and in cluster jobs alike; and unless
# conda provides the environment, `python` is the interpreter running Snakemake (so
# `.venv/bin/snakemake` works without activating the venv).
SRC = str(Path(workflow.basedir) / "src")
sys.path.insert(0, SRC)
_conda = any(m.name == "CONDA" for m in workflow.deployment_settings.deployment_method)
_path = "" if _conda else f"export PATH={Path(sys.executable).parent}:$PATH; "
shell.prefix(_path + f"export PYTHONPATH={SRC}${{{{PYTHONPATH:+:$PYTHONPATH}}}}; ")  # {{{{: f-string, then Snakemake
# Software of every job (--sdm conda): the one environment file of the project.
ENV = "../../environment.yml"

from infomax.config import (
    RANDOM,
    ConfigError,
    beta_tag,
    infobal_run_name,
    infobal_runs,
    infobal_train_settings,
    report_settings,
    run_name,
    select,
    validate_config,
    vib_vim_k2_runs,
    vib_vim_runs,
    vib_vim_train_settings,
)

try:
    validate_config(config, Path(workflow.basedir) / "workflow/schemas/config.schema.yaml")
except ConfigError as e:
    raise WorkflowError(f"{e}\n(config/config.yaml, or a --config override)") from None

EXP, X = select(config)  # name and settings of the selected experiment
OUT = f"results/{EXP}"
VV = X["vib_vim"]
IB = X["infobal"]
IB_DATA = f"{OUT}/data/{IB['dataset']}.pt"
# study-B file names are <method>_<estimator>_s<seed>: the method wildcard only matches a name
# the config defines (or the built-in untrained floor), so the split is never ambiguous.
IB_METHODS = "|".join(sorted([*IB["methods"], RANDOM[0]], key=len, reverse=True))
# GPU token of training/evaluation jobs (0 when the experiment says device: cpu).  Local runs
# ignore it unless a limit is given (--resources gpu=N, as workflow/profiles/gpu does: N jobs
# share the GPU); the SLURM executor turns it into a GPU request per job.
GPU = 0 if X["device"] == "cpu" else 1
# torch threads per job (torch.set_num_threads follows the rule's `threads`, so --cores is never
# oversubscribed).  One thread per job and one job per core gave the best throughput on a
# 2-core CPU (measured: +17% over one 2-thread job); raise it with --set-threads rule=N.
TORCH_THREADS = 1


def settings(d):
    """JSON for an `infomax` step's --settings, quoted in the shell command as {params.settings:q}."""
    return json.dumps(d, sort_keys=True)


def prepare_inputs(wc):
    """The raw download a data set's prepare job needs (none for the embedded subset)."""
    src = X["data"][wc.dataset]["source"]
    return [f"resources/{wc.dataset}"] if src == "torchvision" else []


def vib_vim_settings(wc, K):
    return settings(vib_vim_train_settings(X, wc.objective, wc.beta, wc.seed, K))


def vib_vim_eval_settings(wc):
    return settings({**VV["evaluate"], "seed": int(wc.seed)})


def vib_vim_evals():
    runs = [f"{OUT}/vib_vim/eval/{run_name(*r)}.json" for r in vib_vim_runs(X)]
    return runs + [f"{OUT}/vib_vim/eval/k2/{run_name(*r)}.json" for r in vib_vim_k2_runs(X)]


def vib_vim_embeddings():
    return [f"{OUT}/vib_vim/embeddings/{run_name(*r)}.npz" for r in vib_vim_k2_runs(X)]


FIGURES_VIB_VIM = ["error_vs_beta", "information_plane", "robustness", "representation_vs_beta", "embedding_k2"]


def data_outputs():
    """Prepared data of every data set the selected experiment configures."""
    return [f"{OUT}/data/{dataset}.pt" for dataset in X["data"]]


def vib_vim_models():
    runs = [f"{OUT}/vib_vim/models/{run_name(*r)}.pt" for r in vib_vim_runs(X)]
    return runs + [f"{OUT}/vib_vim/models/k2/{run_name(*r)}.pt" for r in vib_vim_k2_runs(X)]


def vib_vim_tables():
    return [f"{OUT}/vib_vim/{t}.csv" for t in ("metrics", "validation", "robustness")]


def vib_vim_figures():
    return [f"{OUT}/figures/{f}.{ext}" for f in FIGURES_VIB_VIM for ext in ("png", "pdf")]


def vib_vim_outputs():
    return vib_vim_tables() + vib_vim_figures()


def infobal_settings(wc):
    return settings(infobal_train_settings(X, wc.method, wc.estimator, int(wc.seed)))


def infobal_eval_settings(wc):
    return settings({**IB["evaluate"], "seed": int(wc.seed)})


def infobal_evals():
    return [f"{OUT}/infobal/eval/{infobal_run_name(*r)}.json" for r in infobal_runs(X)]


FIGURES_INFOBAL = ["infobal_curves", "infobal_probes", "infobal_robustness"]


def infobal_models():
    return [f"{OUT}/infobal/models/{infobal_run_name(*r)}.pt" for r in infobal_runs(X)]


def infobal_tables():
    return [f"{OUT}/infobal/{t}.csv" for t in ("curves", "probes", "robustness")]


def infobal_figures():
    return [f"{OUT}/figures/{f}.{ext}" for f in FIGURES_INFOBAL for ext in ("png", "pdf")]


def infobal_outputs():
    return infobal_tables() + infobal_figures()


# The summary step: one JSON of headline numbers (DVC metrics) and small plot-ready CSVs (DVC
# plots), all derived from the collected tables.  Names: see infomax.summary.
def summary_plot_tables():
    regularised = [o for o in VV["objectives"] if o != "deterministic"]
    plots = [f"vib_vim_error_vs_beta_{o}" for o in regularised]
    plots += [f"vib_vim_robustness_{attack}" for attack in ("gaussian", "saltpepper", "fgsm")]
    return [f"{OUT}/plots/{p}.csv" for p in plots]


def summary_outputs():
    return [f"{OUT}/summary.json"] + summary_plot_tables()


# The replication report: claims.json and REPLICATION.md (infomax.report), and the figures with
# their captions for `snakemake --report` (PNG only; the PDFs are the same figures).
# Both belong to the project, not to a run: found next to the Snakefile, whatever --directory is.
PUBLISHED = str(Path(workflow.basedir) / "config/published.yaml")  # every published number, with its source
CAPTIONS = str(Path(workflow.basedir) / "workflow/report")          # one-line caption per figure


def figure_outputs(names, category):
    pngs = [report(f"{OUT}/figures/{f}.png", caption=f"../report/{f}.rst", category=category) for f in names]
    return pngs + [f"{OUT}/figures/{f}.pdf" for f in names]


def report_figures():
    """Every figure of the report: name, PNG path and the rule that draws it."""
    made_by = [("figures_vib_vim", FIGURES_VIB_VIM), ("figures_infobal", FIGURES_INFOBAL)]
    return [{"name": f, "path": f"{OUT}/figures/{f}.png", "rule": rule} for rule, names in made_by for f in names]


def replication_settings():
    return {**report_settings(config), "figures": report_figures()}


def replication_outputs():
    return [f"{OUT}/claims.json", f"{OUT}/REPLICATION.md", f"{OUT}/REPLICATION.html"]
