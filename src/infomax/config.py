"""Configuration: experiments that inherit from `paper`, validation with errors that name the key,
and the settings the report needs.  Nothing here touches torch (the Snakefile imports it).

``paper`` is complete; every other experiment is an override block deep-merged onto it
(``experiment``).  The JSON schema validates the *merged* experiment and requires every key, so
the YAML is the one source of every value: the step dataclasses have no defaults.
"""

import copy
from pathlib import Path

import yaml

from .datasets import DATASETS, EMBEDDED_IMAGES, offering

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"
BASE = "paper"
# Inside an experiment, mappings that list what runs (not settings), by key: an override replaces
# them whole instead of merging into paper's (quick's three methods must not inherit paper's six).
REPLACED = {"data", "methods"}


class ConfigError(ValueError):
    """A configuration key or value is wrong; the message names it and says what was expected."""


def _key_path(path) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "<top level>"


def merge(base: dict, override: dict, path=()) -> dict:
    """``override`` deep-merged onto ``base`` (neither is changed): mappings merge key by key,
    except those named in REPLACED; lists and values replace."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        here = (*path, key)
        if isinstance(value, dict) and isinstance(out.get(key), dict) and key not in REPLACED:
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


def select(config: dict, studies=()) -> tuple[str, dict]:
    """(name, merged settings) of the experiment selected by ``config['experiment']``, with each of
    ``studies``' overrides from the top level of the config merged on (``<study>.study.overrides``:
    scheduling that may follow the machine rather than the experiment, such as study A's
    ``--config group_size=5`` on a GPU); ``infomax.studies.select`` passes them all."""
    name = config["experiment"]
    exp = experiment(config, name)
    for study in studies:
        exp = merge(exp, study.overrides(config))
    return name, exp


def schema_problems(validator, instance, prefix, yaml_hints=True) -> list[str]:
    problems = []
    for err in sorted(validator.iter_errors(instance), key=lambda e: list(map(str, e.absolute_path))):
        msg = err.message
        if err.validator == "additionalProperties":
            msg += " (unknown key: check its spelling against workflow/schemas/config.schema.yaml)"
        if yaml_hints and err.validator == "type" and isinstance(err.instance, str):
            msg += " (YAML reads 1e-3 as a string: write 1.0e-3)"
        problems.append(f"{_key_path([*prefix, *err.absolute_path])}: {msg}")
    return problems


def non_finite(value, path=()) -> list[str]:
    """``key.path: ...`` for every NaN or infinite number anywhere in ``value`` (nested dicts and
    lists): one check for every numeric key of the schema, whose bounds a NaN passes (every
    comparison with NaN is false)."""
    import math

    if isinstance(value, float) and not math.isfinite(value):
        return [f"{_key_path(path)}: {value} is not a finite number (NaN and infinity are never valid values)"]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in non_finite(v, (*path, k))]
    if isinstance(value, (list, tuple)):
        return [p for i, v in enumerate(value) for p in non_finite(v, (*path, i))]
    return []


def schema() -> dict:
    """The config schema (workflow/schemas/config.schema.yaml)."""
    return yaml.safe_load(SCHEMA.read_text())


def settings_schema(cls, block: str, extra: dict | None = None) -> dict:
    """The schema of a step's settings object, made of the config schema's own rules: every field
    of the dataclass ``cls`` is the property of the same name of the schema object at ``block``
    (a ``$ref`` such as ``#/$defs/train``), or the schema ``extra`` gives it (what the step adds:
    a run's seed, beta, ...).  Fields without a default are required; unknown keys are errors."""
    from dataclasses import MISSING, fields

    extra = extra or {}
    props = {f.name: extra.get(f.name, {"$ref": f"{block}/properties/{f.name}"}) for f in fields(cls)}
    required = [f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING]
    return {"type": "object", "additionalProperties": False, "required": required, "properties": props}


def validate_settings(settings, sub_schema: dict, what: str, defs: dict | None = None) -> None:
    """Check one step's ``--settings`` (parsed JSON) against ``sub_schema`` (a schema whose ``$ref``s
    point into the config schema's ``$defs``), and for non-finite numbers: the same two checks as
    the config, so a value the config refuses is refused here too.  Raises ConfigError listing
    every problem as ``<what>.key: what is wrong``."""
    import jsonschema

    defs = schema()["$defs"] if defs is None else defs
    problems = non_finite(settings, (what,))
    if not problems:
        problems = schema_problems(jsonschema.Draft202012Validator({**sub_schema, "$defs": defs}), settings, [what],
                                   yaml_hints=False)      # JSON, not YAML: no 1e-3 hint
    if problems:
        raise ConfigError("; ".join(problems))


def validate_config(config: dict, schema_path=SCHEMA, studies=()) -> dict:
    """Check ``config``: its top level, then every experiment merged onto paper, against the JSON
    schema, the cross-key rules of the data and of each of ``studies`` (``<study>.study`` modules;
    ``infomax.studies.validate_config`` passes them all); return it unchanged.  When paper itself is incomplete only
    paper's problems are listed (every other experiment inherits them).

    Raises ConfigError listing every problem as ``key.path: what is wrong``.
    """
    import jsonschema

    schema = yaml.safe_load(Path(schema_path).read_text())
    top = jsonschema.Draft202012Validator(schema)
    one = jsonschema.Draft202012Validator({"$ref": "#/$defs/experiment", "$defs": schema["$defs"]})
    problems = non_finite(config)       # first: a NaN passes every bound, and the cross-checks compute with it
    problems = problems or schema_problems(top, config, [])
    if not problems:
        if config["experiment"] not in config["experiments"]:
            problems.append(f"experiment: {config['experiment']!r} is not a defined experiment (expected one of: "
                            f"{', '.join(sorted(config['experiments']))})")
        names = [BASE] + sorted(n for n in config["experiments"] if n != BASE)
        for name in names:
            prefix = ["experiments", name]
            exp = experiment(config, name)
            found = schema_problems(one, exp, prefix)
            found = found or _cross_checks(exp, ".".join(prefix), schema["$defs"], studies)
            if found and name != BASE:
                found = [f"{p} (merged onto paper)" for p in found]
            problems += found
            if found and name == BASE:
                break
    if problems:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems))
    return config


