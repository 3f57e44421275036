"""The GPU path, tested on every machine: each study's training step with its tensors faked onto
``cuda`` (tests/fake_cuda.py) makes no host sync, mixes no devices, copies nothing between host and
device and draws no CUDA random number from a CPU generator; and a resume state loaded onto
``cuda`` restores.  Numerics, speed, memory and the kernels inside the backward are not covered
here (a fake tensor has no values, and autograd needs a CUDA context): scripts/gpu_check.sh runs
them on a GPU.
"""

import pytest
import torch
from fake_cuda import CudaGenerator, available, fake_cuda

from configs import train_a, train_b
from infomax.dim_infobal import train as TB
from infomax.loop import DivergenceGuard, restore_rng, rng_state
from infomax.vib_vim import train as TA

OK, WHY = available()
pytestmark = pytest.mark.skipif(not OK, reason=WHY)
CUDA = torch.device("cuda")
SMALL_B = dict(batch_size=16, fc_units=32, local_units=16, global_hidden=16, prior_hidden=(16,), view_dim=8,
               infomin_hidden=8, infomin_units=8)


def images(n, device=CUDA):
    return torch.randint(0, 256, (n, 1, 28, 28), dtype=torch.uint8, device=device)


def study_a_group(objective, precision, seeds):
    """A group of study A on fake cuda as vib_vim.train.train builds it: (cfgs, stack, opt, ema,
    noise, orders, which, betas)."""
    cfgs = [train_a(objective=objective, beta=10.0 ** -(3 + i), seed=s, K=8, batch_size=20, precision=precision)
            for i, s in enumerate(seeds)]
    stack, opt, ema, noise = TA.build(cfgs, 784, CUDA)
    order_seeds = sorted(set(seeds))
    orders = [torch.Generator(device=CUDA).manual_seed(s) for s in order_seeds]
    which = torch.tensor([order_seeds.index(s) for s in seeds], device=CUDA)
    betas = torch.tensor([c.beta for c in cfgs], device=CUDA)
    return cfgs, stack, opt, ema, noise, orders, which, betas


def study_a_steps(rec, objective, precision, seeds, steps=2, guard_step=TA.guard_step):
    """An epoch's start and ``steps`` steps of vib_vim.train.train's loop, recorded."""
    cfgs, stack, opt, ema, noise, orders, which, betas = study_a_group(objective, precision, seeds)
    x_all, y_all = images(100), torch.randint(0, 10, (100,), device=CUDA)
    guard, sums = DivergenceGuard("test", CUDA), torch.zeros(4, len(cfgs), device=CUDA)
    rec.problems.clear()
    calls = rec.calls
    perms = torch.stack([torch.randperm(100, device=CUDA, generator=g) for g in orders])
    for i in range(steps):
        x, y = TA.batch(x_all, y_all, perms, i, cfgs[0].batch_size, which)
        terms = TA.step(stack, opt, ema, cfgs[0], betas, x, y, noise, TA.loss)
        guard_step(guard, terms)
        sums += terms
    assert sums.device.type == "cuda" and rec.calls - calls > 100          # the step ran through the recorder
    return stack, opt, ema, noise, orders


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
@pytest.mark.parametrize("objective", ["deterministic", "vib", "vim"])
@pytest.mark.parametrize("seeds", [(0, 0), (0, 1)], ids=["shared-batch", "batch-per-seed"])
def test_study_a_step_makes_no_sync_no_mix_no_copy(monkeypatch, objective, precision, seeds):
    with fake_cuda(monkeypatch) as rec:
        study_a_steps(rec, objective, precision, seeds)
    assert rec.problems == []


def test_the_recorder_names_a_planted_sync_with_its_line(monkeypatch):
    """A .item() planted in the step is found, with this file and line (the recorder can fail)."""
    def guard_step_with_item(guard, terms):
        terms.sum().item()                                                  # the planted sync
        TA.guard_step(guard, terms)

    with fake_cuda(monkeypatch) as rec:
        with pytest.raises(Exception):                                     # a fake tensor has no value to read
            study_a_steps(rec, "vib", "float32", (0, 0), guard_step=guard_step_with_item)
    assert rec.problems and rec.problems[0].startswith("host sync (a tensor read on the host")
    assert "test_cuda_path.py:" in rec.problems[0]


