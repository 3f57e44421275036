"""Training loops: study A (VIB / VIM / deterministic on Alemi et al.'s MLP).

Speed by design: the whole train split lives on the device as uint8, a batch is an index slice,
normalisation happens on the device, and the loop never waits for the device (losses are summed
on the device and read once per logged epoch).  Resume: a state file next to the output is
rewritten atomically every ``checkpoint_seconds``; an interrupted job continues from it.

One training step of each study is a function (``vib_vim_step``, ``infobal_step``) that the loops
and ``infomax bench`` both call, so the benchmark times the step the pipeline runs, not a copy.
"""

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from .data import flatten, load_prepared, to_signed
from .files import save_torch
from .nets import StochasticMLP
from .objectives import OBJECTIVES, dim_input, vib_vim_loss

MODEL_FORMAT = "infomax-vib_vim-model-v1"


@dataclass
class VibVimTrainConfig:
    objective: str
    beta: float
    seed: int
    K: int = 256
    epochs: int = 200
    batch_size: int = 100
    lr: float = 1e-4
    adam_betas: tuple = (0.5, 0.999)
    lr_decay: float = 0.97
    lr_decay_epochs: int = 2
    ema_decay: float = 0.999
    mmd_kernel: str = "imq"
    mmd_scales: tuple = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)
    log_every: int = 1                      # epochs between loss read-outs (one host sync each)
    checkpoint_seconds: float = 300.0       # how often the resume state is written

    def __post_init__(self):
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective {self.objective!r}: expected one of {', '.join(OBJECTIVES)}")
        if self.beta < 0:
            raise ValueError(f"beta = {self.beta}: expected >= 0")
        self.adam_betas = tuple(self.adam_betas)
        self.mmd_scales = tuple(self.mmd_scales)


@dataclass
class Speed:
    """Speed switches of a training job.  They are not part of the model's configuration (a resume
    state is reused across them), but the checkpoint records which were used.

    The defaults keep the CPU on the plain float32 path and turn TF32 on for CUDA: TF32 keeps
    float32's range with a 10-bit mantissa in matmuls and convolutions (several times the float32
    matmul rate on Ampere and later), well inside the noise of SGD for these models."""

    tf32: bool | None = None        # None: on for CUDA, off on the CPU (TF32 is a CUDA feature)
    compile: bool = False           # torch.compile the forward pass and loss (its backward is compiled too)


def apply_speed(speed: "Speed | None", device: torch.device) -> dict:
    """Set the process-wide switches ``speed`` asks for on ``device``; return the ones in effect."""
    speed = speed or Speed()
    tf32 = device.type == "cuda" if speed.tf32 is None else bool(speed.tf32)
    if tf32 and device.type != "cuda":
        raise ValueError(f"tf32=True on device {device}: TF32 is a CUDA feature (leave it unset or off on the CPU)")
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = tf32
        torch.backends.cudnn.allow_tf32 = tf32
    return {"tf32": tf32, "compile": bool(speed.compile)}


def maybe_compile(fn, used: dict):
    """``fn`` compiled with torch.compile when ``used["compile"]``, else ``fn`` itself."""
    return torch.compile(fn) if used["compile"] else fn


def resolve_device(spec: str = "auto") -> torch.device:
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' was requested but torch sees no CUDA GPU (use device: auto or cpu)")
    return torch.device(spec)


class EMA:
    """Exponential moving average of parameters, zero-initialised and debiased (like TF's
    ExponentialMovingAverage(zero_debias=True) in the official VIB code): the average is over
    the weights actually visited, not pulled towards the random initialisation."""

    def __init__(self, params, decay: float):
        self.params = list(params)
        self.decay = decay
        self.shadow = [torch.zeros_like(p) for p in self.params]
        self.steps = 0

    @torch.no_grad()
    def update(self):
        torch._foreach_lerp_(self.shadow, [p.detach() for p in self.params], 1.0 - self.decay)
        self.steps += 1

    def averaged(self) -> list[torch.Tensor]:
        if self.steps == 0:
            return [p.detach().clone() for p in self.params]
        debias = 1.0 - self.decay ** self.steps
        return [s / debias for s in self.shadow]

    def state_dict(self):
        return {"shadow": self.shadow, "steps": self.steps}

    def load_state_dict(self, state):
        for s, v in zip(self.shadow, state["shadow"]):
            s.copy_(v)
        self.steps = state["steps"]


