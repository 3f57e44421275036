"""Study B pre-training and probes: checkpoints, curves, the random floor, resume, errors."""

import pytest
import torch

from infomax.files import save_torch
from infomax.data import load_prepared
from infomax.dim_infobal import train as T
from infomax.dim_infobal.evaluate import encoder_features
from infomax.dim_infobal.evaluate import evaluate as evaluate_infobal
from infomax.dim_infobal.train import load_model as load_infobal_model
from infomax.dim_infobal.train import train as train_infobal
from infomax.probes import probe_accuracy, train_probe

from configs import eval_b, native_bf16_only, train_b

SMALL = dict(epochs=2, batch_size=16, lr=1e-3, adversary_lr=1e-3, fc_units=32, local_units=16, global_hidden=16,
             prior_hidden=(16,), view_dim=8, infomin_hidden=8, infomin_units=8, curve_probe_images=60,
             curve_probe_epochs=2)


def cfg(kind="dim_l", estimator="jsd", **kw):
    return train_b(kind, estimator, **{**SMALL, "method": kind, "seed": 0, **kw})


def weights(path):
    return torch.load(path, weights_only=False)["state_dict"]


@pytest.mark.parametrize("kind,estimator,extra", [
    ("dim_g", "jsd", {}), ("dim_l", "nce", {}), ("infobal", "dv", {}),
    ("infobal", "jsd", {"views": 4, "infomin": "club", "target": "r", "lam_warmup_epochs": 1.0}),
])
def test_every_kind_trains_and_reloads_with_its_curve(tiny_data, tmp_path, kind, estimator, extra):
    out = tmp_path / "m.pt"
    s = train_infobal(cfg(kind, estimator, **extra), tiny_data, out, device="cpu", progress=False)
    assert [c["epoch"] for c in s["curves"]] == [0, 1, 2]
    assert [h["epoch"] for h in s["history"]] == [1, 2]
    assert all(0 <= c["probe_acc"] <= 1 and c["mi_estimate"] == c["mi_estimate"] for c in s["curves"])
    net, info = load_infobal_model(out)
    assert not net.training and info["config"]["kind"] == kind
    x = load_prepared(tiny_data).splits["test"][0][:4]
    assert encoder_features(net, x)["y"].shape == (4, 64)
    assert not (tmp_path / "m.pt.resume").exists()


# bfloat16 autocast of the convolutions and matmuls against float32.  Measured here (seed 0, 3
# epochs of 130 images, batch 16, the SMALL nets, one thread): the logged training losses and MI
# estimates <= 1.5% apart, the validation MI estimates of the curves <= 0.09 nats (DIM(L) JSD) and
# <= 0.16 nats (InfoBal DV) apart, all weights 5.7-5.8% apart (relative norm).  The curve probes
# score 20 validation images, too few to compare.  Tolerances: 5%, 0.4 nats, 12%; the loss must
# fall, and bfloat16 must not be float32 in disguise (the weights differ).
@native_bf16_only()
@pytest.mark.parametrize("kind,estimator", [("dim_l", "jsd"), ("infobal", "dv")])
def test_bfloat16_training_is_close_to_float32(tiny_data, tmp_path, kind, estimator):
    runs = {}
    for precision in ("float32", "bfloat16"):
        out = tmp_path / f"{precision}.pt"
        s = train_infobal(cfg(kind, estimator, epochs=3, precision=precision), tiny_data, out, device="cpu",
                          progress=False)
        w = torch.load(out, weights_only=False)["state_dict"]
        runs[precision] = s, torch.cat([v.flatten().float() for k, v in w.items()
                                        if v.is_floating_point() and "running" not in k])
    (f32, wf), (bf16, wb) = runs["float32"], runs["bfloat16"]
    assert bf16["config"]["precision"] == "bfloat16"
    for key in ("loss", "train_mi"):
        assert [h[key] for h in bf16["history"]] == pytest.approx([h[key] for h in f32["history"]], rel=0.05)
    assert [c["mi_estimate"] for c in bf16["curves"]] == pytest.approx([c["mi_estimate"] for c in f32["curves"]], abs=0.4)
    assert bf16["history"][-1]["loss"] < bf16["history"][0]["loss"]
    assert 0 < (wb - wf).norm() <= 0.12 * wf.norm()


