"""Training loops: study A (VIB / VIM / deterministic on Alemi et al.'s MLP).

Speed by design: the whole train split lives on the device as uint8, a batch is an index slice,
normalisation happens on the device, and the loop never waits for the device (losses are summed
on the device and read once per logged epoch).  Resume: a state file next to the output is
rewritten atomically every ``checkpoint_seconds``; an interrupted job continues from it.
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
from .objectives import OBJECTIVES, vib_vim_loss

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


def _resume_key(cfg: VibVimTrainConfig) -> dict:
    """What must match for a resume state to be reused (bookkeeping fields may change)."""
    return {k: v for k, v in asdict(cfg).items() if k not in ("log_every", "checkpoint_seconds")}


def train_vib_vim(cfg: VibVimTrainConfig, data_path, out_path, device="auto", progress=True) -> dict:
    """Train one study-A model and write its checkpoint (EMA weights) to ``out_path``.

    Returns the summary stored in the checkpoint (config, train_seconds, loss history).
    """
    out_path = Path(out_path)
    device = resolve_device(device) if isinstance(device, str) else device
    data = load_prepared(data_path, device)
    x_all, y_all = data.splits["train"]
    n = x_all.shape[0]
    steps_per_epoch = n // cfg.batch_size           # the last partial batch is dropped: fixed shapes
    if steps_per_epoch == 0:
        raise ValueError(f"batch_size {cfg.batch_size} is larger than the train split ({n} images) of {data_path}")

    torch.manual_seed(cfg.seed)
    model = StochasticMLP(in_dim=x_all[0].numel(), K=cfg.K, classes=10).to(device)
    params = list(model.parameters())
    # fused Adam: one kernel for all parameters instead of several per tensor (4x faster on CPU)
    opt = torch.optim.Adam(params, lr=cfg.lr, betas=cfg.adam_betas, fused=device.type in ("cpu", "cuda"))
    ema = EMA(params, cfg.ema_decay)
    gen = torch.Generator(device=device).manual_seed(cfg.seed)
    history, start_epoch, seconds_before = [], 0, 0.0

    resume = _resume_path(out_path)
    state = None
    if resume.exists():
        try:
            state = torch.load(resume, map_location=device, weights_only=False)
        except Exception as e:  # written atomically, so this is outside damage: start afresh
            print(f"ignoring {resume}: cannot be read ({e})", flush=True)
    if state is not None:
        if state.get("key") == _resume_key(cfg):
            model.load_state_dict(state["model"])
            opt.load_state_dict(state["opt"])
            ema.load_state_dict(state["ema"])
            gen.set_state(state["gen"].cpu())
            torch.set_rng_state(state["cpu_rng"].cpu())
            if device.type == "cuda" and state.get("cuda_rng") is not None:
                torch.cuda.set_rng_state(state["cuda_rng"].cpu(), device)
            history, start_epoch, seconds_before = state["history"], state["epoch"], state["seconds"]
            print(f"resuming {out_path.name} from epoch {start_epoch} ({resume})", flush=True)
        else:
            print(f"ignoring {resume}: it was written for another configuration", flush=True)

    def save_resume(epoch, seconds):
        save_torch({"key": _resume_key(cfg), "model": model.state_dict(), "opt": opt.state_dict(),
                    "ema": ema.state_dict(), "gen": gen.get_state(), "cpu_rng": torch.get_rng_state(),
                    "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
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
            x, y = to_signed(flatten(x_all[idx])), y_all[idx]   # normalised on the device
            loss, ce, reg = vib_vim_loss(model, x, y, cfg.objective, cfg.beta, cfg.mmd_kernel, cfg.mmd_scales)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            ema.update()
            sums += torch.stack([loss.detach(), ce.detach(), reg.detach()])
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
    bar.close()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    train_seconds = seconds_before + time.perf_counter() - t0

    ema_state = dict(zip([k for k, _ in model.named_parameters()], ema.averaged()))
    summary = {"format": MODEL_FORMAT, "config": asdict(cfg), "train_seconds": train_seconds,
               "history": history, "data": str(data_path), "device": str(device),
               "torch": torch.__version__}
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