def _resume_path(out: Path) -> Path:
    return out.with_name(out.name + ".resume")


def _resume_key(cfg) -> dict:
    """What must match for a resume state to be reused (bookkeeping fields may change)."""
    return {k: v for k, v in asdict(cfg).items() if k not in ("log_every", "checkpoint_seconds")}


def _load_resume(resume: Path, key: dict, device) -> dict | None:
    """The resume state at ``resume`` if it exists, reads and was written for ``key``; else None."""
    if not resume.exists():
        return None
    try:
        state = torch.load(resume, map_location=device, weights_only=False)
    except Exception as e:  # written atomically, so this is outside damage: start afresh
        print(f"ignoring {resume}: cannot be read ({e})", flush=True)
        return None
    if not isinstance(state, dict) or state.get("key") != key:
        print(f"ignoring {resume}: it was written for another configuration", flush=True)
        return None
    return state


def _rng_state(gen, device) -> dict:
    return {"gen": gen.get_state(), "cpu_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None}


def _restore_rng(state, gen, device):
    gen.set_state(state["gen"].cpu())
    torch.set_rng_state(state["cpu_rng"].cpu())
    if device.type == "cuda" and state.get("cuda_rng") is not None:
        torch.cuda.set_rng_state(state["cuda_rng"].cpu(), device)


def _finish(bar, device, seconds_before: float, t0: float) -> float:
    """Close the progress bar, wait for the device, and return the training seconds so far."""
    bar.close()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return seconds_before + time.perf_counter() - t0


def build_vib_vim(cfg: VibVimTrainConfig, in_dim: int, device) -> tuple[StochasticMLP, torch.optim.Adam, EMA]:
    """The model, optimiser and weight average of a study-A job, initialised from ``cfg.seed``."""
    torch.manual_seed(cfg.seed)
    model = StochasticMLP(in_dim=in_dim, K=cfg.K, classes=10).to(device)
    params = list(model.parameters())
    # fused Adam: one kernel for all parameters instead of several per tensor (4x faster on CPU)
    opt = torch.optim.Adam(params, lr=cfg.lr, betas=cfg.adam_betas, fused=device.type in ("cpu", "cuda"))
    return model, opt, EMA(params, cfg.ema_decay)


def vib_vim_forward(model, cfg: VibVimTrainConfig, x, y):
    """Loss terms (total, ce, regulariser) of one batch: uint8 images x (B, C, H, W), scaled to
    [-1, 1] on the device; labels y (B,)."""
    return vib_vim_loss(model, to_signed(flatten(x)), y, cfg.objective, cfg.beta, cfg.mmd_kernel, cfg.mmd_scales)


def vib_vim_step(model, opt, ema, cfg: VibVimTrainConfig, x, y, forward=vib_vim_forward) -> torch.Tensor:
    """One training step on the batch (x, y); returns (total, ce, regulariser) stacked and detached,
    on the device (no host sync).  ``forward`` is vib_vim_forward, or its torch.compile'd self."""
    loss, ce, reg = forward(model, cfg, x, y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    ema.update()
    return torch.stack([loss.detach(), ce.detach(), reg.detach()])


def train_vib_vim(cfg: VibVimTrainConfig, data_path, out_path, device="auto", progress=True,
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
    forward = maybe_compile(vib_vim_forward, used)
    model, opt, ema = build_vib_vim(cfg, x_all[0].numel(), device)
    gen = torch.Generator(device=device).manual_seed(cfg.seed)
    history, start_epoch, seconds_before = [], 0, 0.0

    resume = _resume_path(out_path)
    state = _load_resume(resume, _resume_key(cfg), device)
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        ema.load_state_dict(state["ema"])
        _restore_rng(state, gen, device)
        history, start_epoch, seconds_before = state["history"], state["epoch"], state["seconds"]
        print(f"resuming {out_path.name} from epoch {start_epoch} ({resume})", flush=True)

    def save_resume(epoch, seconds):
        save_torch({"key": _resume_key(cfg), "model": model.state_dict(), "opt": opt.state_dict(),
                    "ema": ema.state_dict(), **_rng_state(gen, device),
                    "history": history, "epoch": epoch, "seconds": seconds}, resume)

    model.train()
    t0 = last_ckpt = time.perf_counter()
    sums = torch.zeros(3, device=device)            # total, ce, regulariser: summed on the device
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
            sums += vib_vim_step(model, opt, ema, cfg, x_all[idx], y_all[idx], forward)
        summed += steps_per_epoch
        if (epoch + 1) % cfg.log_every == 0 or epoch + 1 == cfg.epochs:
            total, ce_m, reg_m = (sums / summed).tolist()                 # the one host sync
            sums.zero_()
            summed = 0
            if not math.isfinite(total):
                raise FloatingPointError(f"{out_path.name}: loss became {total} at epoch {epoch + 1}")
            history.append({"epoch": epoch + 1, "lr": lr, "loss": total, "ce": ce_m, "reg": reg_m})
            bar.set_postfix(loss=f"{total:.4f}", ce=f"{ce_m:.4f}", reg=f"{reg_m:.4g}")
        now = time.perf_counter()
        if now - last_ckpt > cfg.checkpoint_seconds and epoch + 1 < cfg.epochs:
            save_resume(epoch + 1, seconds_before + now - t0)
            last_ckpt = now
    train_seconds = _finish(bar, device, seconds_before, t0)

    ema_state = dict(zip([k for k, _ in model.named_parameters()], ema.averaged()))
    summary = {"format": MODEL_FORMAT, "config": asdict(cfg), "train_seconds": train_seconds,
               "history": history, "data": str(data_path), "device": str(device),
               "torch": torch.__version__, "speed": used}
    save_torch({**summary, "state_dict": {k: v.detach().cpu() for k, v in ema_state.items()}}, out_path)
    resume.unlink(missing_ok=True)
    return summary


def load_vib_vim_model(path, device="cpu") -> tuple[StochasticMLP, dict]:
    """The EMA-weight model from a study-A checkpoint, in eval mode, and the checkpoint's summary."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"model checkpoint {path} does not exist: run its training job first")
    try:
        ckpt = torch.load(path, map_location=device, weights_only=False)
    except Exception as e:  # truncated or not a torch file
        raise RuntimeError(f"model checkpoint {path} is corrupt or truncated ({e}); delete it and rerun") from e
    if not isinstance(ckpt, dict) or ckpt.get("format") != MODEL_FORMAT:
        raise RuntimeError(f"{path} is not a study-A checkpoint (expected format {MODEL_FORMAT!r})")
    cfg = ckpt["config"]
    in_dim = ckpt["state_dict"]["encoder.0.weight"].shape[1]
    model = StochasticMLP(in_dim=in_dim, K=cfg["K"], classes=ckpt["state_dict"]["decoder.weight"].shape[0])
    model.load_state_dict(ckpt["state_dict"])
    return model.to(device).eval(), {k: v for k, v in ckpt.items() if k != "state_dict"}


# -----------------------------------------------------------------------------
# Study B: DIM and InfoBal pre-training (self-supervised), with the per-epoch curves.

INFOBAL_MODEL_FORMAT = "infomax-infobal-model-v1"
KINDS = ("dim_g", "dim_l", "infobal", "random")
# DIM's weights (alpha, beta, gamma in Hjelm et al.): DIM(G) alpha=1, beta=0, gamma=1;
# DIM(L) alpha=0, beta=1, gamma=0.1.
DIM_WEIGHTS = {"dim_g": (1.0, 0.0, 1.0), "dim_l": (0.0, 1.0, 0.1)}


@dataclass
class InfoBalTrainConfig:
    method: str                             # the name in the config (file names, tables)
    kind: str                               # dim_g | dim_l | infobal | random (untrained encoder)
    estimator: str                          # jsd | dv | nce; "none" for random
    seed: int
    epochs: int = 100
    batch_size: int = 64
    lr: float = 1e-4
    adam_betas: tuple = (0.5, 0.999)
    adversary_lr: float = 1e-4              # prior discriminator / InfoMin adversary / CLUB's q
    y_dim: int = 64
    fc_units: int = 1024
    local_units: int = 2048                 # encode-and-dot units (DIM's default)
    global_hidden: int = 512
    prior_hidden: tuple = (1000, 200)
    global_weight: float | None = None      # DIM: None = the kind's default (DIM_WEIGHTS)
    local_weight: float | None = None
    prior_weight: float | None = None
    views: int = 2                          # InfoBal: horizontal bands of the local map
    view_dim: int = 64
    target: str = "x"                       # "x": I(X; V_i) (local); "r": I(R; V_i) (global/local InfoBal)
    infomin: str = "adversary"              # or "club"
    infomin_hidden: int = 512
    infomin_units: int = 256
    lam: float = 1.0
    lam_warmup_epochs: float = 0.0          # lambda ramps linearly from 0 over these epochs
    view_weights: tuple | None = None
    pair_weights: tuple | None = None
    curve_every: int = 1                    # epochs between curve points (and loss read-outs)
    curve_probe_images: int = 1000          # train images for the curve's probe (scored on val)
    curve_probe_epochs: int = 4
    curve_probe_lr: float = 1e-3
    checkpoint_seconds: float = 300.0

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"kind {self.kind!r}: expected one of {', '.join(KINDS)}")
        from .estimators import MI_ESTIMATORS
        allowed = ["none"] if self.kind == "random" else list(MI_ESTIMATORS)
        if self.estimator not in allowed:
            raise ValueError(f"estimator {self.estimator!r} for kind {self.kind!r}: expected one of {', '.join(allowed)}")
        self.adam_betas = tuple(self.adam_betas)
        self.prior_hidden = tuple(self.prior_hidden)
        if self.kind in DIM_WEIGHTS:
            defaults = DIM_WEIGHTS[self.kind]
            for name, d in zip(("global_weight", "local_weight", "prior_weight"), defaults):
                if getattr(self, name) is None:
                    setattr(self, name, d)
        n_pairs = self.views * (self.views - 1) // 2
        for name, n in (("view_weights", self.views), ("pair_weights", n_pairs)):
            w = getattr(self, name)
            if w is not None:
                if len(w) != n:
                    raise ValueError(f"{name} has {len(w)} entries; expected {n} for {self.views} views")
                setattr(self, name, tuple(float(v) for v in w))
        if self.batch_size < 2:
            raise ValueError(f"batch_size {self.batch_size}: the estimators need >= 2 (negatives are the other images)")


def build_infobal_net(cfg: InfoBalTrainConfig, in_ch: int):
    from .nets import DIMNet, InfoBalNet

    if cfg.kind == "infobal":
        return InfoBalNet(in_ch, cfg.views, cfg.view_dim, cfg.fc_units, cfg.y_dim, cfg.local_units, cfg.target,
                          cfg.infomin, cfg.infomin_hidden, cfg.infomin_units)
    w = (0.0, 0.0, 0.0) if cfg.kind == "random" else (cfg.global_weight, cfg.local_weight, cfg.prior_weight)
    return DIMNet(in_ch, *w, y_dim=cfg.y_dim, fc_units=cfg.fc_units, local_units=cfg.local_units,
                  global_hidden=cfg.global_hidden, prior_hidden=cfg.prior_hidden)


def infobal_losses_of(net, cfg: InfoBalTrainConfig, out: dict, lam: float, gen=None):
    """(encoder loss, adversary loss, InfoMax estimate, InfoMin term) of one batch."""
    from .objectives import dim_losses, infobal_losses

    if cfg.kind == "infobal":
        return infobal_losses(net, out, cfg.estimator, lam, cfg.view_weights, cfg.pair_weights)
    loss, adv, mi = dim_losses(net, out, cfg.estimator, cfg.global_weight, cfg.local_weight, cfg.prior_weight, gen)
    return loss, adv, mi, torch.zeros_like(mi)


@torch.no_grad()
def curve_point(net, cfg: InfoBalTrainConfig, data, probe_idx, lam: float) -> dict:
    """The InfoMax estimate on the validation split (eval mode, batches of batch_size) and the
    post's probe (linear, curve_probe_epochs) on y, trained on a fixed train subset, scored on val."""
    from .evaluate import encoder_features, probe_accuracy, train_probe
    from .objectives import dim_input

    (xtr, ytr), (xva, yva) = data.splits["train"], data.splits["val"]
    was_training = net.training
    net.eval()
    # One pass over val: every image's y for the probe, the estimate on the full batches only
    # (the estimators' bias depends on the batch size).
    b = min(cfg.batch_size, xva.shape[0])
    ys, mis, mins = [], [], []
    for i in range(0, xva.shape[0], b):
        out = net(dim_input(xva[i:i + b]))
        ys.append(out["y"])
        if cfg.kind != "random" and out["y"].shape[0] == b:    # the random encoder has no critic
            _, _, mi, mn = infobal_losses_of(net, cfg, out, lam)
            mis.append(mi)
            mins.append(mn)
    net.train(was_training)
    f_va = torch.cat(ys)
    f_tr = encoder_features(net, xtr[probe_idx], layers=("y",))["y"]
    estimate = torch.stack(mis).mean().item() if mis else math.nan
    infomin = torch.stack(mins).mean().item() if mins else math.nan
    predict = train_probe(f_tr, ytr[probe_idx], "linear", cfg.curve_probe_epochs, cfg.curve_probe_lr,
                          cfg.batch_size, cfg.seed, classes=data.classes)
    return {"mi_estimate": estimate, "infomin": infomin, "probe_acc": probe_accuracy(predict, f_va, yva)}


def build_infobal_training(cfg: InfoBalTrainConfig, in_ch: int, device):
    """The net and its two optimisers of a study-B job, initialised from ``cfg.seed``: one Adam for
    the encoder with its InfoMax critics, one for the adversary (None when the net has none)."""
    torch.manual_seed(cfg.seed)
    net = build_infobal_net(cfg, in_ch).to(device)
    adv_params = list(net.adversary.parameters()) if getattr(net, "adversary", None) is not None else []
    adv_ids = {id(p) for p in adv_params}
    main_params = [p for p in net.parameters() if id(p) not in adv_ids]
    fused = device.type in ("cpu", "cuda")
    opt = torch.optim.Adam(main_params, lr=cfg.lr, betas=cfg.adam_betas, fused=fused)
    opt_adv = torch.optim.Adam(adv_params, lr=cfg.adversary_lr, betas=cfg.adam_betas, fused=fused) if adv_params else None
    return net, opt, opt_adv


def infobal_forward(net, cfg: InfoBalTrainConfig, x, lam: float, gen=None):
    """(encoder loss, adversary loss, InfoMax estimate, InfoMin term) of one batch of uint8 images
    x (B, C, H, W), scaled to [-1, 1] and padded to 32x32 on the device."""
    return infobal_losses_of(net, cfg, net(dim_input(x)), lam, gen)


def infobal_step(net, opt, opt_adv, cfg: InfoBalTrainConfig, x, lam: float, gen=None,
                 forward=infobal_forward) -> torch.Tensor:
    """One training step on the batch x; returns (encoder loss, adversary loss, InfoMax, InfoMin)
    stacked and detached, on the device (no host sync)."""
    loss, adv, mi, infomin = forward(net, cfg, x, lam, gen)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    if opt_adv is not None:
        # the encoder's backward also left gradients in the adversary: drop them, then
        # step the adversary on its own loss (built from detached features)
        opt_adv.zero_grad(set_to_none=True)
        adv.backward()
        opt_adv.step()
    return torch.stack([loss.detach(), adv.detach(), mi.detach(), infomin.detach()])


def train_infobal(cfg: InfoBalTrainConfig, data_path, out_path, device="auto", progress=True,
                  speed: Speed | None = None) -> dict:
    """Pre-train one study-B model (DIM or InfoBal) and write its checkpoint to ``out_path``.

    Two Adam optimisers: the encoder with its InfoMax critics (they maximise the same estimate),
    and the adversary (prior discriminator, InfoMin discriminator or CLUB's q) on its own loss.
    Curve points (epoch 0 = at initialisation) go into the checkpoint's "curves".  Kind "random"
    trains nothing: it is DIM's encoder as the seed initialises it (BatchNorm statistics included),
    the same state every DIM run of that seed starts from, and the floor for the probes."""
    out_path = Path(out_path)
    device = resolve_device(device) if isinstance(device, str) else device
    data = load_prepared(data_path, device)
    x_all = data.splits["train"][0]
    n = x_all.shape[0]
    steps_per_epoch = n // cfg.batch_size
    if steps_per_epoch == 0:
        raise ValueError(f"batch_size {cfg.batch_size} is larger than the train split ({n} images) of {data_path}")
    if data.splits["val"][0].shape[0] < 2:
        raise ValueError(f"{data_path}: the validation split needs >= 2 images for the curves")

    used = apply_speed(speed, device)
    forward = maybe_compile(infobal_forward, used)
    net, opt, opt_adv = build_infobal_training(cfg, data.image_shape[0], device)
    gen = torch.Generator(device=device).manual_seed(cfg.seed)
    probe_idx = torch.randperm(n, device=device, generator=gen)[:min(cfg.curve_probe_images, n)]
    history, curves, start_epoch, seconds_before = [], [], 0, 0.0
    epochs = 0 if cfg.kind == "random" else cfg.epochs

    def lam_at(epoch_float):
        if cfg.lam_warmup_epochs <= 0:
            return cfg.lam
        return cfg.lam * min(1.0, epoch_float / cfg.lam_warmup_epochs)

    resume = _resume_path(out_path)
    state = _load_resume(resume, _resume_key(cfg), device) if epochs else None
    if state is not None:
        net.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        if opt_adv is not None:
            opt_adv.load_state_dict(state["opt_adv"])
        _restore_rng(state, gen, device)
        history, curves = state["history"], state["curves"]
        start_epoch, seconds_before = state["epoch"], state["seconds"]
        print(f"resuming {out_path.name} from epoch {start_epoch} ({resume})", flush=True)

    def save_resume(epoch, seconds):
        save_torch({"key": _resume_key(cfg), "model": net.state_dict(), "opt": opt.state_dict(),
                    "opt_adv": opt_adv.state_dict() if opt_adv is not None else None, **_rng_state(gen, device),
                    "history": history, "curves": curves, "epoch": epoch, "seconds": seconds}, resume)

    if start_epoch == 0:
        curves.append({"epoch": 0, **curve_point(net, cfg, data, probe_idx, lam_at(0.0))})
    net.train()
    t0 = last_ckpt = time.perf_counter()
    sums = torch.zeros(4, device=device)            # encoder loss, adversary loss, InfoMax, InfoMin
    summed = 0
    bar = tqdm(range(start_epoch, epochs), desc=out_path.stem, disable=not progress or epochs == 0,
               mininterval=2.0, initial=start_epoch, total=epochs)
    for epoch in bar:
        perm = torch.randperm(n, device=device, generator=gen)
        for i in range(steps_per_epoch):
            x = x_all[perm[i * cfg.batch_size:(i + 1) * cfg.batch_size]]
            sums += infobal_step(net, opt, opt_adv, cfg, x, lam_at(epoch + i / steps_per_epoch), gen, forward)
        summed += steps_per_epoch
        if (epoch + 1) % cfg.curve_every == 0 or epoch + 1 == epochs:
            total, adv_m, mi_m, min_m = (sums / summed).tolist()           # the one host sync
            sums.zero_()
            summed = 0
            if not math.isfinite(total):
                raise FloatingPointError(f"{out_path.name}: loss became {total} at epoch {epoch + 1}")
            history.append({"epoch": epoch + 1, "loss": total, "adversary_loss": adv_m,
                            "train_mi": mi_m, "train_infomin": min_m})
            point = {"epoch": epoch + 1, **curve_point(net, cfg, data, probe_idx, lam_at(epoch + 1.0))}
            curves.append(point)
            bar.set_postfix(loss=f"{total:.3f}", mi=f"{point['mi_estimate']:.3f}", probe=f"{point['probe_acc']:.3f}")
        now = time.perf_counter()
        if now - last_ckpt > cfg.checkpoint_seconds and epoch + 1 < epochs:
            save_resume(epoch + 1, seconds_before + now - t0)
            last_ckpt = now
    train_seconds = _finish(bar, device, seconds_before, t0)
    summary = {"format": INFOBAL_MODEL_FORMAT, "config": asdict(cfg), "in_channels": data.image_shape[0],
               "train_seconds": train_seconds, "history": history, "curves": curves, "data": str(data_path),
               "device": str(device), "torch": torch.__version__, "speed": used}
    save_torch({**summary, "state_dict": {k: v.detach().cpu() for k, v in net.state_dict().items()}}, out_path)
    resume.unlink(missing_ok=True)
    return summary


def load_infobal_model(path, device="cpu"):
    """The study-B net of a checkpoint, in eval mode, and the checkpoint's summary."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"model checkpoint {path} does not exist: run its training job first")
    try:
        ckpt = torch.load(path, map_location=device, weights_only=False)
    except Exception as e:
        raise RuntimeError(f"model checkpoint {path} is corrupt or truncated ({e}); delete it and rerun") from e
    if not isinstance(ckpt, dict) or ckpt.get("format") != INFOBAL_MODEL_FORMAT:
        raise RuntimeError(f"{path} is not a study-B checkpoint (expected format {INFOBAL_MODEL_FORMAT!r})")
    cfg = InfoBalTrainConfig(**ckpt["config"])
    net = build_infobal_net(cfg, ckpt["in_channels"])
    net.load_state_dict(ckpt["state_dict"])
    return net.to(device).eval(), {k: v for k, v in ckpt.items() if k != "state_dict"}
