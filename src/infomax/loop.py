"""Training-loop helpers shared by both studies: device, speed switches, the EMA of weights,
resume states, RNG state, and loading a checkpoint with a clear error.

Resume: a state file (``<model>.pt.resume`` next to a solo output, ``<group>.resume`` for a stacked
group) is rewritten atomically every
``checkpoint_seconds``; an interrupted job continues from it when its key matches: the resume
format, the model format, the prepared data file's content hash and the configuration.

Divergence: ``DivergenceGuard`` accumulates per-step checks on the device (no host sync) and is read
at the logging points, so a diverged run stops with an error naming the run, the check and the
first offending step instead of writing a model.
"""

import hashlib
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from .files import DamagedFile, load_torch, rebuild_command, remove_orphans, save_torch

# Version of the resume state's layout: bump it when a loop saves something new, so that an older
# state is ignored (with a message) instead of half-loaded.
RESUME_FORMAT = "infomax-resume-v3"

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
        # every batch has one shape (the last partial batch is dropped), so cuDNN's choice of
        # convolution algorithm, timed once per shape, pays off (study B's encoder)
        torch.backends.cudnn.benchmark = True
    return {"tf32": tf32, "compile": bool(speed.compile)}


def maybe_compile(fn, used: dict, device=None):
    """``fn`` compiled with torch.compile when ``used["compile"]``, else ``fn`` itself.  On CUDA in
    mode "reduce-overhead" (CUDA graphs: one launch for the whole graph): a study-A step is
    launch-bound there (150-180 aten ops for ~0.1 ms of compute), and the steps' forward and loss
    are one graph each (tests/base/test_speed.py).  Not yet run on a GPU: scripts/gpu_check.sh
    measures it."""
    if not used["compile"]:
        return fn
    cuda = device is not None and torch.device(device).type == "cuda"
    return torch.compile(fn, mode="reduce-overhead") if cuda else torch.compile(fn)


PRECISIONS = ("float32", "bfloat16")               # what a job trains in
PRECISION_CHOICES = ("auto", *PRECISIONS)           # what a config may ask for (auto: resolve_precision)

# oneDNN runs the CPU's bfloat16 matmuls; ONEDNN_MAX_CPU_ISA (or its old name DNNL_MAX_CPU_ISA) caps
# the instructions it may use.  These caps still allow native bfloat16 (AVX-512 BF16 and later).
_ONEDNN_BF16_ISAS = ("AVX512_CORE_BF16", "AVX512_CORE_FP16", "AVX512_CORE_AMX", "AVX512_CORE_AMX_FP16",
                     "AVX10_1_512", "AVX10_1_512_AMX", "AVX10_1_512_AMX_FP16", "AVX10_2_512", "AVX10_2_512_AMX_2",
                     "ALL", "DEFAULT")


