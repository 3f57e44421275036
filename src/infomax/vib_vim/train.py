"""Study A's trainer: a group of models (VIB / VIM / deterministic on Alemi et al.'s MLP) trained
as one stacked model; a single model is a group of one.

Every weight has a leading model dimension (M models, ``model.StackedMLP``), the layers are batched
matmuls, and one fused Adam and one EMA update all of them at once.  A group holds models of one
objective and K that differ in beta and seed only, and each model is the model a plain one-model
loop over ``model.StochasticMLP`` and ``objectives.vib_vim_loss`` gives (tests/vib_vim/test_train.py):

- the same initial weights: model m is built as a one-model job builds it (seeded with its seed);
- the same data order: one generator per distinct seed, seeded with it;
- the same noise: one generator per model, started from the global RNG state a one-model job has
  after building its model, drawing the same shapes in the same order;
- the same updates: Adam and the EMA are elementwise, and each model's loss is its own term of the
  summed loss, so gradients never mix.

Only float rounding differs (a batched matmul may sum in another order).  Each model gets its own
checkpoint, a StochasticMLP state_dict.  Why groups: a process spends ~3 s importing torch before
its first step, and on a GPU one small MLP per process leaves the device idle.

Speed by design: the train split lives on the device as uint8, a batch is an index slice,
normalisation happens on the device, and the loop never waits for the device (losses are summed on
the device and read once per logged epoch).  Resume, divergence guard, timer: ``infomax.loop.Session``.
``step`` is shared with ``infomax bench``, so the benchmark times the step the pipeline runs.
"""

import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch

from ..data import flatten, load_prepared, to_signed
from ..files import save_torch
from ..loop import (EMA, PRECISION_CHOICES, DivergenceGuard, Session, Speed, apply_speed, autocast, load_checkpoint,
                    maybe_compile, resolve_device, resolve_precision, resume_config, resume_key)
from .model import StackedMLP, StochasticMLP
from .objectives import OBJECTIVES, objective_loss

MODEL_FORMAT = "infomax-vib_vim-model-v1"
GROUP_FORMAT = "infomax-vib_vim-group-resume-v1"


@dataclass
class TrainConfig:
    """One study-A training job.  Every value comes from the config (vib_vim.train, the run's
    objective / beta / seed and K): no defaults here, so none can disagree with the YAML."""

    objective: str
    beta: float
    seed: int
    K: int
    epochs: int
    batch_size: int
    lr: float
    adam_betas: tuple
    lr_decay: float
    lr_decay_epochs: int
    ema_decay: float
    mmd_kernel: str
    mmd_scales: tuple
    log_every: int                          # epochs between loss read-outs (one host sync each)
    checkpoint_seconds: float               # how often the resume state is written
    precision: str                          # auto, float32, or bfloat16 autocast of the matmuls (infomax.loop);
                                            # train() resolves auto for its device before anything uses it

    def __post_init__(self):
        if self.precision not in PRECISION_CHOICES:
            raise ValueError(f"precision {self.precision!r}: expected one of {', '.join(PRECISION_CHOICES)}")
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective {self.objective!r}: expected one of {', '.join(OBJECTIVES)}")
        if self.beta < 0:
            raise ValueError(f"beta = {self.beta}: expected >= 0")
        self.adam_betas = tuple(self.adam_betas)
        self.mmd_scales = tuple(self.mmd_scales)


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


def build(cfgs: list[TrainConfig], in_dim: int, device):
    """The stacked model, its optimiser and EMA, and each model's noise generator, every model
    initialised as a one-model job initialises it: ``torch.manual_seed(seed)``, then its StochasticMLP."""
    _check_group(cfgs)
    models, noise = [], []
    for c in cfgs:
        torch.manual_seed(c.seed)
        models.append(StochasticMLP(in_dim=in_dim, K=c.K, classes=10))
        g = torch.Generator(device=device)
        # A one-model job draws its noise from the global RNG after building its model (CPU), or
        # from the CUDA generator that manual_seed seeded (CUDA; building ran on the CPU).
        g.set_state(torch.get_rng_state()) if device.type == "cpu" else g.manual_seed(c.seed)
        noise.append(g)
    stack = StackedMLP.from_models(models).to(device)
    params = list(stack.parameters())
    c = cfgs[0]
    # fused Adam: one kernel for all parameters instead of several per tensor (4x faster on CPU)
    opt = torch.optim.Adam(params, lr=c.lr, betas=c.adam_betas, fused=device.type in ("cpu", "cuda"))
    return stack, opt, EMA(params, c.ema_decay), noise


