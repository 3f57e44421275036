"""The ``infomax`` command: one subcommand per pipeline step; the Snakemake rules call these.

Each step takes its settings as one JSON object (``--settings``), so a rule passes exactly the
config values it depends on and Snakemake reruns a job when, and only when, those change.
"""

import argparse
import json
import math
import sys
from dataclasses import fields
from pathlib import Path

from .config import (
    CURVES_COLUMNS,
    INFOBAL_ROBUSTNESS_COLUMNS,
    METRICS_COLUMNS,
    PROBES_COLUMNS,
    ROBUSTNESS_COLUMNS,
    VALIDATION_COLUMNS,
)


def _settings(text: str, cls=None, what="settings") -> dict:
    try:
        s = json.loads(text)
    except json.JSONDecodeError as e:
        raise SystemExit(f"--settings is not valid JSON ({e}): {text[:200]}")
    if cls is not None:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(s) - known)
        if unknown:
            raise SystemExit(f"{what}: unknown key(s) {unknown}; expected some of {sorted(known)}")
    return s


def _threads(n: int | None):
    import torch

    if n:
        torch.set_num_threads(n)   # the rule's `threads:`: several jobs never oversubscribe the cores


def cmd_prepare(a):
    from .data import prepare

    s = _settings(a.settings)
    if s["source"] == "torchvision":
        path = prepare(a.dataset, a.out, root=a.root, val_size=s["val_size"], seed=s["seed"])
    else:
        path = prepare("embedded", a.out, n_images=s.get("n_images"), test_fraction=s["test_fraction"],
                       val_fraction=s["val_fraction"], seed=s["seed"])
    print(f"wrote {path}")


def cmd_download(a):
    from .data import download

    print(f"downloaded and verified {download(a.dataset, a.root)}")


def _evaluation_inputs(a, cfg_cls, load_model):
    """What an evaluate step needs: its settings, the device, the model (eval mode) with its
    checkpoint summary, and the prepared data on that device."""
    from .data import load_prepared
    from .train import resolve_device

    _threads(a.threads)
    cfg = cfg_cls(**_settings(a.settings, cfg_cls, "evaluate settings"))
    device = resolve_device(a.device)
    model, info = load_model(a.model, device)
    return cfg, device, model, info, load_prepared(a.data, device)


def _speed(a):
    """The train steps' --tf32 and --compile flags as a train.Speed."""
    from .train import Speed

    return Speed(tf32={"auto": None, "on": True, "off": False}[a.tf32], compile=a.compile)


def cmd_train_vib_vim(a):
    from .train import VibVimTrainConfig, train_vib_vim

    _threads(a.threads)
    cfg = VibVimTrainConfig(**_settings(a.settings, VibVimTrainConfig, "train settings"))
    summary = train_vib_vim(cfg, a.data, a.out, device=a.device, progress=not a.no_progress, speed=_speed(a))
    print(f"wrote {a.out} in {summary['train_seconds']:.1f} s on {summary['device']}")


def cmd_evaluate_vib_vim(a):
    import numpy as np
    import torch

    from .evaluate import VibVimEvalConfig, evaluate_vib_vim
    from .files import atomic_write, save_json
    from .train import load_vib_vim_model

    cfg, device, model, info, data = _evaluation_inputs(a, VibVimEvalConfig, load_vib_vim_model)
    tc = info["config"]
    res = evaluate_vib_vim(model, data, cfg, tc["objective"], with_robustness=not a.no_robustness)
    head = {"objective": tc["objective"], "beta": tc["beta"], "seed": tc["seed"], "K": tc["K"]}
    emb = res.pop("embedding", None)
    if a.embedding:
        if emb is None:
            raise SystemExit(f"--embedding {a.embedding}: only K=2 models have a 2-D embedding (this one has K={tc['K']})")
        atomic_write(a.embedding, lambda f: np.savez(f, **emb, objective=tc["objective"], beta=tc["beta"],
                                                     err_12=res["test"]["err_S"]))
    save_json({**head, "train_seconds": info["train_seconds"], "device": str(device),
               "torch": torch.__version__, **res}, a.out)
    t = res["test"]
    print(f"{Path(a.model).name}: err_1 {t['err_1']:.4f} err_{cfg.samples} {t['err_S']:.4f} "
          f"rate {t['rate_bits']:.2f} bits  probe {res['probe_acc']:.4f} knn {res['knn_acc']:.4f}")


