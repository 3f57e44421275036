"""Reliability (issue 14): diverged runs stop with an error naming the run, resume states carry
the data's identity, orphaned temp files are removed, and cross-key config bounds."""

import copy
import os
import subprocess
import sys

import pytest
import torch
import yaml

from infomax.files import save_torch
from infomax import loop
from infomax.config import ConfigError
from infomax.studies import validate_config
from infomax.data import prepare_embedded
from infomax.dim_infobal import train as TB
from infomax.tables import read_table
from infomax.vib_vim import train as TA

from configs import ROOT, train_a, train_b, train_one


def cfg_a(**kw):
    base = dict(objective="vib", beta=1e-3, seed=0, K=4, epochs=3, batch_size=20, lr=3e-4, ema_decay=0.9)
    return train_a(**{**base, **kw})


def cfg_b(**kw):
    base = dict(epochs=2, batch_size=16, local_units=16, global_hidden=16, prior_hidden=(16, 8), fc_units=32,
                y_dim=8, curve_probe_images=40, curve_probe_epochs=1)
    return train_b(**{**base, **kw})


# --- divergence -------------------------------------------------------------------------------

def test_study_a_run_at_lr_10_stops_with_a_divergence_error(tiny_data, tmp_path):
    out = tmp_path / "vib_b1e-3_s0.pt"
    with pytest.raises(FloatingPointError, match=r"vib_b1e-3_s0.pt: training diverged") as e:
        train_one(cfg_a(lr=10.0, epochs=3), tiny_data, out)
    assert "lr" in str(e.value)
    assert not out.exists()


def test_study_a_finite_loss_blow_up_is_caught(tiny_data, tmp_path, monkeypatch):
    real = TA.loss

    def blowing(*a, **k):                   # a finite loss 1e12 times its initial scale from the 3rd step
        terms = real(*a, **k)
        blowing.n += 1
        return (terms[0] * 1e12, *terms[1:]) if blowing.n >= 3 else terms
    blowing.n = 0
    monkeypatch.setattr(TA, "loss", blowing)
    with pytest.raises(FloatingPointError, match="beyond its initial scale"):
        train_one(cfg_a(epochs=2), tiny_data, tmp_path / "m.pt")
    assert not (tmp_path / "m.pt").exists()


@pytest.mark.parametrize("estimator", ["jsd", "dv", "nce"])
def test_study_b_mi_estimate_below_any_possible_value_is_caught(tiny_data, tmp_path, monkeypatch, estimator):
    real = TB.losses_of

    def blowing(*a, **k):                   # a finite MI estimate of -4.5e24 nats on the training batches
        loss, adv, mi, mn = real(*a, **k)
        return loss, adv, mi * 0 - 4.5e24, mn
    monkeypatch.setattr(TB, "losses_of", blowing)
    monkeypatch.setattr(TB, "curve_point", lambda *a, **k: {"mi_estimate": 0.0, "infomin": 0.0, "probe_acc": 0.5})
    with pytest.raises(FloatingPointError, match=r"training diverged.*MI estimate left \[.*first at step 1: -4.5e\+24"):
        TB.train(cfg_b(kind="dim_l", estimator=estimator), tiny_data, tmp_path / "m.pt", device="cpu",
                 progress=False)
    assert not (tmp_path / "m.pt").exists()


def test_study_b_run_at_lr_10_stops_with_a_divergence_error(tiny_data, tmp_path):
    with pytest.raises(FloatingPointError, match="training diverged"):
        TB.train(cfg_b(kind="dim_g", lr=10.0, adversary_lr=10.0, epochs=3), tiny_data, tmp_path / "m.pt",
                 device="cpu", progress=False)
    assert not (tmp_path / "m.pt").exists()


def test_guard_makes_no_host_sync_between_reads():
    g = loop.DivergenceGuard("m.pt")
    for v, bad in ((1.0, False), (7.0, True), (9.0, True)):
        g.check("x", torch.tensor(v), torch.tensor(bad), "x is bad")
        g.tick()
    with pytest.raises(FloatingPointError, match=r"m.pt: training diverged at epoch 3: x is bad \(first at step 2: 7\)"):
        g.raise_if_diverged(3)


# --- resume identity --------------------------------------------------------------------------

def _interrupted_resume(data, out, monkeypatch):
    """Train until the middle of epoch 3, leaving a resume state of epoch 2."""
    real, calls = TA.loss, {"n": 0}

    def dying(*a, **k):
        calls["n"] += 1
        if calls["n"] == 15:
            raise KeyboardInterrupt
        return real(*a, **k)
    monkeypatch.setattr(TA, "loss", dying)
    with pytest.raises(KeyboardInterrupt):
        train_one(cfg_a(epochs=4, checkpoint_seconds=-1), data, out)
    monkeypatch.setattr(TA, "loss", real)
    assert loop.resume_path(out).exists()


