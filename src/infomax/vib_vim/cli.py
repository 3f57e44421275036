"""`infomax vib_vim <step>`: study A's steps (train, evaluate, collect, figures), called by the
rules in workflow/rules/vib_vim.smk."""

from pathlib import Path

from ..cli import add_collect, add_job_args, evaluation_inputs, require_finite, settings_of, speed_of, threads


def train(a):
    from .train import TrainConfig, train

    threads(a.threads)
    cfg = TrainConfig(**settings_of(a.settings, TrainConfig, "vib_vim train settings"))
    summary = train(cfg, a.data, a.out, device=a.device, progress=not a.no_progress, speed=speed_of(a))
    print(f"wrote {a.out} in {summary['train_seconds']:.1f} s on {summary['device']}")


def evaluate(a):
    import numpy as np
    import torch

    from ..files import atomic_write, save_json
    from .evaluate import EvalConfig, evaluate
    from .train import load_model

    cfg, device, model, info, data = evaluation_inputs(a, EvalConfig, load_model)
    tc = info["config"]
    res = evaluate(model, data, cfg, tc["objective"], with_robustness=not a.no_robustness)
    head = {"objective": tc["objective"], "beta": tc["beta"], "seed": tc["seed"], "K": tc["K"]}
    metrics = {**{f"test.{k}": v for k, v in res["test"].items()}, **{f"val.{k}": v for k, v in res["val"].items()},
               "probe_acc": res["probe_acc"], "knn_acc": res["knn_acc"],
               **{f"robustness.{r['attack']}.{r['level']}": r["acc"] for r in res["robustness"]}}
    # the deterministic model has no noise, so no rate: NaN by design
    require_finite(metrics, a.model, allowed=("test.rate_bits", "val.rate_bits") if tc["objective"] == "deterministic" else ())
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


def collect(a):
    from .tables import collect

    paths = collect(a.evals, a.out_dir)
    print(f"wrote {len(a.evals)} models to " + ", ".join(str(p) for p in paths))


def figures(a):
    from .figures import make_figures

    paths = make_figures(a.metrics, a.validation, a.robustness, a.embeddings, a.out_dir)
    print("wrote " + ", ".join(str(p) for p in paths))


def register(sub):
    """Add `vib_vim` and its steps to the `infomax` parser."""
    study = sub.add_parser("vib_vim", help="study A: VIM vs VIB (train, evaluate, collect, figures)")
    steps = study.add_subparsers(dest="step", required=True)
    sp = add_job_args(steps.add_parser("train", help="train one study-A model"), train, training=True)
    sp = add_job_args(steps.add_parser("evaluate", help="evaluate one study-A model"), evaluate, training=False)
    sp.add_argument("--embedding", help="also write the 2-D embedding (.npz) of a K=2 model")
    sp.add_argument("--no-robustness", action="store_true")
    add_collect(steps, collect, "metrics.csv, validation.csv, robustness.csv")
    sp = steps.add_parser("figures", help="draw the study-A figures (PNG + PDF)")
    sp.set_defaults(fn=figures)
    for table in ("metrics", "validation", "robustness"):
        sp.add_argument(f"--{table}", required=True, help=f"collected {table}.csv")
    sp.add_argument("--embeddings", nargs="*", default=[])
    sp.add_argument("--out-dir", required=True)