def test_random_floor_is_the_untrained_initialisation_every_dim_run_starts_from(tiny_data, tmp_path):
    s = train_infobal(cfg("random", "none"), tiny_data, tmp_path / "r.pt", device="cpu", progress=False)
    assert [c["epoch"] for c in s["curves"]] == [0] and s["history"] == []
    torch.manual_seed(0)
    init = T.build_net(cfg("random", "none"), 1).state_dict()
    w = weights(tmp_path / "r.pt")
    assert set(w) == set(init) and all(torch.equal(w[k], init[k]) for k in w)   # not one step, not even BN stats
    # DIM(L) of the same seed starts from exactly this encoder: its epoch-0 curve point is the floor's
    d = train_infobal(cfg("dim_l", "jsd", epochs=1), tiny_data, tmp_path / "d.pt", device="cpu", progress=False)
    assert d["curves"][0]["probe_acc"] == s["curves"][0]["probe_acc"]


def test_same_seed_same_model(tiny_data, tmp_path):
    a, b = tmp_path / "a.pt", tmp_path / "b.pt"
    for p in (a, b):
        train_infobal(cfg("infobal", "jsd", epochs=1), tiny_data, p, device="cpu", progress=False)
    wa, wb = weights(a), weights(b)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_interrupted_run_resumes_and_matches_an_uninterrupted_one(tiny_data, tmp_path, monkeypatch):
    full = tmp_path / "full.pt"
    train_infobal(cfg("dim_l", "jsd", epochs=3), tiny_data, full, device="cpu", progress=False)
    out = tmp_path / "resumed.pt"
    real, calls = T.losses_of, {"n": 0}

    def dying(*a, **k):            # 130 train images, batch 16: 8 steps per epoch; die in epoch 3
        if a[0].training:
            calls["n"] += 1
            if calls["n"] == 20:
                raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(T, "losses_of", dying)
    with pytest.raises(KeyboardInterrupt):
        train_infobal(cfg("dim_l", "jsd", epochs=3, checkpoint_seconds=-1), tiny_data, out, device="cpu",
                      progress=False)
    resume = tmp_path / "resumed.pt.resume"
    assert resume.exists() and not out.exists()
    assert torch.load(resume, weights_only=False)["epoch"] == 2
    monkeypatch.setattr(T, "losses_of", real)
    s = train_infobal(cfg("dim_l", "jsd", epochs=3), tiny_data, out, device="cpu", progress=False)
    assert [c["epoch"] for c in s["curves"]] == [0, 1, 2, 3] and not resume.exists()
    wf, wr = weights(full), weights(out)
    assert all(torch.allclose(wf[k].float(), wr[k].float(), atol=1e-6) for k in wf)


def test_bad_settings_are_named(tiny_data, tmp_path):
    with pytest.raises(ValueError, match="kind 'dim_x'"):
        cfg("dim_x")
    with pytest.raises(ValueError, match="estimator 'mine' for kind 'dim_l'"):
        cfg("dim_l", "mine")
    with pytest.raises(ValueError, match="view_weights has 3 entries; expected 2"):
        cfg("infobal", view_weights=[1, 1, 1])
    with pytest.raises(ValueError, match="batch_size 1000 is larger than the train split"):
        train_infobal(cfg(batch_size=1000), tiny_data, tmp_path / "m.pt", device="cpu", progress=False)
    with pytest.raises(RuntimeError, match=r"not a study-B \(dim_infobal\) checkpoint"):
        save_torch({"format": "infomax-vib_vim-model-v1"}, tmp_path / "a.pt")
        load_infobal_model(tmp_path / "a.pt")


def test_a_checkpoint_of_the_format_s_older_name_still_loads(tiny_data, tmp_path):
    out = tmp_path / "m.pt"
    train_infobal(cfg(epochs=1), tiny_data, out, device="cpu", progress=False)
    ck = torch.load(out, weights_only=False)
    assert ck["format"] == T.MODEL_FORMAT == "infomax-dim_infobal-model-v1"
    save_torch({**ck, "format": "infomax-infobal-model-v1"}, tmp_path / "old.pt")     # written before the rename
    net, info = load_infobal_model(tmp_path / "old.pt")
    assert info["format"] == "infomax-infobal-model-v1" and not net.training


