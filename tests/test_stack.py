"""Stacked training of a study-A group equals the solo runs of its models, per model: the same
initialisation, data order and noise draws, so weights and metrics agree within float rounding."""

import pytest
import torch
from configs import train_a

from infomax.data import load_prepared
from infomax.vib_vim import stack as S
from infomax.vib_vim import train as T
from infomax.vib_vim.evaluate import evaluate
from configs import eval_a

# Rounding only: a batched matmul sums in another order than nn.Linear's.  Adam divides by the
# gradient's running scale, so where a gradient is near zero a rounding difference can flip that
# element's update: an element may differ by up to one step (lr) while the tensor as a whole
# agrees to ~1e-6.  Measured over 10 steps (one epoch of 200 images), one thread as the rules run:
# relative norm of the difference <= 1.6e-6 per tensor, largest element 4.5e-5 (lr = 3e-4).
# Longer runs of some settings are chaotic: the solo run itself moves by 10% (relative norm)
# between 1 and 2 threads after 30 steps, so longer comparisons would test the chaos, not the code.
LR = 3e-4
REL = 1e-5


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def small(objective, beta, seed, K=4, epochs=1, **kw):
    return train_a(objective, beta, seed, K, **{"epochs": epochs, "batch_size": 20, "lr": LR, "ema_decay": 0.9, **kw})


def solo(cfg, data, tmp_path):
    out = tmp_path / f"solo_{cfg.objective}_{cfg.beta}_{cfg.seed}_{cfg.K}.pt"
    T.train(cfg, data, out, device="cpu", progress=False)
    return torch.load(out, weights_only=False)


def group(cfgs, data, tmp_path, name="g"):
    outs = [tmp_path / f"{name}_{i}.pt" for i in range(len(cfgs))]
    S.train_group(cfgs, data, outs, tmp_path / f"{name}.resume", device="cpu", progress=False)
    return [torch.load(o, weights_only=False) for o in outs]