def draw_noise(objective: str, noise, B: int, K: int, device):
    """The step's random numbers, drawn before the forward pass (so a compiled forward has no
    generator inside: Dynamo breaks its graph at every draw with an explicit generator): eps for
    z = mu + sigma * eps and, for VIM, the prior sample, each (M, B, K) from model m's generator
    ``noise[m]``, in the order a one-model job draws them (eps, then the prior sample).  None for
    what the objective does not draw."""
    def draw(shape):
        return torch.stack([torch.randn(shape, device=device, generator=g).view(B, K) for g in noise])

    if objective == "deterministic":
        return None, None
    # per generator the order is eps, then the prior: each model's generator is its own stream
    eps = draw((1, B, K))
    return eps, (draw((B, K)) if objective == "vim" else None)


def loss(stack: StackedMLP, cfg0: TrainConfig, betas: torch.Tensor, x, y, eps, prior_z):
    """Per-model (total, ce, regulariser, training accuracy), each (M,), for one batch.  x: uint8
    images (B, ...) shared by every model or (M, B, ...) per model; y: (B,) or (M, B); ``eps``,
    ``prior_z``: the step's noise (``draw_noise``).  No random draw and no host sync inside, so
    torch.compile makes it one graph."""
    M = stack.M
    xs = to_signed(flatten(x) if x.dim() in (2, 4) else x.flatten(2))
    mu, sigma = stack.encode(xs)
    B = mu.shape[1]
    yy = y.expand(M, B) if y.dim() == 1 else y
    total, ce, reg, logits = objective_loss(cfg0.objective, stack.decode, mu, sigma, yy, betas,
                                            noise=lambda: eps, prior=lambda: prior_z,
                                            kernel=cfg0.mmd_kernel, scales=cfg0.mmd_scales)
    acc = (logits.detach().argmax(-1) == yy).float().mean(1)
    return total, ce, reg, acc


def step(stack, opt, ema, cfg0, betas, x, y, noise, loss=loss) -> torch.Tensor:
    """One step of every model; returns (4, M): total, ce, regulariser, accuracy, detached (no
    host sync).  The noise is drawn first (``draw_noise``), then the forward runs in the group's
    precision (the backward follows its dtypes); ``loss``: this module's, or its torch.compile'd self."""
    eps, prior_z = draw_noise(cfg0.objective, noise, y.shape[-1], stack.K, x.device)
    with autocast(x.device, cfg0.precision):
        total, ce, reg, acc = loss(stack, cfg0, betas, x, y, eps, prior_z)
    opt.zero_grad(set_to_none=True)
    total.sum().backward()               # model m's weights only see model m's term
    opt.step()
    ema.update()
    return torch.stack([total.detach(), ce.detach(), reg.detach(), acc])


def batch(x_all, y_all, perms, i: int, batch_size: int, which):
    """Step i's batch: slice i of each seed's permutation ``perms`` (seeds, n); one batch shared by
    every model when the group has one seed, else (M, B) images, model m reading its seed's
    (``which[m]``: the index of model m's seed)."""
    idx = perms[:, i * batch_size:(i + 1) * batch_size]                                  # (seeds, B)
    if perms.shape[0] == 1:
        return x_all[idx[0]], y_all[idx[0]]                                              # shared batch
    sel = idx[which]                                                                     # (M, B)
    return x_all[sel], y_all[sel]


def restore(state: dict, stack, opt, ema, noise, orders):
    """Put a resume state back: weights, Adam, EMA, each model's noise generator and each seed's
    data-order generator (``orders``, in the order of the group's sorted seeds).  The state was
    loaded onto the job's device, and ``set_state`` takes a CPU byte tensor on every device (a
    CUDA generator too), so each generator state goes through the CPU."""
    stack.load_state_dict(state["model"])
    opt.load_state_dict(state["opt"])
    ema.load_state_dict(state["ema"])
    for g, s in zip(noise, state["noise"]):
        g.set_state(s.cpu())
    for g, s in zip(orders, state["order"]):
        g.set_state(s.cpu())


