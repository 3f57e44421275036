"""Stacked training: a group of study-A models trained as one model.

Every weight gets a leading model dimension (M models), the layers become batched matmuls, and one
fused Adam and one EMA update all of them at once.  A group holds models of one objective and K
that differ in beta and seed only.  Each model is the model its solo run (``train.train``) gives:

- the same initial weights: model m is built exactly as the solo job builds it (seeded with its
  seed) and copied in;
- the same data order: one generator per distinct seed, seeded as the solo job's;
- the same noise: one generator per model, started from the global RNG state the solo job has
  after building its model, drawing the same shapes in the same order;
- the same updates: Adam and the EMA are elementwise, and each model's loss is its own term of the
  summed loss, so gradients never mix.

Only float rounding differs (a batched matmul may sum in another order); tests/test_stack.py
holds the tolerances.  Each model still gets its own checkpoint, in the solo format.
"""

import math
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ..data import flatten, load_prepared, to_signed
from ..estimators import gaussian_kl_to_standard, mmd2
from ..files import save_torch
from ..files import remove_orphans
from ..loop import (EMA, DivergenceGuard, Speed, apply_speed, autocast, finish, load_resume, resolve_device, resume_config,
                    resume_key)
from .model import StochasticMLP
from .train import CHANCE_CE, LOSS_SCALE, LOSS_SLACK, MODEL_FORMAT, TrainConfig

GROUP_FORMAT = "infomax-vib_vim-group-resume-v1"


class StackedMLP(nn.Module):
    """M StochasticMLPs as one module.  Layer weights are stored as (M, in, out) (the transpose of
    nn.Linear's), biases as (M, out); ``from_models`` copies solo models in, ``solo_state(m)``
    gives model m's state_dict in the solo layout."""

    NAMES = ("encoder.0", "encoder.2", "encoder.4", "decoder")

    def __init__(self, M: int, in_dim: int, hidden: int, K: int, classes: int):
        super().__init__()
        self.M, self.K = M, K
        sizes = [(in_dim, hidden), (hidden, hidden), (hidden, 2 * K), (K, classes)]
        self.weights = nn.ParameterList([nn.Parameter(torch.empty(M, i, o)) for i, o in sizes])
        self.biases = nn.ParameterList([nn.Parameter(torch.empty(M, o)) for _, o in sizes])

    @classmethod
    def from_models(cls, models: list[StochasticMLP]) -> "StackedMLP":
        first = models[0]
        lin = [first.encoder[0], first.encoder[2], first.encoder[4], first.decoder]
        out = cls(len(models), lin[0].in_features, lin[0].out_features, first.K, lin[3].out_features)
        with torch.no_grad():
            for m, model in enumerate(models):
                layers = [model.encoder[0], model.encoder[2], model.encoder[4], model.decoder]
                for W, b, layer in zip(out.weights, out.biases, layers):
                    W[m].copy_(layer.weight.T)
                    b[m].copy_(layer.bias)
        return out

    def solo_state(self, m: int, weights=None) -> dict:
        """Model m's state_dict as a StochasticMLP has it; ``weights``: tensors in the order of
        ``parameters()`` (e.g. the EMA average) instead of the live weights."""
        params = list(self.parameters()) if weights is None else list(weights)
        n = len(self.weights)
        Ws, bs = params[:n], params[n:]
        state = {}
        for name, W, b in zip(self.NAMES, Ws, bs):
            state[f"{name}.weight"] = W[m].detach().T.contiguous()
            state[f"{name}.bias"] = b[m].detach().clone()
        return state

    def _linear(self, x, i):
        """x (B, in) shared by every model, or (M, B, in) -> (M, B, out)."""
        W, b = self.weights[i], self.biases[i]
        h = torch.matmul(x, W) if x.dim() == 2 else torch.bmm(x, W)
        return h + b.unsqueeze(1)

    def encode(self, x):
        """x (B, in) or (M, B, in) in [-1, 1] -> mu, sigma (M, B, K)."""
        h = F.relu(self._linear(x, 0))
        h = F.relu(self._linear(h, 1))
        h = self._linear(h, 2)
        return h[..., : self.K], F.softplus(h[..., self.K:] - 5.0)

    def decode(self, z):
        """z (M, B, K) -> logits (M, B, classes)."""
        return self._linear(z, 3)


def _check_group(cfgs: list[TrainConfig]):
    if not cfgs:
        raise ValueError("a training group needs at least one model")
    ref = replace(cfgs[0], beta=0.0, seed=0)
    for c in cfgs[1:]:
        if replace(c, beta=0.0, seed=0) != ref:
            diff = sorted(k for k, v in asdict(c).items() if k not in ("beta", "seed") and asdict(cfgs[0])[k] != v)
            raise ValueError(f"models of one training group may differ in beta and seed only; "
                             f"{c.objective} beta={c.beta} seed={c.seed} differs in {', '.join(diff)}")
    keys = [(c.beta, c.seed) for c in cfgs]
    if len(set(keys)) != len(keys):
        raise ValueError(f"a training group lists a model twice: {keys}")