def _read_evals(paths):
    evals = []
    for p in paths:
        try:
            evals.append(json.loads(Path(p).read_text()))
        except (OSError, json.JSONDecodeError) as e:
            raise SystemExit(f"cannot read evaluation {p} ({e}): rerun its evaluate job")
    return evals


def _num(x):
    """6 significant digits (float32 noise is not information); NaN -> empty cell."""
    return "" if x is None or (isinstance(x, float) and math.isnan(x)) else float(f"{x:.6g}")


def cmd_collect_vib_vim(a):
    from .files import save_csv

    num = _num
    metrics, val, rob = [], [], []
    for e in _read_evals(a.evals):
        head = {k: e[k] for k in ("objective", "beta", "seed", "K")}
        t = e["test"]
        metrics.append({**head, "err_1": num(t["err_1"]), "err_12": num(t["err_S"]),
                        "rate_bits": num(t["rate_bits"]), "izy_bits": num(t["izy_bits"]),
                        "probe_acc": num(e["probe_acc"]), "knn_acc": num(e["knn_acc"]),
                        "train_seconds": num(e["train_seconds"])})
        val.append({**head, "val_err_12": num(e["val"]["err_S"])})
        rob += [{**{k: head[k] for k in ("objective", "beta", "seed")}, **r, "acc": num(r["acc"])}
                for r in e["robustness"]]
    out = Path(a.out_dir)
    save_csv(metrics, METRICS_COLUMNS, out / "metrics.csv")
    save_csv(val, VALIDATION_COLUMNS, out / "validation.csv")
    save_csv(rob, ROBUSTNESS_COLUMNS, out / "robustness.csv")
    print(f"wrote {len(metrics)} models to {out}/metrics.csv, validation.csv, robustness.csv")


def cmd_figures_vib_vim(a):
    from .figures import make_vib_vim_figures

    paths = make_vib_vim_figures(a.metrics, a.validation, a.robustness, a.embeddings, a.out_dir)
    print("wrote " + ", ".join(str(p) for p in paths))


def cmd_train_infobal(a):
    from .train import InfoBalTrainConfig, train_infobal

    _threads(a.threads)
    cfg = InfoBalTrainConfig(**_settings(a.settings, InfoBalTrainConfig, "train settings"))
    summary = train_infobal(cfg, a.data, a.out, device=a.device, progress=not a.no_progress, speed=_speed(a))
    last = summary["curves"][-1]
    print(f"wrote {a.out} in {summary['train_seconds']:.1f} s on {summary['device']}: epoch {last['epoch']}, "
          f"MI estimate {last['mi_estimate']:.4f} nats, curve probe {last['probe_acc']:.4f}")


def cmd_evaluate_infobal(a):
    import torch

    from .evaluate import InfoBalEvalConfig, evaluate_infobal
    from .files import save_json
    from .train import load_infobal_model

    cfg, device, net, info, data = _evaluation_inputs(a, InfoBalEvalConfig, load_infobal_model)
    tc = info["config"]
    res = evaluate_infobal(net, data, cfg)
    save_json({"method": tc["method"], "estimator": tc["estimator"], "seed": tc["seed"], "kind": tc["kind"],
               "train_seconds": info["train_seconds"], "curves": info["curves"], "device": str(device),
               "torch": torch.__version__, **res}, a.out)
    print(f"{Path(a.model).name}: " + "  ".join(f"{p['layer']}/{p['probe']} {p['acc']:.4f}" for p in res["probes"]))


def cmd_collect_infobal(a):
    from .files import save_csv

    curves, probes, rob = [], [], []
    for e in _read_evals(a.evals):
        head = {k: e[k] for k in ("method", "estimator", "seed")}
        # the untrained floor's curve is its epoch-0 point: the curve probe on it, no MI estimate
        curves += [{**head, "epoch": c["epoch"], "mi_estimate": _num(c["mi_estimate"]),
                    "probe_acc": _num(c["probe_acc"])} for c in e["curves"]]
        probes += [{**head, **p, "acc": _num(p["acc"])} for p in e["probes"]]
        rob += [{**head, **r, "acc": _num(r["acc"])} for r in e["robustness"]]
    out = Path(a.out_dir)
    save_csv(curves, CURVES_COLUMNS, out / "curves.csv")
    save_csv(probes, PROBES_COLUMNS, out / "probes.csv")
    save_csv(rob, INFOBAL_ROBUSTNESS_COLUMNS, out / "robustness.csv")
    print(f"wrote {len(a.evals)} models to {out}/curves.csv, probes.csv, robustness.csv")


