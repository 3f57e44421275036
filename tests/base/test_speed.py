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
def test_compiled_step_computes_the_eager_loss(tiny_data):
    # the noise is drawn outside the compiled loss (train.draw_noise), so both paths sample the
    # same z: the losses must agree up to float32 reassociation (1e-5).
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
    # the same noise either way (drawn outside the compiled loss): the epoch's loss agrees up to
    # float32 reassociation, accumulated over its steps
    assert s["history"][0]["ce"] == pytest.approx(plain["history"][0]["ce"], rel=1e-4)


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


# --- precision: auto -----------------------------------------------------------------------------
# bfloat16 where the device computes it natively, float32 elsewhere.  The CPU's features are
# mocked both ways (loop.cpu_features), so the choice is tested on every machine.

NATIVE_CPU = {"name": "Test CPU", "avx512_bf16": True, "amx_bf16": False, "aten": "AVX512", "onednn_isa": None}
AVX2_CPU = {**NATIVE_CPU, "avx512_bf16": False, "aten": "AVX2"}


@pytest.mark.parametrize("features,expected,why", [
    (NATIVE_CPU, "bfloat16", "Test CPU has AVX-512 BF16"),
    ({**NATIVE_CPU, "avx512_bf16": False, "amx_bf16": True}, "bfloat16", "Test CPU has AMX-BF16"),
    (AVX2_CPU, "float32", "Test CPU has neither AVX-512 BF16 nor AMX: bfloat16 would be emulated"),
    ({**NATIVE_CPU, "onednn_isa": "AVX2"}, "float32", "ONEDNN_MAX_CPU_ISA=AVX2 keeps oneDNN below AVX512_CORE_BF16"),
    ({**NATIVE_CPU, "onednn_isa": "avx512_core_amx"}, "bfloat16", "Test CPU has AVX-512 BF16"),
])
def test_auto_precision_follows_the_cpu(monkeypatch, features, expected, why):
    from infomax import loop

    monkeypatch.setattr(loop, "cpu_features", lambda: features)
    precision, reason = loop.resolve_precision("auto", torch.device("cpu"))
    assert precision == expected and reason.startswith("precision auto: ") and why in reason


def test_an_explicit_precision_is_kept_and_emulation_is_named(monkeypatch):
    from infomax import loop

    cpu = torch.device("cpu")
    for features in (NATIVE_CPU, AVX2_CPU):
        monkeypatch.setattr(loop, "cpu_features", lambda: features)
        assert loop.resolve_precision("float32", cpu) == ("float32", "asked for (precision: float32)")
        assert loop.resolve_precision("bfloat16", cpu)[0] == "bfloat16"
    assert "emulated: expect it many times slower" in loop.resolve_precision("bfloat16", cpu)[1]
    with pytest.raises(ValueError, match="precision 'fp16': expected one of auto, float32, bfloat16"):
        loop.resolve_precision("fp16", cpu)
    with pytest.raises(ValueError, match="auto is resolved per job"):
        loop.autocast(cpu, "auto")


def test_auto_precision_on_cuda_asks_the_device(monkeypatch):
    from infomax import loop

    monkeypatch.setattr(torch.cuda, "get_device_name", lambda d=None: "Test GPU")
    for supported, expected in ((True, "bfloat16"), (False, "float32")):
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True, s=supported: s)
        assert loop.resolve_precision("auto", torch.device("cuda"))[0] == expected


def test_the_real_cpu_and_onednn_cap_decide(monkeypatch):
    """Without a mock: ONEDNN_MAX_CPU_ISA=AVX2 (how an AVX-512 machine stands in for an AVX2 one)
    always reads as emulated; the machine's own answer names its CPU."""
    from infomax import loop

    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    assert loop.resolve_precision("auto", torch.device("cpu"))[0] == "float32"


