"""`infomax dim_infobal <step>`: study B's steps (train, evaluate, collect, figures), called by the
rules in workflow/rules/dim_infobal.smk."""

from ..steps import (add_collect, add_job_args, data_settings, evaluate_each, require_finite, settings_of, speed_of,
                     threads)


IB = "#/$defs/dim_infobal"


def train_settings_schema() -> dict:
    """The schema of the train step's --settings: TrainConfig, each key checked by the config
    schema's rule for the key it comes from (dim_infobal.train, the kinds' options, .seeds, ...)."""
    from ..config import schema, settings_schema
    from .train import KINDS, TrainConfig

    defs = schema()["$defs"]
    kinds = defs["dim_infobal"]["properties"]["kinds"]["properties"]      # kind -> {$ref: #/$defs/<its options>}
    option_blocks = dict.fromkeys(k["$ref"].rsplit("/", 1)[-1] for k in kinds.values())
    extra = {"method": {"anyOf": [{"const": "random"}, {"$ref": f"{IB}/properties/methods/propertyNames"}],
                        "type": "string"},
             "kind": {"enum": list(KINDS)},
             "estimator": {"anyOf": [{"const": "none"}, {"$ref": "#/$defs/estimator_list/items"}]},
             "seed": {"$ref": f"{IB}/properties/seeds/items"},
             # each kind's options, as the config schema lists them ($defs/dim_options, ...): another
             # kind's options are absent or null (TrainConfig requires its own kind's)
             **{k: {"anyOf": [{"type": "null"}, {"$ref": f"#/$defs/{block}/properties/{k}"}]}
                for block in option_blocks for k in defs[block]["properties"]}}
    return settings_schema(TrainConfig, f"{IB}/properties/train", extra)


def eval_settings_schema() -> dict:
    """The schema of the evaluate step's --settings: the config's evaluate block, each key checked by
    its rule there; a seed may be given but is replaced by each model's own."""
    from ..config import settings_schema
    from .evaluate import EvalConfig

    schema = settings_schema(EvalConfig, f"{IB}/properties/evaluate", {"seed": {"$ref": f"{IB}/properties/seeds/items"}})
    schema["required"].remove("seed")
    return schema


def train(a):
    from .train import TrainConfig, train

    threads(a.threads)
    cfg = TrainConfig(**settings_of(a.settings, schema=train_settings_schema()))
    summary = train(cfg, a.data, a.out, device=a.device, progress=not a.no_progress, speed=speed_of(a),
                    data_settings=data_settings(a))
    last = summary["curves"][-1]
    print(f"wrote {a.out} in {summary['train_seconds']:.1f} s on {summary['device']}: epoch {last['epoch']}, "
          f"MI estimate {last['mi_estimate']:.4f} nats, curve probe {last['probe_acc']:.4f}")


def evaluate(a):
    """Evaluate models in one process (the data and torch loaded once; the rules pass one seed's
    models): each gets <out-dir>/<model name>.json, probed with the seed it trained with."""
    import torch

    from ..files import save_json
    from .evaluate import EvalConfig, evaluate
    from .train import load_model

    for path, net, info, cfg, device, data, out_dir in evaluate_each(a, a.models, EvalConfig, load_model,
                                                                      "dim_infobal evaluate settings",
                                                                        eval_settings_schema()):
        tc = info["config"]
        res = evaluate(net, data, cfg)
        require_finite({**{f"{p['layer']}/{p['probe']}": p["acc"] for p in res["probes"]},
                        **{f"{r['attack']}.{r['level']}": r["acc"] for r in res["robustness"]},
                        **{f"curve.epoch{c['epoch']}.probe_acc": c["probe_acc"] for c in info["curves"]},
                        # the untrained floor has no critic, so no MI estimate: NaN by design
                        **({} if tc["kind"] == "random" else
                           {f"curve.epoch{c['epoch']}.mi_estimate": c["mi_estimate"] for c in info["curves"]})},
                       path)
        save_json({"method": tc["method"], "estimator": tc["estimator"], "seed": tc["seed"], "kind": tc["kind"],
                   "train_seconds": info["train_seconds"], "precision": tc["precision"], "curves": info["curves"],
                   "device": str(device),
                   "torch": torch.__version__, **res}, out_dir / f"{path.stem}.json")
        print(f"{path.name}: " + "  ".join(f"{p['layer']}/{p['probe']} {p['acc']:.4f}" for p in res["probes"]),
              flush=True)


def collect(a):
    from .tables import collect

    paths = collect(a.evals, a.out_dir)
    print(f"wrote {len(a.evals)} models to " + ", ".join(str(p) for p in paths))


def figures(a):
    from .figures import make_figures
    from .tables import Methods

    s = settings_of(a.settings)
    paths = make_figures(a.curves, a.probes, a.robustness, a.out_dir, Methods(s["methods"], s["kinds"]), s["probes"])
    print("wrote " + ", ".join(str(p) for p in paths))


def register(sub):
    """Add `dim_infobal` and its steps to the `infomax` parser."""
    study = sub.add_parser("dim_infobal", help="study B: InfoBal vs DIM (train, evaluate, collect, figures)")
    steps = study.add_subparsers(dest="step", required=True)
    add_job_args(steps.add_parser("train", help="pre-train one study-B model (DIM, InfoBal, random)"), train,
                 training=True)
    sp = add_job_args(steps.add_parser("evaluate", help="probe study-B models (one process; <out-dir>/<model>.json each)"),
                      evaluate, training=False, out="--out-dir")
    sp.add_argument("--models", nargs="+", required=True, help="trained study-B checkpoints (<run>.pt)")
    add_collect(steps, collect, "curves.csv, probes.csv, robustness.csv")
    sp = steps.add_parser("figures", help="draw the study-B figures (PNG + PDF)")
    sp.set_defaults(fn=figures)
    sp.add_argument("--settings", required=True, help="JSON: dim_infobal.study.options (methods, kinds, probes)")
    for table in ("curves", "probes", "robustness"):
        sp.add_argument(f"--{table}", required=True, help=f"collected {table}.csv")
    sp.add_argument("--out-dir", required=True)
