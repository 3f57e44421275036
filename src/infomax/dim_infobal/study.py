"""Study B (dim_infobal) as the base sees it: the interface of ``infomax.vib_vim.study`` (see
there), so the config checks, the report, the summary and the ``infomax`` command loop over the
studies.  Torch-free at import."""

from ..attacks import ATTACKS
from ..config import data_used, reduced_levels, schema_problems
from .runs import NOISE_ATTACK, method_specs

NAME = "dim_infobal"
TITLE = "Study B (dim_infobal)"
TABLES = ("curves", "probes", "robustness")
# figure files figures/<study>_<function of figures.py>.png / .pdf (tests/dim_infobal/test_figures.py checks the pairing)
FIGURES = tuple(f"{NAME}_{f}" for f in ("curves", "probes", "robustness"))


def overrides(config: dict) -> dict:
    return {}


def checks(exp: dict, at: str, defs: dict) -> list[str]:
    """The probed layers, the data set, and each method's kind and options."""
    import jsonschema

    problems = []
    ib = exp[NAME]
    # each kind's option schema: the schema's dim_infobal.kinds.<kind> $ref (a kind added later may have none)
    kind_schemas = defs[NAME]["properties"]["kinds"]["properties"]
    if "y" not in ib["evaluate"]["layers"]:
        problems.append(f"{at}.dim_infobal.evaluate.layers: {ib['evaluate']['layers']} lacks y (every claim of study B "
                        "reads the probes on Y / R)")
    if ib["dataset"] not in exp["data"]:
        problems.append(f"{at}.dim_infobal.dataset: {ib['dataset']!r} has no data.{ib['dataset']} block")
    for name, m in ib["methods"].items():
        kind = m["kind"]
        if kind not in ib["kinds"]:
            problems.append(f"{at}.dim_infobal.methods.{name}.kind: {kind!r} is not a kind of dim_infobal.kinds "
                            f"(expected one of: {', '.join(ib['kinds'])})")
            continue
        opts = ib["kinds"][kind]
        for key in sorted(set(m) - {"kind", "estimators"} - set(opts)):
            problems.append(f"{at}.dim_infobal.methods.{name}.{key}: not an option of kind {kind!r} "
                            f"(its options: {', '.join(opts)})")
        spec = {**opts, **{k: v for k, v in m.items() if k in opts}}
        if "$ref" in kind_schemas.get(kind, {}):
            validator = jsonschema.Draft202012Validator({"$ref": kind_schemas[kind]["$ref"], "$defs": defs})
            problems += schema_problems(validator, spec, [*at.split("."), "dim_infobal", "methods", name])
        if kind == "infobal":
            views = spec["views"]
            for key, n in (("view_weights", views), ("pair_weights", views * (views - 1) // 2)):
                if spec[key] is not None and len(spec[key]) != n:
                    problems.append(f"{at}.dim_infobal.methods.{name}.{key}: has {len(spec[key])} entries, "
                                    f"expected {n} for {views} views")
    return problems


def size_checks(exp: dict, at: str, sizes: dict) -> list[str]:
    """Batch sizes and probe images against the study's data set's splits."""
    ib = exp[NAME]
    if ib["dataset"] not in sizes:
        return []
    problems = []
    s, t = sizes[ib["dataset"]], ib["train"]
    if t["batch_size"] > s["train"]:
        problems.append(f"{at}.dim_infobal.train.batch_size: {t['batch_size']} is larger than the "
                        f"{ib['dataset']} train split ({s['train']} images): no full batch to train on")
    if t["curve_probe_images"] > s["train"]:
        problems.append(f"{at}.dim_infobal.train.curve_probe_images: {t['curve_probe_images']} is more than the "
                        f"{ib['dataset']} train split ({s['train']} images)")
    if s["val"] < 2:
        key = "val_fraction" if exp["data"][ib["dataset"]]["source"] == "embedded" else "val_size"
        problems.append(f"{at}.data.{ib['dataset']}.{key}: the val split ({s['val']} images) needs >= 2: study B "
                        f"(dim_infobal) draws its per-epoch curves on validation")
    if ib["evaluate"]["batch_size"] > s["train"]:
        problems.append(f"{at}.dim_infobal.evaluate.batch_size: {ib['evaluate']['batch_size']} is larger than the "
                        f"{ib['dataset']} train split ({s['train']} images) the probes train on")
    return problems


def facts(exp: dict, paper: dict) -> dict:
    ib = exp[NAME]
    return {"dataset": ib["dataset"],
            "data": data_used(exp, ib["dataset"], {"probes and noise": (ib["evaluate"]["test_images"], "test"),
                                                   "curves": (ib["train"]["curve_val_images"], "validation")},
                              reduced(exp, paper)),
            "epochs": ib["train"]["epochs"], "precision": ib["train"]["precision"],
            **{k: ib["train"][k] for k in ("local_units", "global_hidden")}}


def reduced(exp: dict, paper: dict) -> list[str]:
    """What ``exp`` evaluates less of than ``paper``, in the report's words: noise levels, probed layers."""
    ev, full = exp[NAME]["evaluate"], paper[NAME]["evaluate"]
    out = reduced_levels(ev, full, {NOISE_ATTACK: ATTACKS[NOISE_ATTACK].words})
    if set(ev["layers"]) < set(full["layers"]):
        out.append(f"probes on layer(s) {', '.join(ev['layers'])} only (paper: {', '.join(full['layers'])})")
    return out


def options(exp: dict) -> dict:
    """Each method's kind and options, the kinds, and what the probes are (from the evaluate
    block): the claims and figures read them."""
    ev = exp[NAME]["evaluate"]
    return {"methods": method_specs(exp), "kinds": exp[NAME]["kinds"],
            "probes": {k: ev[k] for k in ("linear_epochs", "mlp_epochs", "mlp_hidden", "mlp_dropout")}}


def claims_module():
    from . import claims
    return claims


def summarize(tables: dict, plots_dir) -> dict:
    from .summary import summarize
    return summarize(tables["probes"])


def plot_tables(exp: dict) -> list[str]:
    return []


def bench_module():
    from . import bench
    return bench


def register(sub):
    from .cli import register
    register(sub)