def build_group(cfgs: list[TrainConfig], in_dim: int, device):
    """The stacked model, its optimiser and EMA, and each model's noise generator, every model
    initialised as its solo job initialises it (``train.build``)."""
    _check_group(cfgs)
    models, noise = [], []
    for c in cfgs:
        torch.manual_seed(c.seed)
        models.append(StochasticMLP(in_dim=in_dim, K=c.K, classes=10))
        g = torch.Generator(device=device)
        # The solo job draws its noise from the global RNG after building its model (CPU), or
        # from the CUDA generator that manual_seed seeded (CUDA; building ran on the CPU).
        g.set_state(torch.get_rng_state()) if device.type == "cpu" else g.manual_seed(c.seed)
        noise.append(g)
    stack = StackedMLP.from_models(models).to(device)
    params = list(stack.parameters())
    c = cfgs[0]
    opt = torch.optim.Adam(params, lr=c.lr, betas=c.adam_betas, fused=device.type in ("cpu", "cuda"))
    return stack, opt, EMA(params, c.ema_decay), noise


def group_loss(stack: StackedMLP, cfg0: TrainConfig, betas: torch.Tensor, x, y, noise):
    """Per-model (total, ce, regulariser, training accuracy), each (M,), for one batch.  x: uint8 images (B, ...) shared
    by every model or (M, B, ...) per model; y: (B,) or (M, B).  ``noise``: the models' generators."""
    M = stack.M
    xs = to_signed(flatten(x) if x.dim() in (2, 4) else x.flatten(2))
    mu, sigma = stack.encode(xs)
    B = mu.shape[1]
    yy = y.expand(M, B) if y.dim() == 1 else y
    if cfg0.objective == "deterministic":
        logits = stack.decode(mu)
    else:
        eps = torch.stack([torch.randn((1, B, stack.K), device=mu.device, generator=g)[0] for g in noise])
        z = mu + sigma * eps
        logits = stack.decode(z)
    ce = F.cross_entropy(logits.reshape(M * B, -1), yy.reshape(-1), reduction="none").view(M, B).mean(1)
    if cfg0.objective == "deterministic":
        reg = torch.zeros_like(ce)
    elif cfg0.objective == "vib":
        reg = gaussian_kl_to_standard(mu, sigma).mean(1)
    elif cfg0.objective == "vim":
        prior = torch.stack([torch.randn((B, stack.K), device=mu.device, generator=g) for g in noise])
        reg = mmd2(z, prior, cfg0.mmd_kernel, cfg0.mmd_scales)
    else:
        raise ValueError(f"unknown objective {cfg0.objective!r}")
    acc = (logits.detach().argmax(-1) == yy).float().mean(1)
    return ce + betas * reg, ce, reg, acc


def group_step(stack, opt, ema, cfg0, betas, x, y, noise) -> torch.Tensor:
    """One step of every model; returns (4, M): total, ce, regulariser, accuracy, detached (no host sync).
    The forward runs in the group's precision, as the solo step's (``train.step``)."""
    with autocast(x.device, cfg0.precision):
        total, ce, reg, acc = group_loss(stack, cfg0, betas, x, y, noise)
    opt.zero_grad(set_to_none=True)
    total.sum().backward()               # model m's weights only see model m's term
    opt.step()
    ema.update()
    return torch.stack([total.detach(), ce.detach(), reg.detach(), acc])


def guard_group_step(guard: DivergenceGuard, terms: torch.Tensor):
    """train.guard_step for every model of the group at once: finite terms, and no model's loss far
    beyond its own first step's (on the device)."""
    guard.set_reference("loss", terms[0].abs())
    guard.check_finite("finite", terms[:3], "a model's loss is not finite")
    over = terms[0].abs() - (LOSS_SCALE * guard.reference["loss"] + LOSS_SLACK)
    guard.check("scale", terms[0].max(), (over > 0).any(),
                f"a model's loss went beyond its initial scale (over {LOSS_SCALE:g} x its first step's + {LOSS_SLACK:g})")
    guard.tick()


