"""Study A's training loop (VIB / VIM / deterministic on Alemi et al.'s MLP).

Speed by design: the whole train split lives on the device as uint8, a batch is an index slice,
normalisation happens on the device, and the loop never waits for the device (losses are summed
on the device and read once per logged epoch).  Resume: see ``infomax.loop``.

One training step is a function (``step``) that the loop and ``infomax bench`` both call, so the
benchmark times the step the pipeline runs, not a copy.
"""

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ..data import flatten, load_prepared, to_signed
from ..files import remove_orphans, save_torch
from ..loop import (EMA, PRECISIONS, DivergenceGuard, Speed, apply_speed, autocast, finish, load_checkpoint,
                    load_resume, maybe_compile, resolve_device, restore_rng, resume_key, resume_path, rng_state)
from .model import StochasticMLP
from .objectives import OBJECTIVES, vib_vim_loss

MODEL_FORMAT = "infomax-vib_vim-model-v1"


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
    precision: str                          # float32, or bfloat16 autocast of the matmuls (infomax.loop.autocast)

    def __post_init__(self):
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision {self.precision!r}: expected one of {', '.join(PRECISIONS)}")
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective {self.objective!r}: expected one of {', '.join(OBJECTIVES)}")
        if self.beta < 0:
            raise ValueError(f"beta = {self.beta}: expected >= 0")
        self.adam_betas = tuple(self.adam_betas)
        self.mmd_scales = tuple(self.mmd_scales)


def build(cfg: TrainConfig, in_dim: int, device) -> tuple[StochasticMLP, torch.optim.Adam, EMA]:
    """The model, optimiser and weight average of a study-A job, initialised from ``cfg.seed``."""
    torch.manual_seed(cfg.seed)
    model = StochasticMLP(in_dim=in_dim, K=cfg.K, classes=10).to(device)
    params = list(model.parameters())
    # fused Adam: one kernel for all parameters instead of several per tensor (4x faster on CPU)
    opt = torch.optim.Adam(params, lr=cfg.lr, betas=cfg.adam_betas, fused=device.type in ("cpu", "cuda"))
    return model, opt, EMA(params, cfg.ema_decay)


def forward(model, cfg: TrainConfig, x, y):
    """Loss terms (total, ce, regulariser) and the training accuracy of one batch: uint8 images
    x (B, C, H, W), scaled to [-1, 1] on the device; labels y (B,)."""
    return vib_vim_loss(model, to_signed(flatten(x)), y, cfg.objective, cfg.beta, cfg.mmd_kernel, cfg.mmd_scales,
                        with_accuracy=True)


