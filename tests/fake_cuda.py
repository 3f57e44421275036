"""The CUDA path on a machine without a GPU: tensors faked onto ``cuda`` and a recorder of every
aten call that a GPU would pay for in a training step.

``fake_cuda()`` enters torch's ``FakeTensorMode`` (tensors carry shape, dtype and device, no data)
with a few shims, then ``Recorder``, a ``TorchDispatchMode`` that sees each aten call before the
fake kernel runs it and notes, with the project file and line that made it:

  host sync        the host waits for the device: ``.item()``/``float()``/``bool()`` of a tensor
                   (aten._local_scalar_dense), ``nonzero``, ``masked_select``, boolean-mask indexing
                   (their output size depends on the values);
  device mix       one call's tensors on both devices (a 0-d CPU tensor is allowed: CUDA takes it
                   as a scalar);
  copy             a tensor copied between the host and the device;
  generator        a random draw on ``cuda`` with a CPU generator (a GPU refuses it).

Shims, each standing in for what a CPU-only torch cannot do:
  - ``torch.Generator(device="cuda")`` needs a CUDA driver: ``CudaGenerator`` is a CPU generator
    that says it is on cuda and, like a CUDA generator, takes only a CPU byte tensor in
    ``set_state``; ``torch.cuda.get_rng_state`` / ``set_rng_state`` likewise, and
    ``torch.set_rng_state`` checks its state the same way without setting it (a fake tensor has no
    bytes to set);
  - autocast's "is CUDA there" check says yes, so autocast to bfloat16 is on for ``cuda`` as on a
    GPU (``torch.cuda.is_available`` itself stays False: the fake tensors rely on it);
  - ``Module.to("cuda")`` under the fake mode cannot swap a parameter's storage: the shim
    replaces each parameter and buffer by its fake copy on the device;
  - ``Tensor.backward`` needs a CUDA context: the shim gives every parameter of every optimiser
    built inside the context a zero gradient of its shape and device, so the optimiser step runs.

What this cannot cover: numerics (a fake tensor has no values), speed, memory, kernel choice, and
anything inside the backward (its kernels and any sync they would make).  Those need a GPU:
scripts/gpu_check.sh.
"""

import contextlib
import os
import traceback

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

SRC = os.sep + os.path.join("src", "infomax") + os.sep
aten = torch.ops.aten
SYNCS = {aten._local_scalar_dense.default: "host sync (a tensor read on the host: .item(), float(), bool())",
         aten.nonzero.default: "host sync (nonzero: its size depends on the values)",
         aten.masked_select.default: "host sync (masked_select: its size depends on the values)"}
COPIES = {aten._to_copy.default, aten.copy_.default}


def available() -> tuple[bool, str]:
    """(whether this torch can fake CUDA tensors, why not)."""
    try:
        from torch._subclasses.fake_tensor import FakeTensorMode

        with FakeTensorMode():
            torch.empty(2, device="cuda") + 1
    except Exception as e:  # an older or a CPU-only build without the CUDA dispatch keys
        return False, f"this torch cannot fake CUDA tensors ({type(e).__name__}: {e})"
    return True, ""


def _where() -> str:
    """The innermost frame of the project (src/infomax, or a test) that made the current call."""
    for f in reversed(traceback.extract_stack()[:-2]):
        if SRC in f.filename or (os.sep + "tests" + os.sep in f.filename and not f.filename.endswith("fake_cuda.py")):
            return f"{f.filename.split(os.sep + 'src' + os.sep)[-1].split(os.sep + 'tests' + os.sep)[-1]}:{f.lineno}"
    return "?"


class Recorder(TorchDispatchMode):
    """Every aten call of the block, and the problems found (``problems``: "what at file:line")."""

    def __init__(self):
        super().__init__()
        self.calls, self.problems = 0, []

    def flag(self, what):
        self.problems.append(f"{what} at {_where()}")

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        self.calls += 1
        tensors = [t for t in tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)]
        if func in SYNCS:
            self.flag(SYNCS[func])
        if func is aten.index.Tensor and any(i is not None and i.dtype == torch.bool for i in args[1]):
            self.flag("host sync (boolean-mask indexing: its size depends on the values)")
        devices = {t.device.type for t in tensors if not (t.device.type == "cpu" and t.dim() == 0)}
        if len(devices) > 1 and func not in COPIES:
            self.flag(f"device mix ({func.__name__} on {', '.join(sorted(devices))})")
        out = func(*args, **kwargs)
        if func in COPIES:
            src = args[1] if func is aten.copy_.default else args[0]
            dst = args[0] if func is aten.copy_.default else out
            if isinstance(src, torch.Tensor) and isinstance(dst, torch.Tensor) and src.device.type != dst.device.type:
                self.flag(f"copy {src.device.type} -> {dst.device.type} of {tuple(src.shape)}")
        gen = kwargs.get("generator")
        on_cuda = any(t.device.type == "cuda" for t in tree_leaves(out) if isinstance(t, torch.Tensor))
        if gen is not None and on_cuda and not gen.initial_seed() & MARK:
            self.flag(f"generator on {gen.device.type} for a draw on cuda ({func.__name__})")
        return out