def split_sizes(ds_name: str, ds: dict) -> dict | None:
    """{split: the fewest images it can hold} of a data block, as infomax.data cuts it (None when
    the block is inconsistent: another check names why).  Embedded: each class of n/classes images
    is cut by the fractions, every split getting the floor or the ceiling of its share (the floor
    is what is sure); wheel and torchvision: train_size (or the official train split, in the
    table infomax.datasets, minus val_size), and val_size."""
    if ds_name not in DATASETS:
        return None
    if ds["source"] != "embedded":
        n = DATASETS[ds_name].train
        return {"train": ds["train_size"] or n - ds["val_size"], "val": ds["val_size"]}
    n, classes = EMBEDDED_IMAGES if ds["n_images"] is None else ds["n_images"], DATASETS[ds_name].classes
    if n % classes or ds["test_fraction"] + ds["val_fraction"] >= 1:
        return None
    per_class = n // classes
    fr = {"train": 1.0 - ds["test_fraction"] - ds["val_fraction"], "val": ds["val_fraction"],
          "test": ds["test_fraction"]}
    return {k: classes * int(per_class * f + 1e-9) for k, f in fr.items()}


def _size_checks(exp: dict, at: str) -> tuple[list[str], dict]:
    """Bounds on the data blocks' sizes, and {data set: its split sizes} for the studies' own bounds."""
    problems = []
    sizes = {}
    for ds_name, ds in exp["data"].items():
        where = f"{at}.data.{ds_name}"
        classes = DATASETS[ds_name].classes
        if ds["source"] != "embedded":
            n = DATASETS[ds_name].train
            if not ds["val_size"] < n:
                problems.append(f"{where}.val_size: {ds['val_size']} leaves no train images "
                                f"({ds_name} has {n} train images; expected < {n})")
                continue
            if ds["train_size"] is not None and ds["train_size"] > n - ds["val_size"]:
                problems.append(f"{where}.train_size: {ds['train_size']} is more than the {n - ds['val_size']} train "
                                f"images left after val_size {ds['val_size']} (null: all of them)")
                continue
        elif ds["n_images"] is not None and ds["n_images"] % classes:
            problems.append(f"{where}.n_images: {ds['n_images']} is not a multiple of {classes} "
                            f"(the subset is stratified: the same count per class)")
            continue
        s = split_sizes(ds_name, ds)
        if s is None:
            continue
        sizes[ds_name] = s
        if ds["source"] == "embedded":
            thin = [k for k, v in s.items() if v < classes]
            if thin:
                n = EMBEDDED_IMAGES if ds["n_images"] is None else ds["n_images"]
                problems.append(f"{where}.n_images: {n} images ({n // classes} per class) leave some class without "
                                f"an image in the {', '.join(thin)} split(s) (stratified split; raise n_images or the "
                                f"fractions)")
    return problems, sizes