@pytest.mark.slow
def test_resume_state_of_other_data_is_ignored(tiny_data, tmp_path, monkeypatch, capsys):
    out = tmp_path / "m.pt"
    _interrupted_resume(tiny_data, out, monkeypatch)
    other = prepare_embedded(tmp_path / "other.pt", n_images=200, test_fraction=0.25, val_fraction=0.1, seed=1)
    capsys.readouterr()
    train_one(cfg_a(epochs=4), other, out)
    text = capsys.readouterr().out
    assert "ignoring" in text and "prepared data" in text and "resuming" not in text


def test_resume_state_of_another_format_is_ignored(tiny_data, tmp_path, monkeypatch, capsys):
    out = tmp_path / "m.pt"
    _interrupted_resume(tiny_data, out, monkeypatch)
    state = torch.load(loop.resume_path(out), weights_only=False)
    state["key"]["format"] = "infomax-resume-v0"
    save_torch(state, loop.resume_path(out))
    capsys.readouterr()
    train_one(cfg_a(epochs=4), tiny_data, out)
    text = capsys.readouterr().out
    assert "ignoring" in text and "format" in text and "resuming" not in text


@pytest.mark.slow
def test_study_b_resume_key_holds_the_data_identity(tiny_data, tmp_path):
    other = prepare_embedded(tmp_path / "other.pt", n_images=200, test_fraction=0.25, val_fraction=0.1, seed=1)
    cfg = cfg_b()
    a = loop.resume_key(cfg, tiny_data, TB.MODEL_FORMAT, "cpu")
    assert a == loop.resume_key(cfg, tiny_data, TB.MODEL_FORMAT, torch.device("cpu"))
    assert a != loop.resume_key(cfg, other, TB.MODEL_FORMAT, "cpu")
    assert a["format"] == loop.RESUME_FORMAT


def test_a_resume_state_of_another_kind_of_device_is_ignored_with_the_reason(tiny_data, tmp_path, capsys):
    """A CUDA generator's state cannot seed a CPU generator (set_state fails on its size), nor the
    other way round: a state written on the other kind of device is ignored, naming why."""
    cfg = cfg_b()
    key = loop.resume_key(cfg, tiny_data, TB.MODEL_FORMAT, "cpu")
    save_torch({"key": {**key, "device": "cuda"}, "epoch": 1}, tmp_path / "m.pt.resume")
    assert loop.load_resume(tmp_path / "m.pt.resume", key, "cpu") is None
    assert "written on a cuda device, this job runs on cpu" in capsys.readouterr().out


# --- orphaned temp files ----------------------------------------------------------------------

def _dead_pid():
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_next_run_removes_orphaned_temps_of_its_own_outputs(tiny_data, tmp_path):
    out = tmp_path / "m.pt"
    dead, live = _dead_pid(), os.getppid()
    orphans = [tmp_path / f".m.pt.{dead}.0123abcd.tmp", tmp_path / f".m.pt.resume.{dead}.4567abcd.tmp"]
    kept = [tmp_path / f".m.pt.{live}.89abcdef.tmp",          # a live process's temp
            tmp_path / f".other.pt.{dead}.0123abcd.tmp",     # another output's
            tmp_path / "other.pt"]                           # a finished output
    for p in orphans + kept:
        p.write_bytes(b"x")
    train_one(cfg_a(epochs=1), tiny_data, out)
    assert out.exists()
    assert not any(p.exists() for p in orphans)
    assert all(p.exists() for p in kept)


# --- cross-key config checks ------------------------------------------------------------------

CONFIG = yaml.safe_load((ROOT / "config/config.yaml").read_text())


def smoke_edit(path, value):
    def edit(c):
        node = c["experiments"]["smoke"]
        for k in path[:-1]:
            node = node.setdefault(k, {})
        node[path[-1]] = value
    return edit


