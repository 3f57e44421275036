"""What every study's steps share: their settings (one JSON object each), torch threads, speed
switches, loading the models of a group evaluation, the finiteness checks before a result is
written, and the arguments every train / evaluate step takes.  The base ``cli`` and each study's
``cli`` import this module; it imports neither.
"""

import json
from dataclasses import fields
from pathlib import Path


# The settings of the prepare step and the --data-settings of train / evaluate steps: a data block.
DATA_SETTINGS = {"$ref": "#/$defs/dataset"}


def settings_of(text: str, cls=None, what="settings", schema: dict | None = None, flag="--settings"):
    """The JSON of --settings.  With ``schema`` (``config.settings_schema``: the config schema's
    rules for the keys it holds), it is validated as the config is, so a wrong type, a missing key,
    an out-of-range or a non-finite value is one ConfigError naming the key; with only ``cls``, its
    keys must be fields of the dataclass."""
    try:
        s = json.loads(text)
    except json.JSONDecodeError as e:
        raise SystemExit(f"{flag} is not valid JSON ({e}): {text[:200]}")
    if schema is not None:
        from .config import validate_settings

        validate_settings(s, schema, flag)
    elif cls is not None:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(s) - known)
        if unknown:
            raise SystemExit(f"{what}: unknown key(s) {unknown}; expected some of {sorted(known)}")
    return s


def data_settings(a) -> dict | None:
    """The --data-settings of a train / evaluate step (None when not given)."""
    if getattr(a, "data_settings", None) is None:
        return None
    return settings_of(a.data_settings, schema=DATA_SETTINGS, flag="--data-settings")


def threads(n: int | None):
    import torch

    if n:
        torch.set_num_threads(n)   # the rule's `threads:`: several jobs never oversubscribe the cores


def speed_of(a):
    """The train steps' --tf32 and --compile flags as a loop.Speed."""
    from .loop import Speed

    return Speed(tf32={"auto": None, "on": True, "off": False}[a.tf32], compile=a.compile)


def evaluate_each(a, paths, cfg_cls, load_model, what: str, schema: dict | None = None):
    """The models of a group evaluation, one process for all of them (data and torch loaded once):
    yields (path, model, checkpoint summary, settings, device, data, out_dir) per model.  Each
    model's settings are the step's --settings (checked against ``schema``, the config's evaluate
    block) with the seed it trained with.  Each model must have been trained on the bytes of
    --data, and --data made from --data-settings."""
    from .data import load_prepared
    from .loop import file_digest, resolve_device

    threads(a.threads)
    block = settings_of(a.settings, what=what, schema=schema)
    device = resolve_device(a.device)
    data = load_prepared(a.data, device, data_settings(a))
    digest = file_digest(a.data)            # each model must have been trained on these very bytes
    out_dir = Path(a.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for path in map(Path, paths):
        model, info = load_model(path, device, data=(a.data, digest))
        check_weights(model, path)
        cfg = cfg_cls(**settings_of(json.dumps({**block, "seed": info["config"]["seed"]}), cfg_cls, what))
        yield path, model, info, cfg, device, data, out_dir


def check_weights(model, path) -> None:
    """Every weight of ``model`` is finite: a broken model must not become a 90%-error row."""
    for name, t in model.state_dict().items():
        if t.is_floating_point() and not bool(t.isfinite().all()):
            raise ValueError(f"model {path}: {name} holds NaN or infinite values; the model is broken "
                             "(delete it and rerun its training job)")


def require_finite(values: dict, model, allowed=()) -> None:
    """Every metric of ``values`` ({name: number}) is finite, except the ``allowed`` names (NaN by
    design, such as the deterministic model's rate); else an error naming the model and metric."""
    import math

    bad = [k for k, v in values.items() if k not in allowed and not (v is not None and math.isfinite(float(v)))]
    if bad:
        raise ValueError(f"model {model}: metric(s) {', '.join(bad)} are NaN or infinite "
                         f"({', '.join(f'{k}={values[k]}' for k in bad)}); the evaluation was not written")


def add_job_args(sp, fn, training: bool, out: str = "--out"):
    """The arguments every train / evaluate step of a study takes (``training``: a train step, with
    its progress and speed flags; ``out``: the output's flag)."""
    sp.set_defaults(fn=fn)
    sp.add_argument("--data", required=True, help="prepared data file")
    sp.add_argument("--settings", required=True, help="JSON settings of this step")
    sp.add_argument("--data-settings", help="JSON: the config's data block the prepared file must have been made "
                    "from (the rules pass it; unset: not checked)")
    sp.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    sp.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    sp.add_argument(out, required=True)
    if training:
        sp.add_argument("--no-progress", action="store_true")
        sp.add_argument("--tf32", default="auto", choices=["auto", "on", "off"],
                        help="TF32 matmuls and convolutions (auto: on for CUDA, off on the CPU)")
        sp.add_argument("--compile", action="store_true", help="torch.compile the forward pass and loss")
    return sp


def add_collect(steps, fn, tables: str):
    """A study's `collect` step: evaluation JSONs -> its collected tables in --out-dir."""
    sp = steps.add_parser("collect", help=f"gather evaluations into {tables}")
    sp.set_defaults(fn=fn)
    sp.add_argument("--out-dir", required=True)
    sp.add_argument("evals", nargs="+")
    return sp