def _cross_checks(exp: dict, at: str, defs: dict, studies=()) -> list[str]:
    """Rules one key's schema cannot say: data sources and split sizes, then each study's own
    (its options, its settings against the split sizes)."""
    problems = []
    studies = [s for s in studies if s.NAME in exp["studies"]]  # a study that does not run is not checked
    for ds_name, ds in exp["data"].items():
        if ds["source"] not in DATASETS[ds_name].sources:     # the table says which sources a data set has
            only = " and ".join(d.title for d in offering(ds["source"])) or "no data set's"
            problems.append(f"{at}.data.{ds_name}.source: {ds['source']!r} is {only} only (use "
                            f"{' or '.join(DATASETS[ds_name].sources)})")
        official = ["n_images", "test_fraction", "val_fraction"]
        wrong = {"embedded": ["val_size", "train_size"], "torchvision": official, "wheel": official}
        for key in wrong[ds["source"]]:
            if key in ds:
                problems.append(f"{at}.data.{ds_name}.{key}: not used when source is {ds['source']!r}")
        if ds["source"] == "embedded" and ds["test_fraction"] + ds["val_fraction"] >= 1:
            problems.append(f"{at}.data.{ds_name}: test_fraction + val_fraction must be < 1")
    for study in studies:
        problems += study.checks(exp, at, defs)
    if not problems:
        found, sizes = _size_checks(exp, at)
        problems += found
        for study in studies:
            problems += study.size_checks(exp, at, sizes)
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


def load(path=ROOT / "config" / "config.yaml", experiment_name=None, studies=()) -> dict:
    """config/config.yaml with ``experiment`` from params.yaml next to it (or ``experiment_name``),
    validated (with ``studies``' checks: ``infomax.studies.load``): what the Snakefile sees, for
    tools outside the workflow (bench, tests)."""
    path = Path(path)
    config = read_yaml(path)
    params = path.parent.parent / "params.yaml"
    config["experiment"] = experiment_name or read_yaml(params)["experiment"]
    return validate_config(config, SCHEMA, studies)


def beta_tag(beta: float) -> str:
    """Compact, file-name-safe and exact: the shortest digits that read back as ``beta`` (Python's
    float repr), as mantissa and exponent: 0.001 -> '1e-3', 2.5e-4 -> '2.5e-4', 1 -> '1e0',
    1.0000001e-3 -> '1.0000001e-3'.  Distinct betas get distinct tags (a beta of up to 7
    significant digits keeps the tag an earlier, 7-digit version gave it)."""
    from decimal import Decimal

    beta = float(beta)
    if beta == 0:
        return "0"
    sign, digits, exponent = Decimal(repr(beta)).normalize().as_tuple()
    mantissa = str(digits[0]) + ("." + "".join(map(str, digits[1:])) if len(digits) > 1 else "")
    return f"{'-' if sign else ''}{mantissa}e{exponent + len(digits) - 1}"


def data_used(exp: dict, dataset: str, fixed_parts: dict | None = None, reduced: list[str] = ()) -> str:
    """'full' for a whole official data set, else a description of the part that was used
    (``fixed_parts``: {what: (images, split)} evaluated on a fixed stratified part of a split only,
    such as {"noise and FGSM": (2000, "test")}; None images: the whole split; ``reduced``: what
    else this experiment evaluates less of than ``paper``, ``reduced``)."""
    ds = exp["data"][dataset]
    if ds["source"] == "embedded":
        return "; ".join(["the embedded 5,000-image MNIST subset", *reduced])
    parts = []
    n = DATASETS[dataset].train
    if ds["train_size"] is not None:
        parts.append(f"a {ds['train_size']:,}-image training subset (validation {ds['val_size']:,} images, "
                     f"the official test set)")
    elif ds["val_size"]:             # the official split trains on all its train images; these hold some out
        parts.append(f"{n - ds['val_size']:,} of the {n:,} official training images ({ds['val_size']:,} held out "
                     f"for validation)" if n else f"the official training images less {ds['val_size']:,} for validation")
    parts += [f"{what} on a fixed stratified {n:,} of the {split} images"
              for what, (n, split) in (fixed_parts or {}).items() if n is not None]
    parts += list(reduced)
    return "; ".join(parts) or "full"


def _levels(values) -> str:
    return ", ".join(f"{v:g}" for v in values if v != 0)


def reduced_levels(ev: dict, full: dict, names: dict) -> list[str]:
    """'<name> at <levels> only (paper: <levels>)' for each key of ``names`` ({evaluate key: its
    name in words}) whose level list in the evaluate block ``ev`` is a strict subset of ``full``'s
    (the ``paper`` experiment's): what an experiment evaluates less of, in the report's words."""
    return [f"{name} at {_levels(ev[key])} only (paper: {_levels(full[key])})"
            for key, name in names.items() if key in ev and set(ev[key]) < set(full[key])]