# --- divergence (infomax.loop.DivergenceGuard)
# A loss this many times its first step's (plus LOSS_SLACK) has diverged.  Healthy runs spike early:
# quick's K=2 VIB at beta=1 (lr 3e-3) went from ~11 to 1321 at step 2 and trained fine, so 100x
# stopped the default run; lr 10 blow-ups reach 1e13 to 1e23 within two steps.
LOSS_SCALE = 1e4
LOSS_SLACK = 1e3
CHANCE_CE = 1.5         # chance-level accuracy counts as diverged when the CE is this many times a uniform guess's


def guard_step(guard: DivergenceGuard, terms: torch.Tensor):
    """Per-step checks of every model on the device: finite terms, and no model's loss far beyond
    its own first step's."""
    guard.set_reference("loss", terms[0].abs())
    guard.check_finite("finite", terms[:3], "a model's loss is not finite")
    over = terms[0].abs() - (LOSS_SCALE * guard.reference["loss"] + LOSS_SLACK)
    guard.check("scale", terms[0].max(), (over > 0).any(),
                f"a model's loss went beyond its initial scale (over {LOSS_SCALE:g} x its first step's + {LOSS_SLACK:g})")
    guard.tick()


def guard_log(guard: DivergenceGuard, epoch: int, names, means, first: bool, classes: int = 10):
    """Checks at a logging point, on the values read there (``means``: per model (total, ce,
    regulariser, accuracy)): the device flags, then chance-level training accuracy with a
    cross-entropy worse than a uniform guess's.  (A collapsed but healthy model, e.g. VIB at a
    large beta, sits at chance with CE ~ log C: that is a result, not divergence.)  The chance
    check starts at the second logging point (``first``: this is the first): the first epoch's
    means include the early spikes of healthy runs (see LOSS_SCALE)."""
    guard.raise_if_diverged(epoch)
    if first:
        return
    for name, (_, ce, _, acc) in zip(names, means):
        if acc <= 1.0 / classes + 0.02 and ce > CHANCE_CE * math.log(classes):
            guard.fail(epoch, f"model {name}: training accuracy {acc:.3f} is at chance level (1/{classes}) with "
                              f"cross-entropy {ce:.4g}, worse than a uniform guess's {math.log(classes):.3f}")


