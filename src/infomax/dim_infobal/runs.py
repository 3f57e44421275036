"""Study B's run lists: which models an experiment trains, their file names, each method's
options and each job's settings.  Plain Python on the merged experiment (no torch)."""

from ..config import ConfigError

# The untrained, randomly initialised encoder every method is judged against: method "random",
# estimator "none", kind "random".  Added to every experiment; not a name a config may define.
RANDOM = ("random", "none")
# The one attack of infomax.attacks study B evaluates (its evaluate block's levels for it).
NOISE_ATTACK = "gaussian"


def run_name(method: str, estimator: str, seed: int) -> str:
    return f"{method}_{estimator}_s{seed}"


def runs(exp: dict) -> list[tuple[str, str, int]]:
    """(method, estimator, seed) of every model, the untrained `random` floor included."""
    ib = exp["dim_infobal"]
    seeds = [int(s) for s in ib["seeds"]]
    out = [(name, est, s) for name, m in ib["methods"].items() for est in m["estimators"] for s in seeds]
    return out + [(*RANDOM, s) for s in seeds]


def method_specs(exp: dict) -> dict:
    """{method: its kind and every option of that kind}: dim_infobal.kinds.<kind>, with the
    method's own overrides merged on."""
    ib = exp["dim_infobal"]
    return {name: {"kind": m["kind"], **ib["kinds"][m["kind"]],
                   **{k: v for k, v in m.items() if k not in ("kind", "estimators")}}
            for name, m in ib["methods"].items()}


def train_settings(exp: dict, method: str, estimator: str, seed: int) -> dict:
    """The settings of one training job: the train block, the method's options, then what
    identifies the run."""
    ib = exp["dim_infobal"]
    if (method, estimator) == RANDOM:
        opts = {"kind": "random"}
    elif method not in ib["methods"]:
        raise ConfigError(f"dim_infobal method {method!r} is not defined (expected one of {', '.join(ib['methods'])})")
    else:
        opts = method_specs(exp)[method]
    return {**ib["train"], **opts, "method": method, "estimator": estimator, "seed": int(seed)}
