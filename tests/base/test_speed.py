"""The training jobs' speed switches (loop.Speed): the optimised paths compute the plain path's
loss.  torch.compile is checked on the CPU; TF32 only on a CUDA GPU."""

import shutil

import pytest
import torch

from infomax.data import load_prepared
from infomax.loop import Speed, apply_speed
from infomax.vib_vim import train as T

from configs import train_a, train_one

CUDA = torch.cuda.is_available()


def test_defaults_keep_the_cpu_on_plain_float32():
    assert apply_speed(None, torch.device("cpu")) == {"tf32": False, "compile": False}
    assert apply_speed(Speed(compile=True), torch.device("cpu")) == {"tf32": False, "compile": True}
    with pytest.raises(ValueError, match="tf32=True on device cpu"):
        apply_speed(Speed(tf32=True), torch.device("cpu"))


def _steps(loss, batch, cfg, device, n=3):
    """The losses of n training steps of the trainer (a group of one) from cfg's initialisation on one fixed batch."""
    stack, opt, ema, noise = T.build([cfg], 784, device)
    betas = torch.tensor([cfg.beta], device=device)
    x, y = batch
    return torch.stack([T.step(stack, opt, ema, cfg, betas, x, y, noise, loss) for _ in range(n)]).cpu()


@pytest.mark.skipif(shutil.which("g++") is None and shutil.which("c++") is None,
                    reason="torch.compile's CPU backend (inductor) needs a C++ compiler; none on PATH")
@pytest.mark.slow
def test_compiled_step_computes_the_eager_loss(tiny_data, monkeypatch):
    # inductor draws random numbers its own way unless told to call torch's: with fallback_random
    # both paths sample the same z, so the losses must agree up to float32 reassociation (1e-5).
    import torch._inductor.config

    monkeypatch.setattr(torch._inductor.config, "fallback_random", True)
    torch._dynamo.reset()
    cfg = train_a(objective="vib", beta=1e-3, seed=0, K=8, batch_size=20)
    x, y = load_prepared(tiny_data).splits["train"]
    batch = (x[:20], y[:20])
    eager = _steps(T.loss, batch, cfg, torch.device("cpu"))
    compiled = _steps(torch.compile(T.loss), batch, cfg, torch.device("cpu"))
    assert torch.allclose(eager, compiled, rtol=1e-5, atol=1e-6), (eager, compiled)
    assert eager[-1, 0] < eager[0, 0]                      # the steps did train (the comparison is not of constants)


@pytest.mark.skipif(shutil.which("g++") is None and shutil.which("c++") is None,
                    reason="torch.compile's CPU backend (inductor) needs a C++ compiler; none on PATH")
@pytest.mark.slow
def test_training_job_with_compile_records_it(tiny_data, tmp_path):
    cfg = train_a(objective="vib", beta=1e-3, seed=0, K=8, epochs=1, batch_size=20)
    s = train_one(cfg, tiny_data, tmp_path / "m.pt", speed=Speed(compile=True))
    assert s["speed"] == {"tf32": False, "compile": True}
    plain = train_one(cfg, tiny_data, tmp_path / "p.pt")
    assert plain["speed"] == {"tf32": False, "compile": False}
    # inductor samples z its own way here, so only the scale of the loss can be compared
    assert s["history"][0]["ce"] == pytest.approx(plain["history"][0]["ce"], rel=0.05)


@pytest.mark.skipif(not CUDA, reason="TF32 is a CUDA feature: no CUDA GPU here")
def test_tf32_loss_is_close_to_float32(tiny_data):
    # TF32 rounds matmul inputs to a 10-bit mantissa (relative error ~5e-4 per product, float32
    # accumulation): a loss of ~2.3 moves by ~1e-3 relative; 5e-3 leaves room, 1e-7 would not.
    device = torch.device("cuda")
    cfg = train_a(objective="vib", beta=1e-3, seed=0, batch_size=20)
    x, y = load_prepared(tiny_data, device).splits["train"]
    before = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    try:
        assert apply_speed(Speed(tf32=False), device)["tf32"] is False
        fp32 = _steps(T.loss, (x[:20], y[:20]), cfg, device)
        assert apply_speed(None, device)["tf32"] is True          # the CUDA default
        tf32 = _steps(T.loss, (x[:20], y[:20]), cfg, device)
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before
    assert torch.allclose(fp32[:, 0], tf32[:, 0], rtol=5e-3), (fp32, tf32)