def cpu_features() -> dict:
    """What decides native bfloat16 on this CPU: the hardware's BF16 instructions (AVX-512 BF16,
    AMX-BF16) and oneDNN's instruction cap (ONEDNN_MAX_CPU_ISA), if any: oneDNN runs the bfloat16
    matmuls.  (ATen's own vector level, ``aten``, is reported but decides nothing: measured on an
    AVX-512 BF16 EPYC, ATEN_CPU_CAPABILITY=avx2 left a 512x512 bfloat16 matmul at 177 GFLOP/s,
    ONEDNN_MAX_CPU_ISA=AVX2 took it to 2 GFLOP/s, float32 82.)"""
    caps = torch.cpu.get_capabilities() if hasattr(torch.cpu, "get_capabilities") else {}
    avx512_bf16 = caps.get("avx512_bf16", getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)())
    return {"name": caps.get("cpu_name", "this CPU"), "avx512_bf16": bool(avx512_bf16),
            "amx_bf16": bool(caps.get("amx_bf16", False)), "aten": torch.backends.cpu.get_cpu_capability(),
            "onednn_isa": os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA")}


def native_bfloat16(device: torch.device) -> tuple[bool, str]:
    """(whether ``device`` computes bfloat16 matmuls natively, why, in words).  A CUDA device that
    supports bfloat16 (Ampere and later); a CPU with AVX-512 BF16 or AMX-BF16 that ATen and oneDNN
    are allowed to use.  Anything else emulates bfloat16: on an AVX2 CPU a bfloat16 matmul ran
    30-90x slower than float32 (docs/speed.md)."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        if torch.cuda.is_bf16_supported(including_emulation=False):
            return True, f"{name} computes bfloat16 natively"
        return False, f"{name} has no native bfloat16 (before Ampere)"
    if device.type != "cpu":
        return False, f"device {device.type}: native bfloat16 is known for cpu and cuda only"
    f = cpu_features()
    have = [n for n, k in (("AVX-512 BF16", "avx512_bf16"), ("AMX-BF16", "amx_bf16")) if f[k]]
    if not have:
        return False, f"{f['name']} has neither AVX-512 BF16 nor AMX: bfloat16 would be emulated"
    isa = (f["onednn_isa"] or "DEFAULT").upper()
    if isa not in _ONEDNN_BF16_ISAS:
        return False, (f"{f['name']} has {' and '.join(have)}, but ONEDNN_MAX_CPU_ISA={isa} keeps oneDNN "
                       f"below AVX512_CORE_BF16: bfloat16 would be emulated")
    return True, f"{f['name']} has {' and '.join(have)}"


def resolve_precision(requested: str, device: torch.device) -> tuple[str, str]:
    """(the precision a job trains in, why): ``auto`` is bfloat16 where ``device`` computes it
    natively and float32 elsewhere; ``float32`` and ``bfloat16`` are taken as asked (bfloat16 on a
    device that emulates it runs, slowly, and the reason says so)."""
    if requested not in PRECISION_CHOICES:
        raise ValueError(f"precision {requested!r}: expected one of {', '.join(PRECISION_CHOICES)}")
    if requested == "float32":
        return "float32", "asked for (precision: float32)"
    native, why = native_bfloat16(device)
    if requested == "bfloat16":
        return "bfloat16", "asked for (precision: bfloat16)" + ("" if native else f"; {why}: expect it many times slower")
    return ("bfloat16" if native else "float32"), f"precision auto: {why}"


def autocast(device: torch.device, precision: str):
    """The training precision as a context: ``float32`` (autocast off) or ``bfloat16`` (autocast
    of matmuls and convolutions to bfloat16 on the CPU or CUDA; weights, optimiser state,
    reductions and losses stay float32).  ``auto`` must be resolved first (``resolve_precision``)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r}: expected one of {', '.join(PRECISIONS)} "
                         f"(auto is resolved per job by infomax.loop.resolve_precision)")
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bfloat16")


def resolve_device(spec: str = "auto") -> torch.device:
    """The job's device: ``auto`` is CUDA when torch sees a GPU, else the CPU.  On a machine with
    several GPUs a job takes the one with the fewest jobs (``infomax.gpus.pick_gpu``: without it
    every job would run on cuda:0)."""
    if spec == "auto" and not torch.cuda.is_available():
        return torch.device("cpu")
    if spec == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' was requested but torch sees no CUDA GPU (use device: auto or cpu)")
    if spec in ("auto", "cuda"):
        from .gpus import pick_gpu

        device = torch.device("cuda", pick_gpu(torch.cuda.device_count()))
        torch.cuda.set_device(device)
        return device
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