def cmd_figures_infobal(a):
    from .figures import make_infobal_figures

    paths = make_infobal_figures(a.curves, a.probes, a.robustness, a.out_dir)
    print("wrote " + ", ".join(str(p) for p in paths))


def cmd_summarize(a):
    from .summary import write_summary

    path = write_summary(a.out, a.plots_dir, a.metrics, a.validation, a.robustness, a.infobal_probes)
    print(f"wrote {path} and the plot tables in {a.plots_dir}")


def cmd_replication(a):
    from .report import write_report

    tables = {"metrics": a.metrics, "validation": a.validation, "robustness": a.robustness,
              "curves": a.curves, "probes": a.probes}
    claims = write_report(_settings(a.settings), tables, a.published, a.captions, a.claims, a.markdown, a.html)
    for c in claims["claims"]:
        print(f"{c['id']}: {c['verdict']:<12} {c['statement']}")
    print(f"wrote {a.claims}, {a.markdown}" + (f" and {a.html}" if a.html else ""))


def cmd_bench(a):
    from .bench import BenchConfig, report, run_bench
    from .files import save_json

    kw = dict(device=a.device, threads=a.threads, experiment=a.experiment, config=a.config, workers=a.workers,
              jobs=a.jobs, tf32={"auto": None, "on": True, "off": False}[a.tf32], compile=a.compile)
    kw.update({k: v for k, v in (("matmul_size", a.matmul_size), ("steps_a", a.steps_a), ("steps_b", a.steps_b),
                                 ("repeats", a.repeats), ("warmup", a.warmup)) if v is not None})
    b = BenchConfig.quick(**kw) if a.quick else BenchConfig(**kw)
    res = run_bench(b, log=lambda m: print(m, file=sys.stderr, flush=True))
    print(report(res))
    save_json(res, a.out)
    print(f"wrote {a.out}")


def cmd_restore_mtimes(a):
    from .restore import restore_mtimes

    restore_mtimes(a.repo, a.experiment)