def assert_same_model(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert a[k].shape == b[k].shape, k
        d = a[k] - b[k]
        assert d.norm() <= REL * b[k].norm(), (k, (d.norm() / b[k].norm()).item())
        assert d.abs().max() <= LR, (k, d.abs().max().item())


@pytest.mark.parametrize("objective,betas,K", [("vib", (1e-3, 1e-1), 4), ("vim", (1e-1, 10.0), 4),
                                               ("deterministic", (0.0,), 4), ("vib", (1e-3, 1.0), 2)])
def test_group_equals_solo_runs_per_model(tiny_data, tmp_path, objective, betas, K):
    # two seeds, so the group also mixes data orders (per-model batches) and noise streams
    cfgs = [small(objective, b, s, K) for s in (0, 1) for b in betas]
    stacked = group(cfgs, tiny_data, tmp_path)
    for cfg, ck in zip(cfgs, stacked):
        ref = solo(cfg, tiny_data, tmp_path)
        assert ck["config"] == ref["config"] and ck["format"] == ref["format"]
        assert_same_model(ck["state_dict"], ref["state_dict"])
        for h, r in zip(ck["history"], ref["history"]):
            assert h["loss"] == pytest.approx(r["loss"], rel=1e-4, abs=1e-6)


def test_group_metrics_equal_solo_metrics(tiny_data, tmp_path):
    cfgs = [small("vib", 1e-2, 0), small("vib", 1e-1, 0)]
    stacked = group(cfgs, tiny_data, tmp_path)
    data = load_prepared(tiny_data)
    ecfg = eval_a(gaussian=(0.0, 0.5), saltpepper=(0.0,), fgsm=(0.0,), probe_max_iter=20)
    for i, cfg in enumerate(cfgs):
        path = tmp_path / f"g_{i}.pt"
        model, _ = T.load_model(path)
        ref_path = tmp_path / "ref.pt"
        T.train(cfg, tiny_data, ref_path, device="cpu", progress=False)
        ref, _ = T.load_model(ref_path)
        a, b = evaluate(model, data, ecfg, "vib"), evaluate(ref, data, ecfg, "vib")
        assert a["test"]["err_1"] == pytest.approx(b["test"]["err_1"], abs=0.011)   # at most one image of 100 flips
        assert a["test"]["rate_bits"] == pytest.approx(b["test"]["rate_bits"], rel=1e-3)
        assert a["probe_acc"] == pytest.approx(b["probe_acc"], abs=0.011)
    assert stacked[0]["group"]["size"] == 2


def test_the_equivalence_check_can_fail(tiny_data, tmp_path):
    """Another seed gives another model: the comparison above is not vacuous."""
    a = group([small("vib", 1e-3, 0)], tiny_data, tmp_path, "a")[0]["state_dict"]
    b = solo(small("vib", 1e-3, 1), tiny_data, tmp_path)["state_dict"]
    with pytest.raises(AssertionError):
        assert_same_model(a, b)


def test_resumed_group_equals_uninterrupted_group(tiny_data, tmp_path, monkeypatch):
    cfgs = [small("vim", 1e-1, 0, epochs=3, checkpoint_seconds=1e-9),
            small("vim", 10.0, 0, epochs=3, checkpoint_seconds=1e-9)]
    full = group(cfgs, tiny_data, tmp_path, "full")

    # interrupt after the first resume state: the group's second epoch raises
    calls = {"n": 0}
    real = S.group_step

    def dying(*a, **k):
        calls["n"] += 1
        if calls["n"] > 200 // 20 + 2:          # into the second epoch (10 steps per epoch)
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(S, "group_step", dying)
    outs = [tmp_path / f"r_{i}.pt" for i in range(2)]
    with pytest.raises(KeyboardInterrupt):
        S.train_group(cfgs, tiny_data, outs, tmp_path / "r.resume", device="cpu", progress=False)
    assert (tmp_path / "r.resume").exists() and not any(o.exists() for o in outs)
    monkeypatch.setattr(S, "group_step", real)
    S.train_group(cfgs, tiny_data, outs, tmp_path / "r.resume", device="cpu", progress=False)
    assert not (tmp_path / "r.resume").exists()
    for o, ref in zip(outs, full):
        ck = torch.load(o, weights_only=False)
        for k in ref["state_dict"]:
            assert torch.equal(ck["state_dict"][k], ref["state_dict"][k]), k
        assert ck["history"] == ref["history"]


def test_a_group_refuses_models_that_differ_in_more_than_beta_and_seed(tiny_data, tmp_path):
    with pytest.raises(ValueError, match="differs in lr"):
        S.train_group([small("vib", 1e-3, 0), train_a("vib", 1e-2, 0, 4, epochs=1, batch_size=20, lr=1e-3, ema_decay=0.9)], tiny_data,
                      [tmp_path / "a.pt", tmp_path / "b.pt"], tmp_path / "g.resume", device="cpu", progress=False)


def test_a_diverging_group_stops_and_writes_no_model(tiny_data, tmp_path):
    from infomax.loop import TrainingDiverged

    cfgs = [small("vib", 1e-3, 0, lr=10.0), small("vib", 1e-1, 0, lr=10.0)]
    outs = [tmp_path / "a.pt", tmp_path / "b.pt"]
    with pytest.raises(TrainingDiverged, match="training diverged at epoch 1"):
        S.train_group(cfgs, tiny_data, outs, tmp_path / "g.resume", device="cpu", progress=False)
    assert not any(o.exists() for o in outs)


# --- groups in the workflow: which models share a job, and the group steps of the CLI
def test_groups_chunk_each_objective_in_seed_beta_order():
    from configs import PAPER

    from infomax.vib_vim import runs as R

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
    # group_size 1: one model per job, the solo layout
    one = R.groups({**exp, "vib_vim": {**exp["vib_vim"], "group_size": 1}})
    assert all(len(m) == 1 for m in one.values()) and len(one) == len(R.runs(exp)) + len(R.k2_runs(exp))
    with pytest.raises(ValueError, match="'vib_g9' is not one of"):
        R.group_train_settings(exp, "vib_g9")


def test_group_steps_of_the_cli_equal_the_solo_steps(tiny_data, tmp_path):
    """`train-group` writes each member in the solo format; `evaluate-group` gives each model
    exactly the numbers of its own `evaluate` step."""
    import json
    import subprocess
    import sys

    from configs import PAPER

    from infomax.vib_vim import runs as R

    cfgs = [small("vib", 1e-3, 0), small("vib", 1e-1, 1)]
    settings = json.dumps([{**c.__dict__, "adam_betas": list(c.adam_betas), "mmd_scales": list(c.mmd_scales)}
                           for c in cfgs])
    cli = [sys.executable, "-m", "infomax", "vib_vim"]
    common = ["--data", str(tiny_data), "--device", "cpu", "--threads", "1"]
    models = tmp_path / "g/models"
    r = subprocess.run([*cli, "train-group", *common, "--out-dir", str(models), "--resume", str(tmp_path / "g.resume"),
                        "--settings", settings, "--no-progress"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    names = [R.run_name(c.objective, c.beta, c.seed) for c in cfgs]
    assert sorted(p.name for p in models.iterdir()) == sorted(f"{n}.pt" for n in names)
    stacked = group(cfgs, tiny_data, tmp_path)
    for n, ck in zip(names, stacked):
        got = torch.load(models / f"{n}.pt", weights_only=False)
        for k in ck["state_dict"]:
            assert torch.equal(got["state_dict"][k], ck["state_dict"][k]), k

    block = {**PAPER["vib_vim"]["evaluate"], "gaussian": [0.0, 0.5], "saltpepper": [0.0, 0.1], "fgsm": [0.0, 0.1],
             "probe_max_iter": 20}
    evals = tmp_path / "g/eval"
    r = subprocess.run([*cli, "evaluate-group", *common, "--models-dir", str(models), "--runs", *names,
                        "--out-dir", str(evals), "--settings", json.dumps(block)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    for n, c in zip(names, cfgs):
        solo_out = tmp_path / f"{n}.json"
        r = subprocess.run([*cli, "evaluate", *common, "--model", str(models / f"{n}.pt"), "--out", str(solo_out),
                            "--settings", json.dumps({**block, "seed": c.seed})], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        a, b = (json.loads(p.read_text()) for p in (evals / f"{n}.json", solo_out))
        assert a == b
        assert a["seed"] == c.seed and a["robustness"]
