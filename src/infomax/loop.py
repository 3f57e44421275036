"""Training-loop helpers shared by both studies: device, speed switches, the EMA of weights,
resume states, RNG state, and loading a checkpoint with a clear error.

Resume: a state file next to the output (``<model>.pt.resume``) is rewritten atomically every
``checkpoint_seconds``; an interrupted job continues from it when its key matches.
"""

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

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


def resume_path(out: Path) -> Path:
    return out.with_name(out.name + ".resume")


def resume_key(cfg) -> dict:
    """What must match for a resume state to be reused (bookkeeping fields may change)."""
    return {k: v for k, v in asdict(cfg).items() if k not in ("log_every", "checkpoint_seconds")}


def load_resume(resume: Path, key: dict, device) -> dict | None:
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


def rng_state(gen, device) -> dict:
    return {"gen": gen.get_state(), "cpu_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None}


def restore_rng(state, gen, device):
    gen.set_state(state["gen"].cpu())
    torch.set_rng_state(state["cpu_rng"].cpu())
    if device.type == "cuda" and state.get("cuda_rng") is not None:
        torch.cuda.set_rng_state(state["cuda_rng"].cpu(), device)


def finish(bar, device, seconds_before: float, t0: float) -> float:
    """Close the progress bar, wait for the device, and return the training seconds so far."""
    bar.close()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return seconds_before + time.perf_counter() - t0



def load_checkpoint(path, model_format: str, what: str, device="cpu") -> dict:
    """The checkpoint dict at ``path``; errors name the file and what was expected."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"model checkpoint {path} does not exist: run its training job first")
    try:
        ckpt = torch.load(path, map_location=device, weights_only=False)
    except Exception as e:  # truncated or not a torch file
        raise RuntimeError(f"model checkpoint {path} is corrupt or truncated ({e}); delete it and rerun") from e
    if not isinstance(ckpt, dict) or ckpt.get("format") != model_format:
        raise RuntimeError(f"{path} is not a {what} checkpoint (expected format {model_format!r})")
    return ckpt