def test_the_recorder_names_a_device_mix_and_a_cpu_generator(monkeypatch):
    with fake_cuda(monkeypatch) as rec:
        x = torch.ones(3, device=CUDA)
        with pytest.raises(Exception):
            x + torch.ones(3)                                               # a CPU tensor into a CUDA op
        torch.randn(3, device=CUDA, generator=torch._C.Generator())         # the CPU generator a GPU refuses
        x.cpu()
    expected = ["device mix (add.Tensor on cpu, cuda)", "generator on cpu for a draw on cuda", "copy cuda -> cpu of (3,)"]
    assert len(rec.problems) == 3 and all(p.startswith(e) for p, e in zip(rec.problems, expected)), rec.problems
    assert all("test_cuda_path.py:" in p for p in rec.problems)


def _to_cuda(state):
    """A resume state as torch.load(map_location=cuda) gives it: every tensor on cuda."""
    return torch.utils._pytree.tree_map(lambda t: t.to(CUDA) if isinstance(t, torch.Tensor) else t, state)


def test_a_cuda_generator_takes_only_a_cpu_state(monkeypatch):
    """The shim is as strict as a CUDA generator (what made study A's resume crash on a GPU)."""
    with fake_cuda(monkeypatch):
        g = torch.Generator(device=CUDA)
        assert isinstance(g, CudaGenerator) and g.device.type == "cuda"
        g.set_state(g.get_state())
        with pytest.raises(TypeError, match="RNG state must be a torch.ByteTensor"):
            g.set_state(g.get_state().to(CUDA))


@pytest.mark.parametrize("objective", ["vib", "vim"])
def test_study_a_resumes_on_cuda(monkeypatch, objective):
    """vib_vim.train.restore on a state loaded onto cuda (map_location=device), as train() resumes."""
    with fake_cuda(monkeypatch) as rec:
        stack, opt, ema, noise, orders = study_a_steps(rec, objective, "float32", (0, 1))
        state = {"model": stack.state_dict(), "opt": opt.state_dict(), "ema": ema.state_dict(),
                 "noise": [g.get_state() for g in noise], "order": [g.get_state() for g in orders]}
        _, stack2, opt2, ema2, noise2, orders2, _, _ = study_a_group(objective, "float32", (0, 1))
        TA.restore(_to_cuda(state), stack2, opt2, ema2, noise2, orders2)
    assert ema2.steps == ema.steps == 2


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
@pytest.mark.parametrize("kind,estimator,extra", [
    ("dim_g", "jsd", {}), ("dim_l", "dv", {}), ("dim_l", "nce", {}), ("infobal", "jsd", {}),
    ("infobal", "dv", {"views": 4, "infomin": "club", "target": "r"}),
])
def test_study_b_step_makes_no_sync_no_mix_no_copy(monkeypatch, kind, estimator, extra, precision):
    with fake_cuda(monkeypatch) as rec:
        cfg = train_b(kind, estimator, method=kind, precision=precision, **SMALL_B, **extra)
        net, opt, opt_adv = TB.build(cfg, 1, CUDA)
        net.train()
        gen = torch.Generator(device=CUDA).manual_seed(0)
        x_all, bounds = images(64), TB.mi_bounds(estimator, 64)
        guard, sums = DivergenceGuard("test", CUDA), torch.zeros(4, device=CUDA)
        rec.problems.clear()
        calls = rec.calls
        perm = torch.randperm(64, device=CUDA, generator=gen)              # an epoch of dim_infobal.train.train
        for i in range(2):
            x = x_all[perm[i * cfg.batch_size:(i + 1) * cfg.batch_size]]
            terms = TB.step(net, opt, opt_adv, cfg, x, 0.5 * i, gen)
            TB.guard_step(guard, terms, bounds)
            sums += terms
        assert rec.calls - calls > 100
        problems = list(rec.problems)
        # and a resume state of it, loaded onto cuda, restores (loop.restore_rng and the state dicts)
        state = _to_cuda({"model": net.state_dict(), "opt": opt.state_dict(), **rng_state(gen, CUDA)})
        net2, opt2, _ = TB.build(cfg, 1, CUDA)
        net2.load_state_dict(state["model"])
        opt2.load_state_dict(state["opt"])
        restore_rng(state, torch.Generator(device=CUDA), CUDA)
    assert problems == []
