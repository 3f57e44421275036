"""`infomax vib_vim <step>`: study A's steps (train, evaluate, collect, figures), called by the
rules in workflow/rules/vib_vim.smk."""

import json
from pathlib import Path

from ..steps import (add_collect, add_job_args, data_settings, evaluate_each, require_finite, settings_of, speed_of,
                     threads)


VV = "#/$defs/experiment/properties/vib_vim"


def train_settings_schema() -> dict:
    """The schema of the train step's --settings: a list of TrainConfig objects, each key checked by
    the config schema's rule for the key it comes from (vib_vim.train, .objectives, .seeds, .K, a beta)."""
    from ..config import settings_schema
    from .train import TrainConfig

    one = settings_schema(TrainConfig, "#/$defs/train", {
        "objective": {"$ref": f"{VV}/properties/objectives/items"}, "beta": {"$ref": "#/$defs/beta_list/items"},
        "seed": {"$ref": f"{VV}/properties/seeds/items"}, "K": {"$ref": f"{VV}/properties/K"}})
    return {"type": "array", "minItems": 1, "items": one}


def eval_settings_schema() -> dict:
    """The schema of the evaluate step's --settings: the config's evaluate block, each key checked by
    its rule there; a seed may be given but is replaced by each model's own."""
    from ..config import settings_schema
    from .evaluate import EvalConfig

    schema = settings_schema(EvalConfig, f"{VV}/properties/evaluate", {"seed": {"$ref": f"{VV}/properties/seeds/items"}})
    schema["required"].remove("seed")
    return schema


def train(a):
    """Train a group of models as one stacked model (``train.train``; one model is a group of one);
    model m goes to <out-dir>/<run name>.pt."""
    from .runs import run_name
    from .train import TrainConfig, train

    threads(a.threads)
    items = settings_of(a.settings, schema=train_settings_schema())   # a list of settings, one per model
    cfgs = [TrainConfig(**d) for d in items]
    out_dir = Path(a.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{run_name(c.objective, c.beta, c.seed)}.pt" for c in cfgs]
    summaries = train(cfgs, a.data, paths, a.resume, device=a.device, progress=not a.no_progress,
                    speed=speed_of(a), data_settings=data_settings(a))
    g = summaries[0]["group"]
    print(f"wrote {len(paths)} models to {out_dir} in {g['seconds']:.1f} s on {summaries[0]['device']}")


def _evaluate_model(model, info, model_path, data, cfg, device, out, embedding=None, no_robustness=False):
    """Evaluate one loaded checkpoint (``model``, its summary ``info``) on ``data`` and write its
    JSON (and its 2-D embedding)."""
    import numpy as np
    import torch

    from ..files import atomic_write, save_json
    from .evaluate import evaluate

    tc = info["config"]
    res = evaluate(model, data, cfg, tc["objective"], with_robustness=not no_robustness)
    head = {"objective": tc["objective"], "beta": tc["beta"], "seed": tc["seed"], "K": tc["K"]}
    metrics = {**{f"test.{k}": v for k, v in res["test"].items()},
               **{f"val.{k}": v for k, v in (res["val"] or {}).items()},          # None: no validation split
               "probe_acc": res["probe_acc"], "knn_acc": res["knn_acc"],
               **{f"robustness.{r['attack']}.{r['level']}": r["acc"] for r in res["robustness"]}}
    # the deterministic model has no noise, so no rate: NaN by design
    require_finite(metrics, model_path, allowed=("test.rate_bits", "val.rate_bits") if tc["objective"] == "deterministic" else ())
    emb = res.pop("embedding", None)
    if embedding:
        if emb is None:
            raise SystemExit(f"--embedding {embedding}: only K=2 models have a 2-D embedding (this one has K={tc['K']})")
        atomic_write(embedding, lambda f: np.savez(f, **emb, objective=tc["objective"], beta=tc["beta"],
                                                   err_avg=res["test"]["err_S"]))
    # precision: what the model trained in (its config holds the resolved value, never "auto")
    save_json({**head, "train_seconds": info["train_seconds"], "precision": tc["precision"], "device": str(device),
               "torch": torch.__version__, **res}, out)
    t = res["test"]
    print(f"{Path(model_path).name}: err_1 {t['err_1']:.4f} err_{cfg.samples} {t['err_S']:.4f} "
          f"rate {t['rate_bits']:.2f} bits  probe {res['probe_acc']:.4f} knn {res['knn_acc']:.4f}", flush=True)


def evaluate(a):
    """Evaluate models in one process (the data loaded once; the rules pass one group's models):
    each gets <out-dir>/<run>.json, evaluated with the seed it trained with."""
    from .evaluate import EvalConfig
    from .train import load_model

    paths = [Path(a.models_dir) / f"{run}.pt" for run in a.runs]
    for path, model, info, cfg, device, data, out_dir in evaluate_each(a, paths, EvalConfig, load_model,
                                                                        "vib_vim evaluate settings",
                                                                        eval_settings_schema()):
        _evaluate_model(model, info, path, data, cfg, device, out_dir / f"{path.stem}.json",
                        out_dir / f"{path.stem}.npz" if a.embeddings else None, a.no_robustness)
    print(f"wrote {len(a.runs)} evaluations to {a.out_dir}")


def collect(a):
    from .tables import collect

    paths = collect(a.evals, a.out_dir)
    print(f"wrote {len(a.evals)} models to " + ", ".join(str(p) for p in paths))


def figures(a):
    from .figures import make_figures

    paths = make_figures(a.metrics, a.validation, a.robustness, a.embeddings, a.out_dir, samples=a.samples)
    print("wrote " + ", ".join(str(p) for p in paths))


def register(sub):
    """Add `vib_vim` and its steps to the `infomax` parser."""
    study = sub.add_parser("vib_vim", help="study A: VIM vs VIB (train, evaluate, collect, figures)")
    steps = study.add_subparsers(dest="step", required=True)
    sp = add_job_args(steps.add_parser("train", help="train study-A models as one stacked model (a group; one "
                                      "model is a group of one)"), train, training=True, out="--out-dir")
    sp.add_argument("--resume", required=True, help="the group's resume state (written every checkpoint_seconds)")
    sp = add_job_args(steps.add_parser("evaluate", help="evaluate study-A models in one process (<out-dir>/<run>.json each)"),
                      evaluate, training=False, out="--out-dir")
    sp.add_argument("--models-dir", required=True, help="the trained models (<run>.pt)")
    sp.add_argument("--runs", nargs="+", required=True, help="the run names to evaluate")
    sp.add_argument("--embeddings", action="store_true", help="also write <run>.npz, the 2-D embedding (K=2 models)")
    sp.add_argument("--no-robustness", action="store_true")
    add_collect(steps, collect, "metrics.csv, validation.csv, robustness.csv")
    sp = steps.add_parser("figures", help="draw the study-A figures (PNG + PDF)")
    sp.set_defaults(fn=figures)
    for table in ("metrics", "validation", "robustness"):
        sp.add_argument(f"--{table}", required=True, help=f"collected {table}.csv")
    sp.add_argument("--embeddings", nargs="*", default=[])
    sp.add_argument("--samples", type=int, help="how many samples of z err_avg averaged (vib_vim.evaluate.samples), "
                    "for the labels; not given: they name no count")
    sp.add_argument("--out-dir", required=True)