def train(cfgs: list[TrainConfig], data_path, out_paths, resume_file, device="auto", progress=True,
          speed: Speed | None = None, data_settings: dict | None = None) -> list[dict]:
    """Train the models ``cfgs`` as one stacked model; write model m's checkpoint (EMA weights, a
    StochasticMLP state_dict) to ``out_paths[m]``.  The group's resume state is ``resume_file``.
    ``data_settings``: the config's data block the prepared file must be made from (``load_prepared``).
    Returns each model's summary as stored in its checkpoint."""
    out_paths = [Path(p) for p in out_paths]
    if len(out_paths) != len(cfgs):
        raise ValueError(f"{len(cfgs)} models but {len(out_paths)} output paths")
    device = resolve_device(device) if isinstance(device, str) else device
    asked = cfgs[0].precision
    precision, why = resolve_precision(asked, device)            # once per job, for the whole group
    print(f"{Path(resume_file).stem}: training in {precision} on {device.type} ({why})", flush=True)
    cfgs = [replace(c, precision=precision) for c in cfgs]      # the resume key and checkpoints hold what ran
    data = load_prepared(data_path, device, data_settings)
    x_all, y_all = data.splits["train"]
    n = x_all.shape[0]
    stack, opt, ema, noise = build(cfgs, x_all[0].numel(), device)      # checks the group
    c0 = cfgs[0]
    steps_per_epoch = n // c0.batch_size            # the last partial batch is dropped: fixed shapes
    if steps_per_epoch == 0:
        raise ValueError(f"batch_size {c0.batch_size} is larger than the train split ({n} images) of {data_path}")
    used = apply_speed(speed, device)
    fwd = maybe_compile(loss, used, device)
    M = len(cfgs)
    betas = torch.tensor([float(c.beta) for c in cfgs], device=device)
    seeds = sorted({c.seed for c in cfgs})
    order = {s: torch.Generator(device=device).manual_seed(s) for s in seeds}     # data order per seed
    which = torch.tensor([seeds.index(c.seed) for c in cfgs], device=device)

    key = resume_key([resume_config(c) for c in cfgs], data_path, GROUP_FORMAT, device)   # the data hashed once
    resume_file = Path(resume_file)
    session = Session(resume_file, key, resume_file.stem, device, c0.checkpoint_seconds)
    histories = [[] for _ in cfgs]
    if (state := session.state) is not None:
        restore(state, stack, opt, ema, noise, [order[s] for s in seeds])
        histories = state["histories"]

    def resume_state():
        return {"model": stack.state_dict(), "opt": opt.state_dict(), "ema": ema.state_dict(),
                "noise": [g.get_state() for g in noise], "order": [order[s].get_state() for s in seeds],
                "histories": histories}

    stack.train()
    sums = torch.zeros(4, M, device=device)        # total, ce, regulariser, accuracy: summed on the device
    summed = 0                                      # steps in `sums` (a host-side count: no sync)
    bar = session.epochs(c0.epochs, resume_file.stem, progress)
    for epoch in bar:
        lr = c0.lr * c0.lr_decay ** (epoch // c0.lr_decay_epochs)                     # staircase decay
        for g in opt.param_groups:
            g["lr"] = lr
        perms = torch.stack([torch.randperm(n, device=device, generator=order[s]) for s in seeds])
        for i in range(steps_per_epoch):
            x, y = batch(x_all, y_all, perms, i, c0.batch_size, which)
            terms = step(stack, opt, ema, c0, betas, x, y, noise, fwd)
            guard_step(session.guard, terms)
            sums += terms
        summed += steps_per_epoch
        if (epoch + 1) % c0.log_every == 0 or epoch + 1 == c0.epochs:
            means = (sums / summed).T.tolist()                                         # the one host sync
            sums.zero_()
            summed = 0
            guard_log(session.guard, epoch + 1, [p.name for p in out_paths], means, first=not histories[0])
            for m, (total, ce_m, reg_m, _) in enumerate(means):
                histories[m].append({"epoch": epoch + 1, "lr": lr, "loss": total, "ce": ce_m, "reg": reg_m})
            bar.set_postfix(loss=f"{sum(t[0] for t in means) / M:.4f}")
        session.checkpoint(epoch + 1, resume_state)
    seconds = session.finish()

    averaged = ema.averaged()
    summaries = []
    for m, (c, path) in enumerate(zip(cfgs, out_paths)):
        # train_seconds: the group's training time shared equally among its models
        summary = {"format": MODEL_FORMAT, "config": asdict(c), "train_seconds": seconds / M,
                   "history": histories[m], "data": str(data_path), "data_sha256": key["data_sha256"],
                   "device": str(device),
                   "torch": str(torch.__version__), "speed": used, "group": {"size": M, "seconds": seconds},
                   "precision": {"asked": asked, "used": precision, "why": why}}
        state_dict = {k: v.cpu() for k, v in stack.solo_state(m, averaged).items()}
        save_torch({**summary, "state_dict": state_dict}, path)
        summaries.append(summary)
    session.done()
    return summaries


def load_model(path, device="cpu", data=None) -> tuple[StochasticMLP, dict]:
    """The EMA-weight model from a study-A checkpoint, in eval mode, and the checkpoint's summary
    (``data``: (prepared file, its digest) it must have been trained on: ``loop.load_checkpoint``)."""
    path = Path(path)
    # a model of a group lives in the group's folder output (groups/<group>/models): rebuild that
    in_group = path.parent.name == "models" and path.parent.parent.parent.name == "groups"
    ckpt = load_checkpoint(path, MODEL_FORMAT, "study-A (vib_vim)", device, output=path.parent if in_group else path,
                           data=data)
    cfg = ckpt["config"]
    in_dim = ckpt["state_dict"]["encoder.0.weight"].shape[1]
    model = StochasticMLP(in_dim=in_dim, K=cfg["K"], classes=ckpt["state_dict"]["decoder.weight"].shape[0])
    model.load_state_dict(ckpt["state_dict"])
    return model.to(device).eval(), {k: v for k, v in ckpt.items() if k != "state_dict"}
