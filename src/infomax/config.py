"""Configuration: schema validation with errors that name the key, and run lists.

The Snakefile calls ``validate_config`` before any job is planned; the helpers below turn the
selected experiment into the list of models to train.  Nothing here touches torch.
"""

from pathlib import Path

import yaml

SCHEMA = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"


# The output contract (DESIGN.md): column order of the study-A tables.  The collect step writes
# them, the figures read them, and the tests check them against the contract's literal text.
METRICS_COLUMNS = ["objective", "beta", "seed", "K", "err_1", "err_12", "rate_bits", "izy_bits",
                   "probe_acc", "knn_acc", "train_seconds"]
VALIDATION_COLUMNS = ["objective", "beta", "seed", "K", "val_err_12"]
ROBUSTNESS_COLUMNS = ["objective", "beta", "seed", "attack", "level", "acc"]
# ... and of the study-B tables.
CURVES_COLUMNS = ["method", "estimator", "seed", "epoch", "mi_estimate", "probe_acc"]
PROBES_COLUMNS = ["method", "estimator", "seed", "layer", "probe", "acc"]
INFOBAL_ROBUSTNESS_COLUMNS = ["method", "estimator", "seed", "attack", "level", "acc"]
# Study B: the untrained, randomly initialised encoder every method is judged against.  Its
# "estimator" is "none".  Added to every experiment; not a name a config may define.
RANDOM = ("random", "none")
DIM_KINDS = ("dim_g", "dim_l")
DIM_ONLY_KEYS = ("global_weight", "local_weight", "prior_weight")
INFOBAL_ONLY_KEYS = ("views", "target", "infomin", "lam", "view_weights", "pair_weights")


class ConfigError(ValueError):
    """A configuration key or value is wrong; the message names it and says what was expected."""


def _key_path(path) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "<top level>"


def validate_config(config: dict, schema_path=SCHEMA) -> dict:
    """Check ``config`` against the JSON schema and the cross-key rules; return it unchanged.

    Raises ConfigError listing every problem as ``key.path: what is wrong``.
    """
    import jsonschema

    schema = yaml.safe_load(Path(schema_path).read_text())
    validator = jsonschema.Draft202012Validator(schema)
    problems = []
    for err in sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.absolute_path))):
        msg = err.message
        if err.validator == "additionalProperties":
            msg += " (unknown key: check its spelling against workflow/schemas/config.schema.yaml)"
        if err.validator == "type" and isinstance(err.instance, str):
            msg += " (YAML reads 1e-3 as a string: write 1.0e-3)"
        problems.append(f"{_key_path(err.absolute_path)}: {msg}")
    if not problems:
        problems = _cross_checks(config)
    if problems:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems))
    return config