def train_group(cfgs: list[TrainConfig], data_path, out_paths, resume_file, device="auto", progress=True,
                speed: Speed | None = None) -> list[dict]:
    """Train the models ``cfgs`` as one stacked model; write model m's checkpoint (EMA weights, the
    solo format) to ``out_paths[m]``.  The group's resume state is ``resume_file``."""
    out_paths = [Path(p) for p in out_paths]
    if len(out_paths) != len(cfgs):
        raise ValueError(f"{len(cfgs)} models but {len(out_paths)} output paths")
    device = resolve_device(device) if isinstance(device, str) else device
    data = load_prepared(data_path, device)
    x_all, y_all = data.splits["train"]
    n = x_all.shape[0]
    c0 = cfgs[0]
    steps_per_epoch = n // c0.batch_size
    if steps_per_epoch == 0:
        raise ValueError(f"batch_size {c0.batch_size} is larger than the train split ({n} images) of {data_path}")
    used = apply_speed(speed, device)
    if used["compile"]:
        raise ValueError("torch.compile is not supported for stacked training (train the group without --compile)")
    stack, opt, ema, noise = build_group(cfgs, x_all[0].numel(), device)
    M = len(cfgs)
    betas = torch.tensor([float(c.beta) for c in cfgs], device=device)
    seeds = sorted({c.seed for c in cfgs})
    order = {s: torch.Generator(device=device).manual_seed(s) for s in seeds}     # data order per seed
    which = torch.tensor([seeds.index(c.seed) for c in cfgs], device=device)
    histories, start_epoch, seconds_before = [[] for _ in cfgs], 0, 0.0

    resume_file = Path(resume_file)
    remove_orphans(resume_file)                    # temps of a killed earlier attempt
    key = resume_key([resume_config(c) for c in cfgs], data_path, GROUP_FORMAT)   # the data hashed once
    guard = DivergenceGuard(resume_file.stem, device)
    state = load_resume(resume_file, key, device)
    if state is not None:
        stack.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        ema.load_state_dict(state["ema"])
        for g, s in zip(noise, state["noise"]):
            g.set_state(s.cpu() if device.type == "cpu" else s)
        for s, st in zip(seeds, state["order"]):
            order[s].set_state(st.cpu() if device.type == "cpu" else st)
        histories, start_epoch, seconds_before = state["histories"], state["epoch"], state["seconds"]
        guard.load_state_dict(state["guard"])
        print(f"resuming group {resume_file.name} from epoch {start_epoch}", flush=True)

    def save_resume(epoch, seconds):
        save_torch({"key": key, "model": stack.state_dict(), "opt": opt.state_dict(), "ema": ema.state_dict(),
                    "noise": [g.get_state() for g in noise], "order": [order[s].get_state() for s in seeds],
                    "histories": histories, "epoch": epoch, "seconds": seconds, "guard": guard.state_dict()},
                   resume_file)

    stack.train()
    t0 = last_ckpt = time.perf_counter()
    sums = torch.zeros(4, M, device=device)
    summed = 0
    bar = tqdm(range(start_epoch, c0.epochs), desc=resume_file.stem, disable=not progress, mininterval=2.0,
               initial=start_epoch, total=c0.epochs)
    for epoch in bar:
        lr = c0.lr * c0.lr_decay ** (epoch // c0.lr_decay_epochs)
        for g in opt.param_groups:
            g["lr"] = lr
        perms = torch.stack([torch.randperm(n, device=device, generator=order[s]) for s in seeds])
        for i in range(steps_per_epoch):
            idx = perms[:, i * c0.batch_size:(i + 1) * c0.batch_size]                  # (seeds, B)
            if len(seeds) == 1:
                x, y = x_all[idx[0]], y_all[idx[0]]                                    # shared batch
            else:
                sel = idx[which]                                                       # (M, B)
                x, y = x_all[sel], y_all[sel]
            terms = group_step(stack, opt, ema, c0, betas, x, y, noise)
            guard_group_step(guard, terms)
            sums += terms
        summed += steps_per_epoch
        if (epoch + 1) % c0.log_every == 0 or epoch + 1 == c0.epochs:
            means = (sums / summed).T.tolist()                                         # the one host sync
            sums.zero_()
            summed = 0
            guard.raise_if_diverged(epoch + 1)
            for m, (total, ce_m, reg_m, acc_m) in enumerate(means):
                if histories[m] and acc_m <= 0.1 + 0.02 and ce_m > CHANCE_CE * math.log(10):   # train.guard_log
                    guard.fail(epoch + 1, f"model {out_paths[m].name}: training accuracy {acc_m:.3f} is at chance "
                                          f"level with cross-entropy {ce_m:.4g}, worse than a uniform guess's")
                histories[m].append({"epoch": epoch + 1, "lr": lr, "loss": total, "ce": ce_m, "reg": reg_m})
            bar.set_postfix(loss=f"{sum(t[0] for t in means) / M:.4f}")
        now = time.perf_counter()
        if now - last_ckpt > c0.checkpoint_seconds and epoch + 1 < c0.epochs:
            save_resume(epoch + 1, seconds_before + now - t0)
            last_ckpt = now
    seconds = finish(bar, device, seconds_before, t0)

    averaged = ema.averaged()
    summaries = []
    for m, (c, path) in enumerate(zip(cfgs, out_paths)):
        # train_seconds: the group's training time shared equally among its models
        summary = {"format": MODEL_FORMAT, "config": asdict(c), "train_seconds": seconds / M,
                   "history": histories[m], "data": str(data_path), "device": str(device),
                   "torch": torch.__version__, "speed": used, "group": {"size": M, "seconds": seconds}}
        state_dict = {k: v.cpu() for k, v in stack.solo_state(m, averaged).items()}
        save_torch({**summary, "state_dict": state_dict}, path)
        summaries.append(summary)
    resume_file.unlink(missing_ok=True)
    return summaries