def step(model, opt, ema, cfg: TrainConfig, x, y, forward=forward) -> torch.Tensor:
    """One training step on the batch (x, y); returns (total, ce, regulariser, accuracy) stacked and
    detached, on the device (no host sync).  ``forward`` is this module's forward, or its torch.compile'd self;
    it runs in the config's precision (the backward follows the forward's dtypes)."""
    with autocast(x.device, cfg.precision):
        loss, ce, reg, acc = forward(model, cfg, x, y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    ema.update()
    return torch.stack([loss.detach(), ce.detach(), reg.detach(), acc])


# --- divergence (infomax.loop.DivergenceGuard); the stacked trainer can call the same two functions
# A loss this many times its first step's (plus LOSS_SLACK) has diverged.  Healthy runs spike early:
# quick's K=2 VIB at beta=1 (lr 3e-3) went from ~11 to 1321 at step 2 and trained fine, so 100x
# stopped the default run; lr 10 blow-ups reach 1e13 to 1e23 within two steps.
LOSS_SCALE = 1e4
LOSS_SLACK = 1e3
CHANCE_CE = 1.5         # chance-level accuracy counts as diverged when the CE is this many times a uniform guess's


def guard_step(guard: DivergenceGuard, terms: torch.Tensor):
    """Per-step checks of study A on the device: finite terms, and a loss far beyond its initial scale."""
    guard.set_reference("loss", terms[0].abs())
    guard.check_finite("finite", terms[:3], "the loss is not finite")
    limit = LOSS_SCALE * guard.reference["loss"] + LOSS_SLACK
    guard.check("scale", terms[0], terms[0].abs() > limit,
                f"the loss went beyond its initial scale (over {LOSS_SCALE:g} x the first step's + {LOSS_SLACK:g})")
    guard.tick()


def guard_log(guard: DivergenceGuard, epoch: int, ce: float, acc: float, classes: int = 10, first: bool = False):
    """Checks at a logging point, on the values read there: the device flags, then chance-level
    training accuracy with a cross-entropy worse than a uniform guess's.  (A collapsed but healthy
    model, e.g. VIB at a large beta, sits at chance with CE ~ log C: that is a result, not divergence.)
    The chance check starts at the second logging point (``first``: this is the first): the first
    epoch's means include the early spikes of healthy runs (see LOSS_SCALE)."""
    guard.raise_if_diverged(epoch)
    if not first and acc <= 1.0 / classes + 0.02 and ce > CHANCE_CE * math.log(classes):
        guard.fail(epoch, f"training accuracy {acc:.3f} is at chance level (1/{classes}) with cross-entropy "
                          f"{ce:.4g}, worse than a uniform guess's {math.log(classes):.3f}")


def train(cfg: TrainConfig, data_path, out_path, device="auto", progress=True,
          speed: Speed | None = None) -> dict:
    """Train one study-A model and write its checkpoint (EMA weights) to ``out_path``.

    Returns the summary stored in the checkpoint (config, train_seconds, loss history, speed switches).
    """
    out_path = Path(out_path)
    device = resolve_device(device) if isinstance(device, str) else device
    data = load_prepared(data_path, device)
    x_all, y_all = data.splits["train"]
    n = x_all.shape[0]
    steps_per_epoch = n // cfg.batch_size           # the last partial batch is dropped: fixed shapes
    if steps_per_epoch == 0:
        raise ValueError(f"batch_size {cfg.batch_size} is larger than the train split ({n} images) of {data_path}")

    used = apply_speed(speed, device)
    fwd = maybe_compile(forward, used)
    model, opt, ema = build(cfg, x_all[0].numel(), device)
    gen = torch.Generator(device=device).manual_seed(cfg.seed)
    history, start_epoch, seconds_before = [], 0, 0.0

    resume = resume_path(out_path)
    remove_orphans(resume)                          # temps of a killed earlier attempt
    key = resume_key(cfg, data_path, MODEL_FORMAT)
    guard = DivergenceGuard(out_path.name, device)
    state = load_resume(resume, key, device)
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        ema.load_state_dict(state["ema"])
        guard.load_state_dict(state["guard"])
        restore_rng(state, gen, device)
        history, start_epoch, seconds_before = state["history"], state["epoch"], state["seconds"]
        print(f"resuming {out_path.name} from epoch {start_epoch} ({resume})", flush=True)

    def save_resume(epoch, seconds):
        guard.raise_if_diverged(epoch)              # never keep a diverged state
        save_torch({"key": key, "model": model.state_dict(), "opt": opt.state_dict(),
                    "ema": ema.state_dict(), "guard": guard.state_dict(), **rng_state(gen, device),
                    "history": history, "epoch": epoch, "seconds": seconds}, resume)

    model.train()
    t0 = last_ckpt = time.perf_counter()
    sums = torch.zeros(4, device=device)            # total, ce, regulariser, accuracy: summed on the device
    summed = 0                                      # steps in `sums` (a host-side count: no sync)
    bar = tqdm(range(start_epoch, cfg.epochs), desc=out_path.stem, disable=not progress,
               mininterval=2.0, initial=start_epoch, total=cfg.epochs)
    for epoch in bar:
        lr = cfg.lr * cfg.lr_decay ** (epoch // cfg.lr_decay_epochs)     # staircase decay
        for g in opt.param_groups:
            g["lr"] = lr
        perm = torch.randperm(n, device=device, generator=gen)
        for i in range(steps_per_epoch):
            idx = perm[i * cfg.batch_size:(i + 1) * cfg.batch_size]
            terms = step(model, opt, ema, cfg, x_all[idx], y_all[idx], fwd)
            guard_step(guard, terms)
            sums += terms
        summed += steps_per_epoch
        if (epoch + 1) % cfg.log_every == 0 or epoch + 1 == cfg.epochs:
            total, ce_m, reg_m, acc_m = (sums / summed).tolist()          # the one host sync
            sums.zero_()
            summed = 0
            guard_log(guard, epoch + 1, ce_m, acc_m, first=not history)
            history.append({"epoch": epoch + 1, "lr": lr, "loss": total, "ce": ce_m, "reg": reg_m})
            bar.set_postfix(loss=f"{total:.4f}", ce=f"{ce_m:.4f}", reg=f"{reg_m:.4g}")
        now = time.perf_counter()
        if now - last_ckpt > cfg.checkpoint_seconds and epoch + 1 < cfg.epochs:
            save_resume(epoch + 1, seconds_before + now - t0)
            last_ckpt = now
    train_seconds = finish(bar, device, seconds_before, t0)

    ema_state = dict(zip([k for k, _ in model.named_parameters()], ema.averaged()))
    summary = {"format": MODEL_FORMAT, "config": asdict(cfg), "train_seconds": train_seconds,
               "history": history, "data": str(data_path), "device": str(device),
               "torch": torch.__version__, "speed": used}
    save_torch({**summary, "state_dict": {k: v.detach().cpu() for k, v in ema_state.items()}}, out_path)
    resume.unlink(missing_ok=True)
    return summary


def load_model(path, device="cpu") -> tuple[StochasticMLP, dict]:
    """The EMA-weight model from a study-A checkpoint, in eval mode, and the checkpoint's summary."""
    path = Path(path)
    # a model of a group lives in the group's folder output (groups/<group>/models): rebuild that
    in_group = path.parent.name == "models" and path.parent.parent.parent.name == "groups"
    ckpt = load_checkpoint(path, MODEL_FORMAT, "study-A (vib_vim)", device, output=path.parent if in_group else path)
    cfg = ckpt["config"]
    in_dim = ckpt["state_dict"]["encoder.0.weight"].shape[1]
    model = StochasticMLP(in_dim=in_dim, K=cfg["K"], classes=ckpt["state_dict"]["decoder.weight"].shape[0])
    model.load_state_dict(ckpt["state_dict"])
    return model.to(device).eval(), {k: v for k, v in ckpt.items() if k != "state_dict"}
