"""What ``infomax bench`` times of study A (``infomax.tools.bench`` loops over the studies'
``bench_module``): its training job's step, fed as ``vib_vim.train.train`` feeds it, its training
jobs (the stacked groups) and its headline steps."""

import torch

from ..loop import device_batches, maybe_compile
from . import runs
from . import train
from .runs import DATASET

STEPS = {"cpu": 20, "cuda": 100}     # steps per timed window
TrainConfig = train.TrainConfig


class Step:
    """A training job's step as ``vib_vim.train.train`` runs it, one per call: the group's stacked
    model, its per-seed data order (one shared batch when the group has one seed, a batch per
    model otherwise), losses summed on the device."""

    def __init__(self, cfgs: list, x, y, device, used: dict):
        self.cfgs, self.x, self.y = cfgs, x.to(device), y.to(device)
        self.precision, self.models, self.samples = cfgs[0].precision, len(cfgs), cfgs[0].batch_size * len(cfgs)
        self.stack, self.opt, self.ema, self.noise = train.build(cfgs, x[0].numel(), device)
        self.params = self.ema_params = list(self.stack.parameters())
        self.betas = torch.tensor([float(c.beta) for c in cfgs], device=device)
        seeds = sorted({c.seed for c in cfgs})
        self.which = torch.tensor([seeds.index(c.seed) for c in cfgs], device=device) if len(seeds) > 1 else None
        self.batches = [device_batches(len(x), cfgs[0].batch_size, device, torch.Generator(device=device).manual_seed(s))
                        for s in seeds]
        self.loss = maybe_compile(train.loss, used, device)
        self.sums = torch.zeros(4, len(cfgs), device=device)

    def __call__(self, eager=False):
        idx = [next(b) for b in self.batches]
        if self.which is None:
            x, y = self.x[idx[0]], self.y[idx[0]]
        else:
            sel = torch.stack(idx)[self.which]                       # (M, B)
            x, y = self.x[sel], self.y[sel]
        self.sums += train.step(self.stack, self.opt, self.ema, self.cfgs[0], self.betas, x, y, self.noise,
                                train.loss if eager else self.loss)


def dataset(exp: dict) -> str:
    return DATASET


def jobs(exp: dict) -> list[dict]:
    """Every training job: the groups (runs.groups: each one stacked model of up to
    vib_vim.group_size models), with the train configs the rules' settings make."""
    out = []
    for name, members in runs.groups(exp).items():
        cfgs = [TrainConfig(**d) for d in runs.group_train_settings(exp, name)]
        obj, K = members[0][0], members[0][3]
        out.append({"name": name, "group": f"{obj} K={K}", "configs": cfgs, "models": len(cfgs),
                    "epochs": cfgs[0].epochs})
    return out


def headline_group(exp: dict) -> str:
    """The timed group: the first ``vib`` group (a seed's beta grid at the main K), else the first."""
    names = list(runs.groups(exp))
    return next((n for n in names if n.startswith("vib_")), names[0])


def headline(exp: dict) -> list[dict]:
    """The headline steps: the first vib group (group_size models) and, when it has more than one,
    a group of one of its first model (the stacking gain is the ratio of the two)."""
    group = headline_group(exp)
    members = [TrainConfig(**d) for d in runs.group_train_settings(exp, group)]
    c = members[0]
    rows = [{"label": f"{c.objective} K={c.K} group of {len(members)}", "group": group, "configs": members,
             "what": f"group {group}, {len(members)} models"}]
    if len(members) > 1:
        rows.append({"label": f"{c.objective} K={c.K} group of 1", "group": group, "configs": members[:1],
                     "what": "a group of one"})
    return rows


def images(exp: dict, x, y):
    """The bench's digits as this study's jobs read them: (N, 1, 28, 28) MNIST as it is."""
    return x, y


def step(cfgs: list, x, y, device, used: dict) -> Step:
    return Step(cfgs, x, y, device, used)