def device_batches(n: int, batch_size: int, device, gen):
    """Index batches as the training loops draw them, forever: slices of a fresh permutation of
    ``range(n)`` on the device every epoch (the bench feeds the studies' steps with it)."""
    while True:
        perm = torch.randperm(n, device=device, generator=gen)
        for i in range(n // batch_size):
            yield perm[i * batch_size:(i + 1) * batch_size]


def resume_path(out: Path) -> Path:
    return out.with_name(out.name + ".resume")


def file_digest(path, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file's bytes (the prepared data's identity in a resume key)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def resume_config(cfg) -> dict:
    """The part of a job's configuration a resume state must match (bookkeeping fields may change)."""
    return {k: v for k, v in asdict(cfg).items() if k not in ("log_every", "checkpoint_seconds")}


def resume_key(config, data_path, model_format: str, device) -> dict:
    """What must match for a resume state to be reused: the resume format, the model format, the
    kind of device (a CUDA generator's state cannot seed a CPU generator, nor the other way round),
    the prepared data file's content hash, and the configuration: a step dataclass, or what
    ``resume_config`` made of one (a list of them for a group of models)."""
    if not isinstance(config, (dict, list)):
        config = resume_config(config)
    return {"format": RESUME_FORMAT, "model_format": model_format, "device": torch.device(device).type,
            "data_sha256": file_digest(data_path), "config": config}


def _key_mismatch(found, key: dict) -> str:
    """Why the resume key ``found`` does not match ``key``, in words (empty when it matches)."""
    if not isinstance(found, dict) or found.get("format") != key["format"]:
        old = found.get("format") if isinstance(found, dict) else None
        return f"it has resume format {old!r}, this code writes {key['format']!r}"
    if found.get("model_format") != key["model_format"]:
        return f"it was written for model format {found.get('model_format')!r}, not {key['model_format']!r}"
    if found.get("device") != key["device"]:
        return (f"it was written on a {found.get('device')} device, this job runs on {key['device']} "
                f"(random-number states do not carry over between kinds of device)")
    if found.get("data_sha256") != key["data_sha256"]:
        return "it was written for other prepared data (the data file's content hash differs)"
    if found.get("config") != key["config"]:
        a, b = found.get("config") or {}, key["config"]
        if isinstance(b, list):                    # a group: its models' configurations
            if not isinstance(a, list) or len(a) != len(b):
                return f"it was written for another group (not these {len(b)} models)"
            pairs = [(x, y) for x, y in zip(a, b) if x != y]
            a, b = pairs[0] if pairs else ({}, {})
        a = a if isinstance(a, dict) else {}
        diff = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
        return f"it was written for another configuration (differs in: {', '.join(diff)})"
    return ""


def load_resume(resume: Path, key: dict, device) -> dict | None:
    """The resume state at ``resume`` if it exists, reads and was written for ``key``; else None
    (with a message naming why it was ignored)."""
    if not resume.exists():
        return None
    try:
        state = load_torch(resume, "training starts afresh", map_location=device)
    except DamagedFile as e:  # written atomically, so this is outside damage: start afresh
        print(f"ignoring {e}", flush=True)
        return None
    why = _key_mismatch(state.get("key") if isinstance(state, dict) else None, key)
    if why:
        print(f"ignoring {resume}: {why}", flush=True)
        return None
    return state


class DivergenceGuard:
    """Divergence checks of one training run, accumulated on the device and read at logging points.

    ``check(name, value, bad, what)`` takes a 0-d bool tensor ``bad`` (and the value it judged) and
    ORs it into a flag on the device: no host sync, so it can run every step.  The first offending
    step and value of each check are kept.  ``raise_if_diverged`` reads the flags (one host sync)
    and raises ``TrainingDiverged`` naming the run, the check and where it first tripped.
    ``fail`` is for checks made on the host at a logging point (values already read)."""

    def __init__(self, run: str, device="cpu"):
        self.run = run
        self.device = torch.device(device)
        self.steps = torch.zeros((), dtype=torch.int64, device=self.device)     # steps seen (device counter)
        self.checks: dict[str, list] = {}                                        # name -> [flag, value, step, what]
        self.reference: dict[str, torch.Tensor] = {}                             # reference scales (resumed)

    def tick(self):
        """Count one training step (call after its checks)."""
        self.steps += 1

    def check(self, name: str, value: torch.Tensor, bad: torch.Tensor, what: str):
        c = self.checks.get(name)
        if c is None:
            z = torch.zeros((), device=self.device)
            c = self.checks[name] = [torch.zeros((), dtype=torch.bool, device=self.device), z, self.steps.clone(), what]
        new = bad & ~c[0]
        c[1] = torch.where(new, value.detach().to(torch.float32).reshape(()), c[1])
        c[2] = torch.where(new, self.steps + 1, c[2])
        c[0] = c[0] | bad

    def check_finite(self, name: str, values: torch.Tensor, what: str):
        bad = ~torch.isfinite(values).all()
        self.check(name, values.sum(), bad, what)

    def set_reference(self, name: str, value: torch.Tensor):
        """Keep ``value`` (on the device) as the reference scale ``name`` unless one is already kept."""
        if name not in self.reference:
            self.reference[name] = value.detach().clone()

    def fail(self, epoch: int, what: str):
        raise TrainingDiverged(f"{self.run}: training diverged at epoch {epoch}: {what}; "
                               f"no model was written (lower the learning rate, train.lr, and rerun)")

    def raise_if_diverged(self, epoch: int):
        if not self.checks:
            return
        names = list(self.checks)
        flags = torch.stack([self.checks[n][0] for n in names]).tolist()        # the one host sync
        if not any(flags):
            return
        parts = []
        for n, f in zip(names, flags):
            if f:
                _, value, step, what = self.checks[n]
                parts.append(f"{what} (first at step {int(step)}: {float(value):.4g})")
        self.fail(epoch, "; ".join(parts))

    def state_dict(self) -> dict:
        return {"reference": dict(self.reference)}

    def load_state_dict(self, state: dict):
        self.reference = {k: v.to(self.device) for k, v in state["reference"].items()}


class TrainingDiverged(FloatingPointError):
    """A training run's loss or estimate left every value a working run can have."""


def rng_state(gen, device) -> dict:
    return {"gen": gen.get_state(), "cpu_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None}


def restore_rng(state, gen, device):
    """Put the generator states of ``rng_state`` back.  Every ``set_state`` takes a CPU byte tensor,
    a CUDA generator's too, while a resume state is loaded with map_location=device."""
    gen.set_state(state["gen"].cpu())
    torch.set_rng_state(state["cpu_rng"].cpu())
    if device.type == "cuda" and state.get("cuda_rng") is not None:
        torch.cuda.set_rng_state(state["cuda_rng"].cpu(), device)


class Session:
    """The skeleton every training loop shares: its resume state, divergence guard, timer and
    progress bar.  A loop builds its model, opens a session (which reads a matching resume state,
    ``state``), restores its own parts from ``state``, iterates ``epochs()``, calls ``checkpoint``
    after each epoch and ``finish`` at the end, then writes its outputs and calls ``done``.

    Every resume write first reads the guard's flags: a run that diverged since the last logging
    point raises ``TrainingDiverged`` instead of keeping a diverged state to resume from."""

    def __init__(self, resume, key: dict, run: str, device, checkpoint_seconds: float, resumable: bool = True):
        self.resume = Path(resume)
        remove_orphans(self.resume)                    # temps of a killed earlier attempt
        self.key, self.device, self.every = key, device, checkpoint_seconds
        self.guard = DivergenceGuard(run, device)
        self.state = load_resume(self.resume, key, device) if resumable else None
        self.start_epoch, self.seconds_before = 0, 0.0
        if self.state is not None:
            self.guard.load_state_dict(self.state["guard"])
            self.start_epoch, self.seconds_before = self.state["epoch"], self.state["seconds"]
            print(f"resuming {run} from epoch {self.start_epoch} ({self.resume})", flush=True)

    def epochs(self, total: int, desc: str, progress: bool):
        """The epochs still to train, as a progress bar (the timer starts here)."""
        self.total = total
        self.t0 = self.last = time.perf_counter()
        self.bar = tqdm(range(self.start_epoch, total), desc=desc, disable=not progress or total == 0,
                        mininterval=2.0, initial=self.start_epoch, total=total)
        return self.bar

    def seconds(self) -> float:
        return self.seconds_before + time.perf_counter() - self.t0

    def checkpoint(self, epoch: int, state):
        """After ``epoch`` epochs: write the resume state (``state()``: the loop's own parts) when
        ``checkpoint_seconds`` have passed since the last write and epochs remain."""
        now = time.perf_counter()
        if now - self.last > self.every and epoch < self.total:
            self.guard.raise_if_diverged(epoch)        # never keep a diverged state
            save_torch({"key": self.key, **state(), "guard": self.guard.state_dict(), "epoch": epoch,
                        "seconds": self.seconds()}, self.resume)
            self.last = now

    def finish(self) -> float:
        """Close the progress bar, wait for the device, and return the training seconds."""
        self.bar.close()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return self.seconds()

    def done(self):
        """The outputs are written: the resume state is no longer needed."""
        self.resume.unlink(missing_ok=True)



def load_checkpoint(path, model_format: str, what: str, device="cpu", output=None, older=(), data=None) -> dict:
    """The checkpoint dict at ``path``, its content digest checked; errors name the file, what was
    expected and the command that rebuilds ``output`` (the workflow output holding it; default
    ``path`` itself).  ``older``: earlier names of the same format, still read.  ``data``: (the
    prepared data file it is to be used with, that file's ``file_digest``): the checkpoint must
    have been trained on exactly those bytes."""
    path = Path(path)
    rebuild = rebuild_command(output or path)
    if not path.exists():
        raise FileNotFoundError(f"model checkpoint {path} does not exist; {rebuild}")
    ckpt = load_torch(path, rebuild, map_location=device)
    if ckpt.get("format") != model_format and ckpt.get("format") not in older:
        raise RuntimeError(f"{path} is not a {what} checkpoint (expected format {model_format!r}); {rebuild}")
    if data is not None:
        data_path, digest = data
        trained = ckpt.get("data_sha256")
        if trained is None:
            raise RuntimeError(f"{path} records no digest of the data it was trained on (written by an older "
                               f"infomax), so it cannot be checked against {data_path}; {rebuild}")
        if trained != digest:
            raise RuntimeError(
                f"{path} was trained on other data than {data_path}: it records data SHA-256 {trained[:16]}… "
                f"(trained from {ckpt.get('data')}), {data_path} has {digest[:16]}… (it was copied over or "
                f"rebuilt since); nothing was evaluated.  If {data_path} is right, {rebuild}; if not, "
                f"{rebuild_command(data_path)}")
    return ckpt
