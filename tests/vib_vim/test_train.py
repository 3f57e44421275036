"""Study A's one trainer (``vib_vim.train``): a group of models trained as one stacked model.

Each model of a group is the model a plain one-model loop over the readable definition
(``model.StochasticMLP``, ``objectives.vib_vim_loss``) gives: the same initialisation, data order
and noise draws, so weights agree within float rounding, per objective and for K = 2.  Then:
checkpoints, determinism, resume, divergence, bad input, the CLI steps."""

import json
import subprocess
import sys
from dataclasses import asdict

import pytest
import torch
from configs import PAPER, eval_a, native_bf16_only, train_a, train_one

from infomax.data import flatten, load_prepared, to_signed
from infomax.files import save_torch
from infomax.loop import EMA, TrainingDiverged, resume_config, resume_key
from infomax.vib_vim import runs as R
from infomax.vib_vim import train as T
from infomax.vib_vim.evaluate import evaluate
from infomax.vib_vim.model import StochasticMLP
from infomax.vib_vim.objectives import vib_vim_loss

# Rounding only: a batched matmul sums in another order than nn.Linear's.  Adam divides by the
# gradient's running scale, so where a gradient is near zero a rounding difference can flip that
# element's update: an element may differ by up to one step (lr) while the tensor as a whole
# agrees to ~1e-6.  Measured over 10 steps (one epoch of 200 images), one thread as the rules run:
# relative norm of the difference <= 1.6e-6 per tensor, largest element 4.5e-5 (lr = 3e-4).
# Longer runs of some settings are chaotic: a one-model run itself moves by 10% (relative norm)
# between 1 and 2 threads after 30 steps, so longer comparisons would test the chaos, not the code.
LR = 3e-4
REL = 1e-5


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def small(objective="vib", beta=1e-3, seed=0, K=4, epochs=1, **kw):
    return train_a(objective, beta, seed, K, **{"epochs": epochs, "batch_size": 20, "lr": LR, "ema_decay": 0.9, **kw})