def _cross_checks(config: dict) -> list[str]:
    problems = []
    name = config["experiment"]
    if name not in config["experiments"]:
        known = ", ".join(sorted(config["experiments"]))
        problems.append(f"experiment: {name!r} is not a defined experiment (expected one of: {known})")
    for exp_name, exp in config["experiments"].items():
        at = f"experiments.{exp_name}"
        for ds_name, ds in exp["data"].items():
            if ds_name != "mnist" and ds["source"] == "embedded":
                problems.append(f"{at}.data.{ds_name}.source: 'embedded' is MNIST only (use torchvision)")
            need = {"embedded": ["test_fraction", "val_fraction"], "torchvision": ["val_size"]}[ds["source"]]
            for key in need:
                if key not in ds:
                    problems.append(f"{at}.data.{ds_name}.{key}: required when source is {ds['source']!r}")
            wrong = {"embedded": ["val_size"], "torchvision": ["n_images", "test_fraction", "val_fraction"]}
            for key in wrong[ds["source"]]:
                if key in ds:
                    problems.append(f"{at}.data.{ds_name}.{key}: not used when source is {ds['source']!r}")
            if ds["source"] == "embedded" and ds.get("test_fraction", 0) + ds.get("val_fraction", 0) >= 1:
                problems.append(f"{at}.data.{ds_name}: test_fraction + val_fraction must be < 1")
        vv = exp["vib_vim"]
        for obj in vv["objectives"]:
            if obj != "deterministic" and obj not in vv["betas"]:
                problems.append(f"{at}.vib_vim.betas.{obj}: missing (objective {obj!r} is listed in objectives)")
        if "mnist" not in exp["data"]:
            problems.append(f"{at}.data.mnist: missing (study A, vib_vim, trains on MNIST)")
        ib = exp["infobal"]
        if ib["dataset"] not in exp["data"]:
            problems.append(f"{at}.infobal.dataset: {ib['dataset']!r} has no data.{ib['dataset']} block")
        for name, m in ib["methods"].items():
            wrong = INFOBAL_ONLY_KEYS if m["kind"] in DIM_KINDS else DIM_ONLY_KEYS
            for key in wrong:
                if key in m:
                    problems.append(f"{at}.infobal.methods.{name}.{key}: not an option of kind {m['kind']!r}")
            views = m.get("views", 2)
            for key, n in (("view_weights", views), ("pair_weights", views * (views - 1) // 2)):
                if key in m and len(m[key]) != n:
                    problems.append(f"{at}.infobal.methods.{name}.{key}: has {len(m[key])} entries, "
                                    f"expected {n} for {views} views")
    return problems


def select(config: dict) -> tuple[str, dict]:
    """(name, settings) of the experiment selected by ``config['experiment']``."""
    name = config["experiment"]
    return name, config["experiments"][name]


def beta_tag(beta: float) -> str:
    """Compact, file-name-safe and round-trippable: 0.001 -> '1e-3', 2.5e-4 -> '2.5e-4', 1 -> '1e0'."""
    if beta == 0:
        return "0"
    mantissa, exponent = f"{beta:e}".split("e")
    mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}e{int(exponent)}"


def run_name(objective: str, beta: float, seed: int) -> str:
    return f"{objective}_b{beta_tag(beta)}_s{seed}"


def vib_vim_runs(exp: dict) -> list[tuple[str, float, int]]:
    """(objective, beta, seed) of every K=K model; deterministic has the single beta 0."""
    vv = exp["vib_vim"]
    runs = []
    for obj in vv["objectives"]:
        betas = [0.0] if obj == "deterministic" else vv["betas"][obj]
        runs += [(obj, float(b), int(s)) for b in betas for s in vv["seeds"]]
    return runs


def vib_vim_k2_runs(exp: dict) -> list[tuple[str, float, int]]:
    """(objective, beta, seed) of the K=2 embedding models: the first seed only."""
    vv = exp["vib_vim"]
    seed = int(vv["seeds"][0])
    return [(obj, float(b), seed) for obj, betas in vv["k2"]["betas"].items()
            if obj in vv["objectives"] for b in betas]


def infobal_runs(exp: dict) -> list[tuple[str, str, int]]:
    """(method, estimator, seed) of every study-B model, the untrained `random` floor included."""
    ib = exp["infobal"]
    seeds = [int(s) for s in ib["seeds"]]
    runs = [(name, est, s) for name, m in ib["methods"].items() for est in m["estimators"] for s in seeds]
    return runs + [(*RANDOM, s) for s in seeds]


def vib_vim_train_settings(exp: dict, objective: str, beta: float, seed: int, K: int) -> dict:
    """The settings of one study-A training job: the train block (for K=2 models overridden by
    vib_vim.k2.train), then what identifies the run."""
    vv = exp["vib_vim"]
    train = {**vv["train"], **(vv["k2"].get("train", {}) if K == 2 else {})}
    return {**train, "objective": objective, "beta": float(beta), "seed": int(seed), "K": int(K)}


def infobal_run_name(method: str, estimator: str, seed: int) -> str:
    return f"{method}_{estimator}_s{seed}"


def infobal_train_settings(exp: dict, method: str, estimator: str, seed: int) -> dict:
    """The settings of one study-B training job: the shared train block, then the method's own
    options (kind, views, lam, ...), then what identifies the run."""
    ib = exp["infobal"]
    if (method, estimator) == RANDOM:
        opts = {"kind": "random"}
    elif method not in ib["methods"]:
        raise ConfigError(f"infobal method {method!r} is not defined (expected one of {', '.join(ib['methods'])})")
    else:
        opts = {k: v for k, v in ib["methods"][method].items() if k != "estimators"}
    return {**ib["train"], **opts, "method": method, "estimator": estimator, "seed": int(seed)}


def _data_kind(exp: dict, dataset: str) -> str:
    """'full' for a downloaded data set, else a description of the embedded subset."""
    return "full" if exp["data"][dataset]["source"] == "torchvision" else "the embedded 5,000-image MNIST subset"


def report_settings(config: dict) -> dict:
    """What the replication report needs to know about the selected experiment, beyond its
    tables: the facts compared with the published protocols (config/published.yaml), the
    kind of each study-B method, and the report's statistics (the config's `report` block)."""
    name, exp = select(config)
    vv, ib = exp["vib_vim"], exp["infobal"]
    defaults = {"local_units": 2048, "global_hidden": 512}     # InfoBalTrainConfig's (DIM's) values
    return {
        "experiment": name,
        "report": dict(config.get("report", {})),
        "methods": {m: spec["kind"] for m, spec in ib["methods"].items()},
        "facts": {
            "vib_vim": {"dataset": "mnist", "data": _data_kind(exp, "mnist"), "epochs": vv["train"]["epochs"],
                        "covariance": "diagonal"},
            "infobal": {"dataset": ib["dataset"], "data": _data_kind(exp, ib["dataset"]),
                        "epochs": ib["train"]["epochs"],
                        **{k: ib["train"].get(k, d) for k, d in defaults.items()}},
        },
    }