@pytest.mark.parametrize("features,expected", [(NATIVE_CPU, "bfloat16"), (AVX2_CPU, "float32")])
def test_a_job_resolves_auto_once_and_records_it(tiny_data, tmp_path, monkeypatch, capsys, features, expected):
    """Study A and study B: the checkpoint's config holds the precision that ran, and its summary
    what was asked and why; the job's log says it."""
    from infomax import loop
    from infomax.dim_infobal.train import train as train_b_job

    from configs import train_b

    monkeypatch.setattr(loop, "cpu_features", lambda: features)
    a = train_one(train_a(objective="vib", K=4, epochs=1, batch_size=20, precision="auto"), tiny_data, tmp_path / "a.pt")
    b = train_b_job(train_b("dim_l", "jsd", method="dim_l", epochs=1, batch_size=16, fc_units=32, local_units=16,
                            global_hidden=16, prior_hidden=(16,), curve_probe_images=40, curve_probe_epochs=1,
                            precision="auto"),
                    tiny_data, tmp_path / "b.pt", device="cpu", progress=False)
    for s in (a, b):
        assert s["config"]["precision"] == expected
        assert s["precision"]["asked"] == "auto" and s["precision"]["used"] == expected
        assert s["precision"]["why"].startswith("precision auto: Test CPU")
    assert capsys.readouterr().out.count(f"training in {expected} on cpu (precision auto: Test CPU") == 2


# --- torch.compile: one graph per step ------------------------------------------------------------
# Dynamo breaks a graph at every random draw with an explicit generator; the steps draw their noise
# before the compiled function (vib_vim.train.draw_noise, dim_infobal.train.draw_prior), so the
# forward and loss of every objective and kind are one graph (measured before that change: a VIM
# group of 2 gave 5 graphs, DIM(L) with its prior 4).  CUDA graphs (mode="reduce-overhead") need it.

@pytest.mark.slow
@pytest.mark.parametrize("objective", ["deterministic", "vib", "vim"])
def test_study_a_loss_compiles_to_one_graph(objective):
    cpu = torch.device("cpu")
    cfgs = [train_a(objective=objective, beta=1e-3, seed=s, K=8, batch_size=20) for s in (0, 1)]
    stack, _, _, noise = T.build(cfgs, 784, cpu)
    x, y = torch.randint(0, 255, (2, 20, 784), dtype=torch.uint8), torch.randint(0, 10, (2, 20))
    torch._dynamo.reset()
    e = torch._dynamo.explain(T.loss)(stack, cfgs[0], torch.tensor([1e-3, 1e-3]), x, y,
                                      *T.draw_noise(objective, noise, 20, 8, cpu))
    assert (e.graph_count, e.graph_break_count) == (1, 0), e.break_reasons


@pytest.mark.slow
@pytest.mark.parametrize("kind,estimator,extra", [
    ("dim_g", "jsd", {}), ("dim_l", "dv", {}), ("infobal", "nce", {}),
    ("infobal", "jsd", {"views": 4, "infomin": "club", "target": "r"}),
])
def test_study_b_forward_compiles_to_one_graph(kind, estimator, extra):
    from infomax.dim_infobal import train as TB

    from configs import train_b

    cpu = torch.device("cpu")
    cfg = train_b(kind, estimator, method=kind, batch_size=16, fc_units=32, local_units=16, global_hidden=16,
                  prior_hidden=(16,), view_dim=8, infomin_hidden=8, infomin_units=8, **extra)
    net, _, _ = TB.build(cfg, 1, cpu)
    x = torch.randint(0, 255, (16, 1, 28, 28), dtype=torch.uint8)
    prior = TB.draw_prior(cfg, 16, cpu, torch.Generator().manual_seed(0))
    assert (prior is not None) == (kind != "infobal")            # DIM's prior matching draws; InfoBal does not
    torch._dynamo.reset()
    e = torch._dynamo.explain(TB.forward)(net, cfg, x, 0.5, prior)
    assert (e.graph_count, e.graph_break_count) == (1, 0), e.break_reasons