@pytest.mark.parametrize("edit,needle", [
    (smoke_edit(("vib_vim", "train", "batch_size"), 500), "experiments.smoke.vib_vim.train.batch_size: 500"),
    (smoke_edit(("vib_vim", "k2", "train"), {"batch_size": 400}), "experiments.smoke.vib_vim.k2.train.batch_size"),
    (smoke_edit(("dim_infobal", "train", "batch_size"), 300), "experiments.smoke.dim_infobal.train.batch_size"),
    (smoke_edit(("vib_vim", "evaluate", "knn_k"), 1000), "experiments.smoke.vib_vim.evaluate.knn_k"),
    (smoke_edit(("dim_infobal", "train", "curve_probe_images"), 5000),
     "experiments.smoke.dim_infobal.train.curve_probe_images"),
    (lambda c: c["experiments"]["smoke"]["data"]["mnist"].update(n_images=20),
     "experiments.smoke.data.mnist.n_images"),
    (lambda c: c["experiments"]["smoke"]["data"]["mnist"].update(n_images=405),
     "experiments.smoke.data.mnist.n_images: 405 is not a multiple of 10"),
    (lambda c: c["experiments"]["paper"]["data"]["mnist"].update(val_size=60000),
     "experiments.paper.data.mnist.val_size"),
    (lambda c: c["experiments"]["paper"]["vib_vim"]["train"].update(batch_size=60000),
     "experiments.paper.vib_vim.train.batch_size"),
    (smoke_edit(("dim_infobal", "evaluate", "layers"), ["fc", "conv"]), "experiments.smoke.dim_infobal.evaluate.layers"),
    (smoke_edit(("dim_infobal", "evaluate", "layers"), ["y", "pool"]), "experiments.smoke.dim_infobal.evaluate.layers"),
])
def test_cross_key_bounds_name_the_key(edit, needle):
    c = copy.deepcopy(CONFIG)
    c["experiment"] = "smoke"
    edit(c)
    with pytest.raises(ConfigError) as e:
        validate_config(c)
    assert needle in str(e.value), str(e.value)


def test_shipped_config_passes_the_cross_checks():
    for name in CONFIG["experiments"]:
        validate_config({**CONFIG, "experiment": name})


# --- tables -----------------------------------------------------------------------------------

def test_read_table_names_file_column_and_row_of_a_non_numeric_cell(tmp_path):
    p = tmp_path / "metrics.csv"
    p.write_text("objective,beta,err_1\nvib,0.001,0.1\nvib,0.01,oops\n")
    with pytest.raises(ValueError, match=r"metrics.csv: column err_1, row 2 \(line 3\): 'oops' is not a number"):
        read_table(p, ["objective", "beta", "err_1"], text=["objective"])
    assert list(read_table(p, ["objective", "beta"], text=["objective"])["beta"]) == [0.001, 0.01]


def test_healthy_early_estimates_of_quick_are_not_divergence():
    """The default run's own healthy values (seen in a fresh-clone quick run): a DV training
    estimate of -62 nats at step 2 and validation estimates down to -32 (DV) and -25 (JSD) nats.
    A 50-nat margin stopped quick's DIM(L)-DV and InfoBal-DV jobs as diverged."""
    from infomax.dim_infobal.train import mi_bounds

    for est, seen in (("dv", -62.07), ("jsd", -25.05), ("nce", -62.07)):
        lo, hi = mi_bounds(est, 3600)
        assert lo < seen and hi > 10.0, (est, lo, hi)
    assert mi_bounds("dv", 3600)[0] > -4.5e24 and mi_bounds("jsd", 3600)[0] > -1.2e11   # lr-10 blow-ups still caught


def test_healthy_early_loss_spike_of_quick_is_not_divergence():
    """quick's K=2 VIB at beta=1 (lr 3e-3): loss ~11 at step 1, 1321 at step 2, then a normal run.
    A 100x limit stopped the default run; a 1e12 blow-up must still stop."""
    from infomax.loop import DivergenceGuard, TrainingDiverged

    guard = DivergenceGuard("vib_b1e0_s0.pt")
    for loss in (11.0, 1321.0, 40.0, 3.0):
        TA.guard_step(guard, torch.tensor([loss, 2.3, loss - 2.3, 0.5]))
    guard.raise_if_diverged(1)
    TA.guard_step(guard, torch.tensor([1e12, 2.3, 1e12, 0.5]))
    with pytest.raises(TrainingDiverged, match="beyond its initial scale"):
        guard.raise_if_diverged(1)


def test_chance_accuracy_with_a_bad_cross_entropy_stops_from_the_second_logging_point():
    from infomax.loop import DivergenceGuard, TrainingDiverged

    guard = DivergenceGuard("m.pt")
    names = ["a.pt", "b.pt"]
    healthy = (2.4, 0.4, 2.0, 0.9)
    TA.guard_log(guard, 1, names, [healthy, (9.0, 9.0, 0.0, 0.1)], first=True)   # the first epoch's means: early spikes
    TA.guard_log(guard, 2, names, [healthy, (2.3, 2.3, 0.0, 0.1)], first=False)  # collapsed to the prior: a result
    with pytest.raises(TrainingDiverged, match="model b.pt: training accuracy 0.100 is at chance level"):
        TA.guard_log(guard, 3, names, [healthy, (9.0, 9.0, 0.0, 0.1)], first=False)