def test_probes_learn_separable_features_and_leave_the_global_rng_alone():
    g = torch.Generator().manual_seed(0)
    y = torch.arange(200) % 4
    f = torch.randn(200, 6, generator=g) * 0.3 + torch.nn.functional.one_hot(y, 6).float() * 3
    state = torch.get_rng_state()
    for kind in ("linear", "mlp"):
        predict = train_probe(f[:150], y[:150], kind, epochs=20, lr=1e-2, batch_size=16, seed=0, hidden=8, classes=4)
        assert probe_accuracy(predict, f[150:], y[150:]) > 0.95
    assert torch.equal(state, torch.get_rng_state())
    # and a probe on label-free noise stays near chance
    noise = torch.randn(200, 6, generator=g)
    predict = train_probe(noise[:150], y[:150], "linear", epochs=20, lr=1e-2, batch_size=16, seed=0, classes=4)
    assert probe_accuracy(predict, noise[150:], y[150:]) < 0.5
    with pytest.raises(ValueError, match="unknown probe 'svm'"):
        train_probe(f, y, "svm", 1, 1e-3, 16, 0)


def test_evaluation_has_every_layer_and_probe_and_a_shared_clean_level(tiny_data, tmp_path):
    out = tmp_path / "m.pt"
    train_infobal(cfg("dim_l", "jsd", epochs=1), tiny_data, out, device="cpu", progress=False)
    net, _ = load_infobal_model(out)
    res = evaluate_infobal(net, load_prepared(tiny_data), eval_b(mlp_epochs=2, gaussian=(0.0, 0.5, 1.0)))
    assert sorted((p["layer"], p["probe"]) for p in res["probes"]) == sorted(
        (layer, probe) for layer in ("y", "fc", "conv") for probe in ("linear", "mlp"))
    clean = next(p["acc"] for p in res["probes"] if (p["layer"], p["probe"]) == ("y", "linear"))
    assert [r["level"] for r in res["robustness"]] == [0.0, 0.5, 1.0]
    assert res["robustness"][0]["acc"] == clean
    # probes on Y / R only (quick): the same numbers for that layer, none for the others
    only_y = evaluate_infobal(net, load_prepared(tiny_data), eval_b(mlp_epochs=2, gaussian=(0.0, 0.5, 1.0), layers=["y"]))
    assert only_y["probes"] == [p for p in res["probes"] if p["layer"] == "y"]
    assert only_y["robustness"] == res["robustness"]
    with pytest.raises(ValueError, match="y included"):
        eval_b(layers=["fc"])


def test_evaluation_on_a_fixed_part_of_the_test_set_is_evaluation_on_that_part(tiny_data, tmp_path):
    """test_images=n scores probes and noise on the n images of data.stratified_part, exactly as
    if the test split held only those."""
    from infomax.data import stratified_part

    out = tmp_path / "m.pt"
    train_infobal(cfg("dim_g", "jsd", epochs=1), tiny_data, out, device="cpu", progress=False)
    net, _ = load_infobal_model(out)
    data = load_prepared(tiny_data)
    settings = dict(mlp_epochs=1, linear_epochs=1, gaussian=(0.0, 0.5))
    part = eval_b(test_images=20, **settings)
    got = evaluate_infobal(net, data, part)
    small = load_prepared(tiny_data)
    small.splits["test"] = stratified_part(*small.splits["test"], 20)
    assert torch.bincount(small.splits["test"][1], minlength=10).tolist() == [2] * 10
    assert got == evaluate_infobal(net, small, eval_b(test_images=None, **settings))
    assert got != evaluate_infobal(net, data, eval_b(test_images=None, **settings))


def test_curves_score_a_fixed_part_of_validation(tiny_data, tmp_path, monkeypatch):
    """curve_val_images=n: the curve points are those of a file whose val split is that part."""
    from infomax.data import stratified_part

    a, b = tmp_path / "a.pt", tmp_path / "b.pt"
    train_infobal(cfg("dim_g", "jsd", epochs=1, curve_val_images=10, batch_size=10), tiny_data, a,
                  device="cpu", progress=False)
    small = load_prepared(tiny_data)
    small.splits["val"] = stratified_part(*small.splits["val"], 10)
    monkeypatch.setattr(T, "load_prepared", lambda path, device="cpu", settings=None: small)
    train_infobal(cfg("dim_g", "jsd", epochs=1, curve_val_images=None, batch_size=10), tiny_data, b,
                  device="cpu", progress=False)
    curves = [torch.load(p, weights_only=False)["curves"] for p in (a, b)]
    assert curves[0] == curves[1] and len(curves[0]) == 2
