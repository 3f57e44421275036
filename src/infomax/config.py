"""Configuration: experiments that inherit from `paper`, validation with errors that name the key,
and the settings the report needs.  Nothing here touches torch (the Snakefile imports it).

``paper`` is complete; every other experiment is an override block deep-merged onto it
(``experiment``).  The JSON schema validates the *merged* experiment and requires every key, so
the YAML is the one source of every value: the step dataclasses have no defaults.
"""

import copy
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"
BASE = "paper"
# Inside an experiment, mappings that list what runs (not settings): an override replaces them
# whole instead of merging into paper's (quick's three methods must not inherit paper's six).
REPLACED = {("data",), ("dim_infobal", "methods")}


class ConfigError(ValueError):
    """A configuration key or value is wrong; the message names it and says what was expected."""


def _key_path(path) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "<top level>"


def merge(base: dict, override: dict, path=()) -> dict:
    """``override`` deep-merged onto ``base`` (neither is changed): mappings merge key by key,
    except those in REPLACED; lists and values replace."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        here = (*path, key)
        if isinstance(value, dict) and isinstance(out.get(key), dict) and here not in REPLACED:
            out[key] = merge(out[key], value, here)
        else:
            out[key] = copy.deepcopy(value)
    return out


def experiment(config: dict, name: str) -> dict:
    """The complete settings of experiment ``name``: paper, with the override block merged on."""
    exps = config["experiments"]
    if name not in exps:
        raise ConfigError(f"experiment: {name!r} is not a defined experiment (expected one of: "
                          f"{', '.join(sorted(exps))})")
    return exps[BASE] if name == BASE else merge(exps[BASE], exps[name] or {})


def select(config: dict) -> tuple[str, dict]:
    """(name, merged settings) of the experiment selected by ``config['experiment']``."""
    name = config["experiment"]
    return name, experiment(config, name)


def _schema_problems(validator, instance, prefix) -> list[str]:
    problems = []
    for err in sorted(validator.iter_errors(instance), key=lambda e: list(map(str, e.absolute_path))):
        msg = err.message
        if err.validator == "additionalProperties":
            msg += " (unknown key: check its spelling against workflow/schemas/config.schema.yaml)"
        if err.validator == "type" and isinstance(err.instance, str):
            msg += " (YAML reads 1e-3 as a string: write 1.0e-3)"
        problems.append(f"{_key_path([*prefix, *err.absolute_path])}: {msg}")
    return problems


def validate_config(config: dict, schema_path=SCHEMA) -> dict:
    """Check ``config``: its top level, then every experiment merged onto paper, against the JSON
    schema and the cross-key rules; return it unchanged.  When paper itself is incomplete only
    paper's problems are listed (every other experiment inherits them).

    Raises ConfigError listing every problem as ``key.path: what is wrong``.
    """
    import jsonschema

    schema = yaml.safe_load(Path(schema_path).read_text())
    top = jsonschema.Draft202012Validator(schema)
    one = jsonschema.Draft202012Validator({"$ref": "#/$defs/experiment", "$defs": schema["$defs"]})
    problems = _schema_problems(top, config, [])
    if not problems:
        if config["experiment"] not in config["experiments"]:
            problems.append(f"experiment: {config['experiment']!r} is not a defined experiment (expected one of: "
                            f"{', '.join(sorted(config['experiments']))})")
        names = [BASE] + sorted(n for n in config["experiments"] if n != BASE)
        for name in names:
            prefix = ["experiments", name]
            exp = experiment(config, name)
            found = _schema_problems(one, exp, prefix)
            found = found or _cross_checks(exp, ".".join(prefix), schema["$defs"])
            if found and name != BASE:
                found = [f"{p} (merged onto paper)" for p in found]
            problems += found
            if found and name == BASE:
                break
    if problems:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems))
    return config


# Train-set sizes of the official splits (wheel and torchvision sources; validation is carved from
# them); the embedded subset has 5,000 images, 500 per class.  Ten classes in every source.
TORCHVISION_TRAIN = {"mnist": 60000, "cifar10": 50000}
EMBEDDED_IMAGES, CLASSES = 5000, 10


def split_sizes(ds_name: str, ds: dict) -> dict | None:
    """{split: the fewest images it can hold} of a data block, as infomax.data cuts it (None when
    the block is inconsistent: another check names why).  Embedded: each class of n/10 images is
    cut by the fractions, every split getting the floor or the ceiling of its share (the floor is
    what is sure); wheel and torchvision: train_size (or train minus val_size), and val_size."""
    if ds["source"] != "embedded":
        n = TORCHVISION_TRAIN.get(ds_name)
        if n is None:
            return None
        return {"train": ds["train_size"] or n - ds["val_size"], "val": ds["val_size"]}
    n = EMBEDDED_IMAGES if ds["n_images"] is None else ds["n_images"]
    if n % CLASSES or ds["test_fraction"] + ds["val_fraction"] >= 1:
        return None
    per_class = n // CLASSES
    fr = {"train": 1.0 - ds["test_fraction"] - ds["val_fraction"], "val": ds["val_fraction"],
          "test": ds["test_fraction"]}
    return {k: CLASSES * int(per_class * f + 1e-9) for k, f in fr.items()}


def _size_checks(exp: dict, at: str) -> list[str]:
    """Bounds between the data's split sizes and the settings that use them."""
    problems = []
    sizes = {}
    for ds_name, ds in exp["data"].items():
        where = f"{at}.data.{ds_name}"
        if ds["source"] != "embedded":
            n = TORCHVISION_TRAIN.get(ds_name)
            if n is not None and not ds["val_size"] < n:
                problems.append(f"{where}.val_size: {ds['val_size']} leaves no train images "
                                f"({ds_name} has {n} train images; expected < {n})")
                continue
            if n is not None and ds["train_size"] is not None and ds["train_size"] > n - ds["val_size"]:
                problems.append(f"{where}.train_size: {ds['train_size']} is more than the {n - ds['val_size']} train "
                                f"images left after val_size {ds['val_size']} (null: all of them)")
                continue
        elif ds["n_images"] is not None and ds["n_images"] % CLASSES:
            problems.append(f"{where}.n_images: {ds['n_images']} is not a multiple of {CLASSES} "
                            f"(the subset is stratified: the same count per class)")
            continue
        s = split_sizes(ds_name, ds)
        if s is None:
            continue
        sizes[ds_name] = s
        if ds["source"] == "embedded":
            thin = [k for k, v in s.items() if v < CLASSES]
            if thin:
                n = EMBEDDED_IMAGES if ds["n_images"] is None else ds["n_images"]
                problems.append(f"{where}.n_images: {n} images ({n // CLASSES} per class) leave some class without "
                                f"an image in the {', '.join(thin)} split(s) (stratified split; raise n_images or the "
                                f"fractions)")
    vv, ib = exp["vib_vim"], exp["dim_infobal"]
    if "mnist" in sizes:
        train = sizes["mnist"]["train"]
        blocks = [("vib_vim.train", vv["train"])] + [("vib_vim.k2.train", {**vv["train"], **vv["k2"]["train"]})]
        for name, block in blocks:
            if name.startswith("vib_vim.k2") and "batch_size" not in vv["k2"]["train"]:
                continue
            if block["batch_size"] > train:
                problems.append(f"{at}.{name}.batch_size: {block['batch_size']} is larger than the mnist train split "
                                f"({train} images): no full batch to train on")
        if vv["evaluate"]["knn_k"] > train:
            problems.append(f"{at}.vib_vim.evaluate.knn_k: {vv['evaluate']['knn_k']} neighbours, but the mnist train "
                            f"split has {train} images")
    if ib["dataset"] in sizes:
        s = sizes[ib["dataset"]]
        t = ib["train"]
        if t["batch_size"] > s["train"]:
            problems.append(f"{at}.dim_infobal.train.batch_size: {t['batch_size']} is larger than the "
                            f"{ib['dataset']} train split ({s['train']} images): no full batch to train on")
        if t["curve_probe_images"] > s["train"]:
            problems.append(f"{at}.dim_infobal.train.curve_probe_images: {t['curve_probe_images']} is more than the "
                            f"{ib['dataset']} train split ({s['train']} images)")
        if s["val"] < 2:
            problems.append(f"{at}.data.{ib['dataset']}: the val split ({s['val']} images) needs >= 2 for the curves")
        if ib["evaluate"]["batch_size"] > s["train"]:
            problems.append(f"{at}.dim_infobal.evaluate.batch_size: {ib['evaluate']['batch_size']} is larger than the "
                            f"{ib['dataset']} train split ({s['train']} images) the probes train on")
    return problems


