"""What ``infomax bench`` times of study B (``infomax.tools.bench`` loops over the studies'
``bench_module``): a training job's step, fed as ``dim_infobal.train.train`` feeds it (any kind:
DIM or InfoBal), its training jobs and its headline step (DIM(L) with JSD)."""

import torch
from ..data import pad_to
from ..datasets import DATASETS
from ..loop import device_batches, maybe_compile
from . import runs
from . import train

STEPS = {"cpu": 1, "cuda": 20}       # steps per timed window (a paper-sized DIM(L) step takes seconds on a CPU)
TrainConfig = train.TrainConfig


class Step:
    """A training job's step as ``dim_infobal.train.train`` runs it, one per call (lambda fixed at
    its final value: a Python float, it does not change the cost)."""

    def __init__(self, cfg: TrainConfig, x, device, used: dict):
        self.cfg, self.x = cfg, x.to(device)
        self.precision, self.models, self.samples = cfg.precision, 1, cfg.batch_size
        self.net, self.opt, self.opt_adv = train.build(cfg, x.shape[1], device)
        self.net.train()
        self.params = [p for o in (self.opt, self.opt_adv) if o is not None for g in o.param_groups for p in g["params"]]
        self.ema_params = []
        self.forward = maybe_compile(train.forward, used, device)
        self.gen = torch.Generator(device=device).manual_seed(cfg.seed)
        self.batches = device_batches(len(x), cfg.batch_size, device, self.gen)
        self.sums = torch.zeros(4, device=device)

    def __call__(self, eager=False):
        x = self.x[next(self.batches)]
        self.sums += train.step(self.net, self.opt, self.opt_adv, self.cfg, x, self.cfg.lam, self.gen,
                                train.forward if eager else self.forward)


def dataset(exp: dict) -> str:
    return exp["dim_infobal"]["dataset"]


def jobs(exp: dict) -> list[dict]:
    """Every training job: one per run, the untrained floor included (no steps)."""
    out = []
    for method, est, seed in runs.runs(exp):
        cfg = TrainConfig(**runs.train_settings(exp, method, est, seed))
        out.append({"name": runs.run_name(method, est, seed), "group": method, "configs": [cfg], "models": 1,
                    "epochs": 0 if cfg.kind == "random" else cfg.epochs})
    return out


def headline(exp: dict) -> list[dict]:
    """DIM(L) with JSD at the experiment's sizes and precision."""
    ib = exp["dim_infobal"]
    cfg = TrainConfig(**{**ib["train"], **ib["kinds"]["dim_l"], "method": "dim_l", "kind": "dim_l",
                         "estimator": "jsd", "seed": 0})
    return [{"label": "dim_l jsd", "group": "dim_l", "configs": [cfg], "what": "dim_l jsd"}]


def images(exp: dict, x, y):
    """The bench's MNIST digits (N, 1, 28, 28) shaped as the study's data set (its channels and
    image size in infomax.datasets): a black border, grey on every channel (CIFAR-10: (N, 3, 32, 32));
    speed does not depend on pixel values."""
    ds = DATASETS[dataset(exp)]
    return pad_to(x, ds.size, 0).repeat(1, ds.channels // x.shape[1], 1, 1), y


def step(cfgs: list, x, y, device, used: dict) -> Step:
    return Step(cfgs[0], x, device, used)