# A generator reaches aten as a new Python object of the base class, so a CudaGenerator is known
# there by its seed: every seed it takes is marked with this bit (values do not matter under the
# fake mode).
MARK = 1 << 62


class CudaGenerator(torch._C.Generator):
    """A stand-in for ``torch.Generator(device="cuda")``: draws come from a CPU generator (values
    do not matter under the fake mode); ``set_state`` accepts only what a CUDA generator accepts."""

    def __init__(self):
        super().__init__()
        super().manual_seed(MARK)

    @property
    def device(self):
        return torch.device("cuda", 0)

    def manual_seed(self, seed):
        super().manual_seed(MARK | int(seed))
        return self

    def set_state(self, state):
        check_cuda_state(state)
        if not isinstance(state, torch._subclasses.fake_tensor.FakeTensor):
            super().set_state(state)
        return self


def check_cuda_state(state):
    """What a CUDA generator's (or ``torch.cuda.set_rng_state``'s) state must be."""
    if not isinstance(state, torch.Tensor) or state.device.type != "cpu" or state.dtype != torch.uint8:
        where = getattr(state, "device", type(state).__name__)
        raise TypeError(f"RNG state must be a torch.ByteTensor (a CPU uint8 tensor); got one on {where}")


class _Generator(torch._C.Generator):
    """``torch.Generator`` inside the context: a CudaGenerator for a cuda device, else a real one."""

    def __new__(cls, device=None):
        if device is not None and torch.device(device).type == "cuda":
            return CudaGenerator()
        return torch._C.Generator(device) if device is not None else torch._C.Generator()


def _module_to(self, *args, **kwargs):
    device = torch._C._nn._parse_to(*args, **kwargs)[0]
    for m in self.modules():
        for k, p in m._parameters.items():
            if p is not None:
                m._parameters[k] = torch.nn.Parameter(p.detach().to(device), requires_grad=p.requires_grad)
        for k, b in m._buffers.items():
            if b is not None:
                m._buffers[k] = b.to(device)
    return self


@contextlib.contextmanager
def fake_cuda(monkeypatch):
    """Fake CUDA tensors and the shims (module docstring); yields the Recorder of the block."""
    from torch._subclasses.fake_tensor import FakeTensorMode

    params = []
    real_adam_init = torch.optim.Adam.__init__

    def adam_init(self, ps, *a, **kw):
        ps = list(ps)
        params.extend(ps)
        real_adam_init(self, ps, *a, **kw)

    def backward(self, *a, **kw):      # no CUDA context for autograd: zero gradients instead
        for p in params:
            if p.requires_grad:
                p.grad = torch.zeros_like(p)

    cuda_state = {"state": torch.zeros(16, dtype=torch.uint8)}
    monkeypatch.setattr(torch, "Generator", _Generator)
    monkeypatch.setattr(torch.cuda.amp.common, "amp_definitely_not_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)
    monkeypatch.setattr(torch.cuda, "get_rng_state", lambda device="cuda": cuda_state["state"].clone())
    monkeypatch.setattr(torch.cuda, "set_rng_state",
                        lambda state, device="cuda": (check_cuda_state(state), cuda_state.update(state=state)))
    # the global CPU generator's state, restored from a fake tensor (no data): checked, not set
    monkeypatch.setattr(torch, "set_rng_state", lambda state: check_cuda_state(state))
    monkeypatch.setattr(torch.nn.Module, "to", _module_to)
    monkeypatch.setattr(torch.optim.Adam, "__init__", adam_init)
    monkeypatch.setattr(torch.Tensor, "backward", backward)
    rec = Recorder()
    with FakeTensorMode(allow_non_fake_inputs=True), rec:
        yield rec