def _cross_checks(exp: dict, at: str, defs: dict) -> list[str]:
    """Rules one key's schema cannot say: data sources, objectives with grids, method options,
    split sizes against the settings that use them."""
    import jsonschema

    problems = []
    for ds_name, ds in exp["data"].items():
        if ds_name != "mnist" and ds["source"] in ("embedded", "wheel"):
            problems.append(f"{at}.data.{ds_name}.source: {ds['source']!r} is MNIST only (use torchvision)")
        official = ["n_images", "test_fraction", "val_fraction"]
        wrong = {"embedded": ["val_size", "train_size"], "torchvision": official, "wheel": official}
        for key in wrong[ds["source"]]:
            if key in ds:
                problems.append(f"{at}.data.{ds_name}.{key}: not used when source is {ds['source']!r}")
        if ds["source"] == "embedded" and ds["test_fraction"] + ds["val_fraction"] >= 1:
            problems.append(f"{at}.data.{ds_name}: test_fraction + val_fraction must be < 1")
    if "mnist" not in exp["data"]:
        problems.append(f"{at}.data.mnist: missing (study A, vib_vim, trains on MNIST)")
    ib = exp["dim_infobal"]
    if "y" not in ib["evaluate"]["layers"]:
        problems.append(f"{at}.dim_infobal.evaluate.layers: {ib['evaluate']['layers']} lacks y (every claim of study B "
                        "reads the probes on Y / R)")
    if ib["dataset"] not in exp["data"]:
        problems.append(f"{at}.dim_infobal.dataset: {ib['dataset']!r} has no data.{ib['dataset']} block")
    option_schema = {"dim_g": "dim_options", "dim_l": "dim_options", "infobal": "infobal_options"}
    for name, m in ib["methods"].items():
        kind = m["kind"]
        if kind not in ib["kinds"]:
            problems.append(f"{at}.dim_infobal.methods.{name}.kind: {kind!r} is not a kind of dim_infobal.kinds "
                            f"(expected one of: {', '.join(ib['kinds'])})")
            continue
        options = ib["kinds"][kind]
        for key in sorted(set(m) - {"kind", "estimators"} - set(options)):
            problems.append(f"{at}.dim_infobal.methods.{name}.{key}: not an option of kind {kind!r} "
                            f"(its options: {', '.join(options)})")
        spec = {**options, **{k: v for k, v in m.items() if k in options}}
        if kind in option_schema:               # a kind added later has no option schema of its own
            validator = jsonschema.Draft202012Validator({"$ref": f"#/$defs/{option_schema[kind]}", "$defs": defs})
            problems += _schema_problems(validator, spec, [*at.split("."), "dim_infobal", "methods", name])
        if kind == "infobal":
            views = spec["views"]
            for key, n in (("view_weights", views), ("pair_weights", views * (views - 1) // 2)):
                if spec[key] is not None and len(spec[key]) != n:
                    problems.append(f"{at}.dim_infobal.methods.{name}.{key}: has {len(spec[key])} entries, "
                                    f"expected {n} for {views} views")
    if not problems:
        problems += _size_checks(exp, at)
    return problems


def read_yaml(path) -> dict:
    """A YAML file's content; a syntax error is a ConfigError naming the file, line and column."""
    path = Path(path)
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
        what = getattr(e, "problem", None) or str(e)
        ctx, cmark = getattr(e, "context", None), getattr(e, "context_mark", None)
        if ctx and cmark is not None:
            what += f" ({ctx} at line {cmark.line + 1}, column {cmark.column + 1})"
        raise ConfigError(f"{where}: not valid YAML: {what}") from None


def load(path=ROOT / "config" / "config.yaml", experiment_name=None) -> dict:
    """config/config.yaml with ``experiment`` from params.yaml next to it (or ``experiment_name``),
    validated: what the Snakefile sees, for tools outside the workflow (bench, tests)."""
    path = Path(path)
    config = read_yaml(path)
    params = path.parent.parent / "params.yaml"
    config["experiment"] = experiment_name or read_yaml(params)["experiment"]
    return validate_config(config)


def beta_tag(beta: float) -> str:
    """Compact, file-name-safe and round-trippable: 0.001 -> '1e-3', 2.5e-4 -> '2.5e-4', 1 -> '1e0'."""
    if beta == 0:
        return "0"
    mantissa, exponent = f"{beta:e}".split("e")
    mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}e{int(exponent)}"


def _data_kind(exp: dict, dataset: str, fixed_parts: dict | None = None, reduced: list[str] = ()) -> str:
    """'full' for a whole official data set, else a description of the part that was used
    (``fixed_parts``: {what: (images, split)} evaluated on a fixed stratified part of a split only,
    such as {"noise and FGSM": (2000, "test")}; None images: the whole split; ``reduced``: what
    else this experiment evaluates less of than ``paper``, ``_reduced``)."""
    ds = exp["data"][dataset]
    if ds["source"] == "embedded":
        return "; ".join(["the embedded 5,000-image MNIST subset", *reduced])
    parts = []
    if ds["train_size"] is not None:
        parts.append(f"a {ds['train_size']:,}-image training subset (validation {ds['val_size']:,} images, "
                     f"the official test set)")
    parts += [f"{what} on a fixed stratified {n:,} of the {split} images"
              for what, (n, split) in (fixed_parts or {}).items() if n is not None]
    parts += list(reduced)
    return "; ".join(parts) or "full"


def _levels(values) -> str:
    return ", ".join(f"{v:g}" for v in values if v != 0)


def _reduced(exp: dict, paper: dict, study: str) -> list[str]:
    """What ``exp`` evaluates less of than the ``paper`` experiment: noise levels, probed layers."""
    out = []
    ev, full = exp[study]["evaluate"], paper[study]["evaluate"]
    names = {"gaussian": "Gaussian noise", "saltpepper": "salt-and-pepper noise", "fgsm": "FGSM"}
    for key, name in names.items():
        if key in ev and set(ev[key]) < set(full[key]):
            out.append(f"{name} at {_levels(ev[key])} only (paper: {_levels(full[key])})")
    if "layers" in ev and set(ev["layers"]) < set(full["layers"]):
        out.append(f"probes on layer(s) {', '.join(ev['layers'])} only (paper: {', '.join(full['layers'])})")
    return out


def report_settings(config: dict, method_specs: dict) -> dict:
    """What the replication report needs to know about the selected experiment, beyond its
    tables: the facts compared with the published protocols (config/published.yaml), the
    study-B methods (``method_specs``) and kinds, and the report's statistics."""
    name, exp = select(config)
    paper = experiment(config, "paper")
    vv, ib = exp["vib_vim"], exp["dim_infobal"]
    return {
        "experiment": name,
        "report": dict(config["report"]),
        "methods": method_specs,
        "kinds": ib["kinds"],
        "facts": {
            "vib_vim": {"dataset": "mnist", "epochs": vv["train"]["epochs"],
                        "data": _data_kind(exp, "mnist", {"noise and FGSM": (vv["evaluate"]["robustness_images"], "test")},
                                              _reduced(exp, paper, "vib_vim")),
                        "covariance": "diagonal",
                        "precision": vv["train"]["precision"]},
            "dim_infobal": {"dataset": ib["dataset"],
                            "data": _data_kind(exp, ib["dataset"], {"probes and noise": (ib["evaluate"]["test_images"], "test"),
                                                                   "curves": (ib["train"]["curve_val_images"], "validation")},
                                              _reduced(exp, paper, "dim_infobal")),
                            "epochs": ib["train"]["epochs"], "precision": ib["train"]["precision"],
                            **{k: ib["train"][k] for k in ("local_units", "global_hidden")}},
        },
    }