def main(argv=None):
    p = argparse.ArgumentParser(prog="infomax", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)

    def add(name, fn, help):
        sp = sub.add_parser(name, help=help)
        sp.set_defaults(fn=fn)
        return sp

    sp = add("download", cmd_download, "download a data set through torchvision, verifying checksums")
    sp.add_argument("--dataset", required=True, choices=["mnist", "cifar10"])
    sp.add_argument("--root", default="resources")

    sp = add("prepare", cmd_prepare, "download or load a data set and write compact uint8 tensors")
    sp.add_argument("--dataset", required=True, choices=["mnist", "cifar10"])
    sp.add_argument("--settings", required=True, help="JSON: the config's data.<dataset> block")
    sp.add_argument("--root", default="resources", help="download folder for torchvision sources")
    sp.add_argument("--out", required=True)

    for name, fn, help in [("train-vib-vim", cmd_train_vib_vim, "train one study-A model"),
                           ("evaluate-vib-vim", cmd_evaluate_vib_vim, "evaluate one study-A model"),
                           ("train-infobal", cmd_train_infobal, "pre-train one study-B model (DIM, InfoBal, random)"),
                           ("evaluate-infobal", cmd_evaluate_infobal, "probe one study-B model")]:
        sp = add(name, fn, help)
        sp.add_argument("--data", required=True, help="prepared data file")
        sp.add_argument("--settings", required=True, help="JSON settings of this step")
        sp.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
        sp.add_argument("--threads", type=int, default=None, help="torch CPU threads")
        sp.add_argument("--out", required=True)
        if name.startswith("train"):
            sp.add_argument("--no-progress", action="store_true")
            sp.add_argument("--tf32", default="auto", choices=["auto", "on", "off"],
                            help="TF32 matmuls and convolutions (auto: on for CUDA, off on the CPU)")
            sp.add_argument("--compile", action="store_true", help="torch.compile the forward pass and loss")
        else:
            sp.add_argument("--model", required=True)
    ev = sub.choices["evaluate-vib-vim"]
    ev.add_argument("--embedding", help="also write the 2-D embedding (.npz) of a K=2 model")
    ev.add_argument("--no-robustness", action="store_true")

    for name, fn, study in [("collect-vib-vim", cmd_collect_vib_vim, "A"), ("collect-infobal", cmd_collect_infobal, "B")]:
        sp = add(name, fn, f"gather evaluations into the study-{study} CSVs")
        sp.add_argument("--out-dir", required=True)
        sp.add_argument("evals", nargs="+")

    sp = add("figures-vib-vim", cmd_figures_vib_vim, "draw the study-A figures (PNG + PDF)")
    sp.add_argument("--metrics", required=True)
    sp.add_argument("--validation", required=True)
    sp.add_argument("--robustness", required=True)
    sp.add_argument("--embeddings", nargs="*", default=[])
    sp.add_argument("--out-dir", required=True)

    sp = add("figures-infobal", cmd_figures_infobal, "draw the study-B figures (PNG + PDF)")
    sp.add_argument("--curves", required=True)
    sp.add_argument("--probes", required=True)
    sp.add_argument("--robustness", required=True)
    sp.add_argument("--out-dir", required=True)

    sp = add("summarize", cmd_summarize, "headline numbers (summary.json) and plot tables for DVC")
    sp.add_argument("--metrics", required=True)
    sp.add_argument("--validation", required=True)
    sp.add_argument("--robustness", required=True)
    sp.add_argument("--infobal-probes", help="study B's probes.csv (adds the `infobal` section)")
    sp.add_argument("--out", required=True, help="summary JSON")
    sp.add_argument("--plots-dir", required=True, help="folder for the plot-ready CSVs")

    sp = add("replication", cmd_replication,
             "the replication report: claims.json and REPLICATION.md (verdicts on PROTOCOL.md's claims)")
    sp.add_argument("--settings", required=True, help="JSON: infomax.config.report_settings + figures")
    for table in ("metrics", "validation", "robustness", "curves", "probes"):
        sp.add_argument(f"--{table}", required=True, help=f"collected {table}.csv")
    sp.add_argument("--published", default="config/published.yaml", help="the published numbers")
    sp.add_argument("--captions", default="workflow/report", help="folder of <figure>.rst captions")
    sp.add_argument("--claims", required=True, help="output: claims.json")
    sp.add_argument("--markdown", required=True, help="output: REPLICATION.md")
    sp.add_argument("--html", help="output: the report as one HTML page, figures embedded (REPLICATION.html)")

    sp = add("bench", cmd_bench, "training throughput against this device's matmul ceiling and a conventional "
             "DataLoader loop, and the predicted wall time of an experiment's training")
    sp.add_argument("--out", default="results/bench.json", help="JSON with every measurement")
    sp.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    sp.add_argument("--threads", type=int, default=1, help="torch threads (the rules run threads: 1 per job)")
    sp.add_argument("--experiment", default="paper", help="model sizes, training jobs and epochs to predict")
    sp.add_argument("--config", default=str(Path(__file__).resolve().parents[2] / "config" / "config.yaml"))
    sp.add_argument("--jobs", type=int, help="training jobs at once in the prediction (default: --cores all on "
                    "the CPU; the gpu profile's gpu=N on CUDA)")
    sp.add_argument("--workers", type=int, default=0, help="DataLoader workers of the conventional loop")
    sp.add_argument("--quick", action="store_true", help="a few steps and a small matmul: rough numbers")
    sp.add_argument("--matmul-size", type=int)
    sp.add_argument("--steps-a", type=int, help="study-A steps per timed window (default 20 CPU, 100 CUDA)")
    sp.add_argument("--steps-b", type=int, help="study-B steps per timed window (default 1 CPU, 20 CUDA)")
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
    except (ValueError, FileNotFoundError, RuntimeError, ArithmeticError) as e:
        # Known failure modes (bad data file, bad value, missing checkpoint) end with one clear line.
        print(f"infomax {a.cmd}: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