def reference(cfg, data_path):
    """The readable one-model loop: StochasticMLP and vib_vim_loss, its noise from the global RNG.
    Returns the EMA weights (a StochasticMLP state_dict) and the mean loss of each epoch."""
    x_all, y_all = load_prepared(data_path).splits["train"]
    n, B = x_all.shape[0], cfg.batch_size
    torch.manual_seed(cfg.seed)
    model = StochasticMLP(in_dim=784, K=cfg.K, classes=10)
    params = list(model.parameters())
    opt = torch.optim.Adam(params, lr=cfg.lr, betas=cfg.adam_betas, fused=True)
    ema = EMA(params, cfg.ema_decay)
    order = torch.Generator().manual_seed(cfg.seed)
    losses = []
    for epoch in range(cfg.epochs):
        for g in opt.param_groups:
            g["lr"] = cfg.lr * cfg.lr_decay ** (epoch // cfg.lr_decay_epochs)
        perm, total = torch.randperm(n, generator=order), 0.0
        for i in range(n // B):
            idx = perm[i * B:(i + 1) * B]
            loss = vib_vim_loss(model, to_signed(flatten(x_all[idx])), y_all[idx], cfg.objective, cfg.beta,
                                cfg.mmd_kernel, cfg.mmd_scales)[0]
            opt.zero_grad()
            loss.backward()
            opt.step()
            ema.update()
            total += loss.item()
        losses.append(total / (n // B))
    return dict(zip([k for k, _ in model.named_parameters()], ema.averaged())), losses


def group(cfgs, data, tmp_path, name="g", **kw):
    outs = [tmp_path / f"{name}_{i}.pt" for i in range(len(cfgs))]
    T.train(cfgs, data, outs, tmp_path / f"{name}.resume", device="cpu", progress=False, **kw)
    return [torch.load(o, weights_only=False) for o in outs]


def assert_same_model(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert a[k].shape == b[k].shape, k
        d = a[k] - b[k]
        assert d.norm() <= REL * b[k].norm(), (k, (d.norm() / b[k].norm()).item())
        assert d.abs().max() <= LR, (k, d.abs().max().item())


# --- the stacked trainer against the one-model definition ---------------------------------------

@pytest.mark.parametrize("objective,betas,K", [("vib", (1e-3, 1e-1), 4), ("vim", (1e-1, 10.0), 4),
                                               ("deterministic", (0.0,), 4), ("vib", (1e-3, 1.0), 2)])
def test_each_model_of_a_group_is_its_one_model_run(tiny_data, tmp_path, objective, betas, K):
    # two seeds, so the group also mixes data orders (per-model batches) and noise streams
    cfgs = [small(objective, b, s, K) for s in (0, 1) for b in betas]
    for cfg, ck in zip(cfgs, group(cfgs, tiny_data, tmp_path)):
        weights, losses = reference(cfg, tiny_data)
        assert ck["config"] == asdict(cfg) and ck["format"] == T.MODEL_FORMAT
        assert_same_model(ck["state_dict"], weights)
        assert [h["loss"] for h in ck["history"]] == pytest.approx(losses, rel=1e-4, abs=1e-6)


def test_the_equivalence_check_can_fail(tiny_data, tmp_path):
    """Another seed gives another model: the comparison above is not vacuous."""
    a = group([small(seed=0)], tiny_data, tmp_path, "a")[0]["state_dict"]
    b, _ = reference(small(seed=1), tiny_data)
    with pytest.raises(AssertionError):
        assert_same_model(a, b)


def test_a_model_trained_in_a_group_evaluates_as_trained_alone(tiny_data, tmp_path):
    cfgs = [small("vib", 1e-2, 0), small("vib", 1e-1, 0)]
    stacked = group(cfgs, tiny_data, tmp_path)
    data = load_prepared(tiny_data)
    ecfg = eval_a(gaussian=(0.0, 0.5), saltpepper=(0.0,), fgsm=(0.0,), probe_max_iter=20)
    for i, cfg in enumerate(cfgs):
        model, _ = T.load_model(tmp_path / f"g_{i}.pt")
        train_one(cfg, tiny_data, tmp_path / "alone.pt")
        alone, _ = T.load_model(tmp_path / "alone.pt")
        a, b = evaluate(model, data, ecfg, "vib"), evaluate(alone, data, ecfg, "vib")
        assert a["test"]["err_1"] == pytest.approx(b["test"]["err_1"], abs=0.011)   # at most one image of 100 flips
        assert a["test"]["rate_bits"] == pytest.approx(b["test"]["rate_bits"], rel=1e-3)
        assert a["probe_acc"] == pytest.approx(b["probe_acc"], abs=0.011)
    assert stacked[0]["group"]["size"] == 2


# --- precision --------------------------------------------------------------------------------
# bfloat16 autocast rounds the matmul inputs to an 8-bit mantissa (relative error ~4e-3 per
# product, float32 accumulation), and the difference grows as training goes on.  Measured here
# (seed 0, 3 epochs of 130 images at lr 1e-3, K 4, one thread): epoch losses 0.2-0.4% apart in
# epochs 1-2 and 2.7% (VIB) / 3.6% (VIM) in epoch 3; all weights together 3.0% / 3.1% apart
# (relative norm).  Tolerances: each logged loss within 8%, the weights within 8%; the run must have
# trained (its loss fell), and bfloat16 must not be float32 in disguise (the weights differ).

def weight_vector(ck):
    return torch.cat([v.flatten() for v in ck["state_dict"].values()])


@native_bf16_only()
@pytest.mark.parametrize("objective", ["vib", "vim"])
def test_bfloat16_training_is_close_to_float32(tiny_data, tmp_path, objective):
    f32 = group([small(objective, 1e-2, 0, epochs=3, lr=1e-3)], tiny_data, tmp_path, "f32")[0]
    bf16 = group([small(objective, 1e-2, 0, epochs=3, lr=1e-3, precision="bfloat16")], tiny_data, tmp_path, "bf16")[0]
    assert bf16["config"]["precision"] == "bfloat16"
    lf, lb = ([h["loss"] for h in ck["history"]] for ck in (f32, bf16))
    assert lb == pytest.approx(lf, rel=0.08)
    assert lb[-1] < lb[0]
    wf, wb = weight_vector(f32), weight_vector(bf16)
    assert 0 < (wb - wf).norm() <= 0.08 * wf.norm()


# --- checkpoints, determinism, resume ---------------------------------------------------------

def test_checkpoint_contents_and_reload(tiny_data, tmp_path):
    out = tmp_path / "vib_b1e-3_s0.pt"
    summary = train_one(small(epochs=3), tiny_data, out)
    assert out.exists() and not (tmp_path / "vib_b1e-3_s0.pt.resume").exists()
    assert [h["epoch"] for h in summary["history"]] == [1, 2, 3]
    assert summary["train_seconds"] > 0 and summary["group"]["size"] == 1
    model, info = T.load_model(out)
    assert model.K == 4 and not model.training and info["config"]["objective"] == "vib"


@pytest.mark.parametrize("objective", ["deterministic", "vib", "vim"])
def test_same_seed_same_model_other_seed_other_model(tiny_data, tmp_path, objective):
    a, b, c = (train_one(small(objective, seed=s), tiny_data, tmp_path / f"{i}.pt") and
               torch.load(tmp_path / f"{i}.pt", weights_only=False)["state_dict"] for i, s in enumerate((0, 0, 1)))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["decoder.weight"], c["decoder.weight"])


def test_training_lowers_the_loss(tiny_data, tmp_path):
    s = train_one(small(epochs=8, beta=0.0), tiny_data, tmp_path / "m.pt")
    assert s["history"][-1]["ce"] < 0.7 * s["history"][0]["ce"]


def test_loss_is_averaged_over_the_logged_epochs(tiny_data, tmp_path):
    run = lambda every: train_one(small(epochs=3, log_every=every), tiny_data, tmp_path / f"m{every}.pt")["history"]
    each, pairs = run(1), run(2)                            # same seed: the same trajectory
    assert [h["epoch"] for h in pairs] == [2, 3]
    assert pairs[0]["ce"] == pytest.approx((each[0]["ce"] + each[1]["ce"]) / 2, rel=1e-5)
    assert pairs[1]["ce"] == pytest.approx(each[2]["ce"], rel=1e-5)


def test_resumed_group_equals_uninterrupted_group(tiny_data, tmp_path, monkeypatch):
    cfgs = [small("vim", 1e-1, 0, epochs=3, checkpoint_seconds=1e-9),
            small("vim", 10.0, 0, epochs=3, checkpoint_seconds=1e-9)]
    full = group(cfgs, tiny_data, tmp_path, "full")

    # interrupt after the first resume state: the group's second epoch raises
    calls = {"n": 0}
    real = T.step

    def dying(*a, **k):
        calls["n"] += 1
        if calls["n"] > 200 // 20 + 2:          # into the second epoch
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(T, "step", dying)
    outs = [tmp_path / f"r_{i}.pt" for i in range(2)]
    with pytest.raises(KeyboardInterrupt):
        T.train(cfgs, tiny_data, outs, tmp_path / "r.resume", device="cpu", progress=False)
    assert (tmp_path / "r.resume").exists() and not any(o.exists() for o in outs)
    monkeypatch.setattr(T, "step", real)
    T.train(cfgs, tiny_data, outs, tmp_path / "r.resume", device="cpu", progress=False)
    assert not (tmp_path / "r.resume").exists()
    for o, ref in zip(outs, full):
        ck = torch.load(o, weights_only=False)
        for k in ref["state_dict"]:
            assert torch.equal(ck["state_dict"][k], ref["state_dict"][k]), k
        assert ck["history"] == ref["history"]


def test_resume_state_of_another_config_is_ignored(tiny_data, tmp_path, capsys):
    out = tmp_path / "m.pt"
    key = resume_key([resume_config(small(lr=1e-3))], tiny_data, T.GROUP_FORMAT, "cpu")
    save_torch({"key": key}, tmp_path / "m.pt.resume")
    train_one(small(), tiny_data, out)
    assert "another configuration (differs in: lr)" in capsys.readouterr().out
    save_torch({"key": resume_key([resume_config(small()), resume_config(small(seed=1))], tiny_data, T.GROUP_FORMAT, "cpu")}, tmp_path / "m.pt.resume")
    train_one(small(), tiny_data, out)
    assert "another group (not these 1 models)" in capsys.readouterr().out


def test_unreadable_resume_state_is_ignored(tiny_data, tmp_path, capsys):
    (tmp_path / "m.pt.resume").write_bytes(b"\x00garbage")
    s = train_one(small(), tiny_data, tmp_path / "m.pt")
    out = capsys.readouterr().out
    assert "m.pt.resume is corrupt or truncated" in out and "training starts afresh" in out
    assert s["history"][0]["epoch"] == 1


# --- divergence and bad input -----------------------------------------------------------------

def test_a_diverging_group_stops_and_writes_no_model(tiny_data, tmp_path):
    cfgs = [small("vib", 1e-3, 0, lr=10.0), small("vib", 1e-1, 0, lr=10.0)]
    outs = [tmp_path / "a.pt", tmp_path / "b.pt"]
    with pytest.raises(TrainingDiverged, match="training diverged at epoch 1"):
        T.train(cfgs, tiny_data, outs, tmp_path / "g.resume", device="cpu", progress=False)
    assert not any(o.exists() for o in outs)


def test_a_group_that_diverges_between_two_writes_leaves_no_diverged_resume_state(tiny_data, tmp_path):
    # lr 10 blows the loss up in the first epoch; the loss is read only at the end (log_every =
    # epochs) while the resume state is due after every epoch (checkpoint_seconds 0): the write
    # itself must read the guard.  (Before the shared loop skeleton, the stacked trainer wrote
    # this state with non-finite weights: "diverged state kept (epoch 2)".)
    cfgs = [small("vib", b, 0, epochs=3, lr=10.0, log_every=3, checkpoint_seconds=0.0) for b in (1e-3, 1e-1)]
    resume = tmp_path / "g.resume"
    with pytest.raises(TrainingDiverged, match="training diverged at epoch 1"):
        T.train(cfgs, tiny_data, [tmp_path / "a.pt", tmp_path / "b.pt"], resume, device="cpu", progress=False)
    if resume.exists():
        state = torch.load(resume, weights_only=False)
        assert all(bool(torch.isfinite(t).all()) for t in state["model"].values()), \
            f"diverged state kept (epoch {state['epoch']})"


def test_a_group_refuses_models_that_differ_in_more_than_beta_and_seed(tiny_data, tmp_path):
    with pytest.raises(ValueError, match="differs in lr"):
        T.train([small("vib", 1e-3, 0), small("vib", 1e-2, 0, lr=1e-3)], tiny_data,
                [tmp_path / "a.pt", tmp_path / "b.pt"], tmp_path / "g.resume", device="cpu", progress=False)


def test_bad_inputs_are_named(tiny_data, tmp_path):
    with pytest.raises(ValueError, match="objective 'vab'"):
        small(objective="vab")
    with pytest.raises(ValueError, match="beta = -1"):
        small(beta=-1)
    with pytest.raises(ValueError, match="batch_size 1000 is larger than the train split"):
        train_one(small(batch_size=1000), tiny_data, tmp_path / "m.pt")
    with pytest.raises(FileNotFoundError, match="nope.pt does not exist"):
        T.load_model(tmp_path / "nope.pt")
    (tmp_path / "half.pt").write_bytes(b"PK\x03\x04garbage")
    with pytest.raises(RuntimeError, match="half.pt is corrupt or truncated"):
        T.load_model(tmp_path / "half.pt")


# --- groups in the workflow: which models share a job, and the CLI steps ----------------------

def test_groups_chunk_each_objective_in_seed_beta_order():
    exp = {**PAPER, "vib_vim": {**PAPER["vib_vim"], "seeds": [0, 1, 2], "group_size": 5,
                                "betas": {"vib": [1e-3, 1e-2], "vim": [1.0]}}}
    g = R.groups(exp)
    assert list(g) == ["deterministic_g0", "vib_g0", "vib_g1", "vim_g0", "k2_vib_g0", "k2_vim_g0"]
    assert g["vib_g0"] == [("vib", 1e-3, 0, 256), ("vib", 1e-2, 0, 256), ("vib", 1e-3, 1, 256),
                           ("vib", 1e-2, 1, 256), ("vib", 1e-3, 2, 256)]
    assert g["vib_g1"] == [("vib", 1e-2, 2, 256)]
    assert all(K == 2 for m in (g["k2_vib_g0"], g["k2_vim_g0"]) for *_, K in m)
    # every run is in exactly one group
    main = [r for n, m in g.items() if not n.startswith("k2_") for r in m]
    assert sorted(r[:3] for r in main) == sorted(R.runs(exp))
    assert R.group_of(exp)["vib_b1e-2_s2"] == "vib_g1"
    # group_size 1: one model per job
    one = R.groups({**exp, "vib_vim": {**exp["vib_vim"], "group_size": 1}})
    assert all(len(m) == 1 for m in one.values()) and len(one) == len(R.runs(exp)) + len(R.k2_runs(exp))
    with pytest.raises(ValueError, match="'vib_g9' is not one of"):
        R.group_train_settings(exp, "vib_g9")


@pytest.mark.slow
def test_cli_steps_train_a_group_and_evaluate_each_model_as_alone(tiny_data, tmp_path):
    """`train` writes each model of the group to <out-dir>/<run>.pt, as the trainer does;
    `evaluate` of the group gives each model exactly the numbers of its evaluation alone."""
    cfgs = [small("vib", 1e-3, 0), small("vib", 1e-1, 1)]
    cli = [sys.executable, "-m", "infomax", "vib_vim"]
    common = ["--data", str(tiny_data), "--device", "cpu", "--threads", "1"]
    models = tmp_path / "g/models"
    r = subprocess.run([*cli, "train", *common, "--out-dir", str(models), "--resume", str(tmp_path / "g.resume"),
                        "--settings", json.dumps([asdict(c) for c in cfgs]), "--no-progress"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    names = [R.run_name(c.objective, c.beta, c.seed) for c in cfgs]
    assert sorted(p.name for p in models.iterdir()) == sorted(f"{n}.pt" for n in names)
    for n, ck in zip(names, group(cfgs, tiny_data, tmp_path)):
        got = torch.load(models / f"{n}.pt", weights_only=False)
        for k in ck["state_dict"]:
            assert torch.equal(got["state_dict"][k], ck["state_dict"][k]), k

    block = {**PAPER["vib_vim"]["evaluate"], "gaussian": [0.0, 0.5], "saltpepper": [0.0, 0.1], "fgsm": [0.0, 0.1],
             "probe_max_iter": 20}
    evaluate_step = [*cli, "evaluate", *common, "--models-dir", str(models), "--settings", json.dumps(block)]
    r = subprocess.run([*evaluate_step, "--runs", *names, "--out-dir", str(tmp_path / "together")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    for n, c in zip(names, cfgs):
        r = subprocess.run([*evaluate_step, "--runs", n, "--out-dir", str(tmp_path / n)], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        a, b = (json.loads(p.read_text()) for p in (tmp_path / "together" / f"{n}.json", tmp_path / n / f"{n}.json"))
        assert a == b
        assert a["seed"] == c.seed and a["robustness"]


def test_a_link_to_a_group_trained_for_another_seed_names_what_the_group_holds(tmp_path):
    """Groups are named by seed position: a part listing seeds [0, 1, 2, 4] points seed 4 at the group
    of seed 3.  The link must fail naming the missing file and what the group holds, never link
    another seed's model; a group that holds the run links both files."""
    from infomax.vib_vim.runs import link_files

    group = tmp_path / "groups" / "vib_g3"
    (group / "models").mkdir(parents=True)
    (group / "eval").mkdir()
    (group / "models" / "vib_b1e-3_s3.pt").write_bytes(b"model of seed 3")
    (group / "eval" / "vib_b1e-3_s3.json").write_text("{}")
    out = {"model": tmp_path / "models" / "vib_b1e-3_s4.pt", "eval": tmp_path / "eval" / "vib_b1e-3_s4.json"}
    with pytest.raises(FileNotFoundError, match=r"vib_b1e-3_s4\.pt: not in its group's folder, which holds "
                                                r"vib_b1e-3_s3\.pt.*position of its seeds in vib_vim\.seeds"):
        link_files(group / "models", group / "eval", "vib_b1e-3_s4", out, tmp_path / "link.log")
    assert not out["model"].exists() and not out["eval"].exists()
    ok = {"model": tmp_path / "models" / "vib_b1e-3_s3.pt", "eval": tmp_path / "eval" / "vib_b1e-3_s3.json"}
    link_files(group / "models", group / "eval", "vib_b1e-3_s3", ok, tmp_path / "link.log")
    assert ok["model"].read_bytes() == b"model of seed 3" and ok["eval"].read_text() == "{}"
