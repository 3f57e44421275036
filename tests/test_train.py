"""Training: checkpoints, determinism, EMA, resume after an interrupt."""

import pytest
import torch

from infomax.files import save_torch
from infomax.loop import EMA
from infomax.vib_vim import train as T
from infomax.vib_vim.train import load_model as load_vib_vim_model
from infomax.vib_vim.train import train as train_vib_vim

from configs import train_a


def cfg(**kw):
    base = dict(objective="vib", beta=1e-3, seed=0, K=4, epochs=3, batch_size=20, lr=3e-4, ema_decay=0.9)
    return train_a(**{**base, **kw})


def weights(path):
    return torch.load(path, weights_only=False)["state_dict"]


def test_checkpoint_contents_and_reload(tiny_data, tmp_path):
    out = tmp_path / "vib_b1e-3_s0.pt"
    summary = train_vib_vim(cfg(), tiny_data, out, device="cpu", progress=False)
    assert out.exists() and not (tmp_path / "vib_b1e-3_s0.pt.resume").exists()
    assert [h["epoch"] for h in summary["history"]] == [1, 2, 3]
    assert summary["train_seconds"] > 0
    model, info = load_vib_vim_model(out)
    assert model.K == 4 and not model.training and info["config"]["objective"] == "vib"


@pytest.mark.parametrize("objective", ["deterministic", "vib", "vim"])
def test_same_seed_same_model_other_seed_other_model(tiny_data, tmp_path, objective):
    a, b, c = (tmp_path / n for n in ("a.pt", "b.pt", "c.pt"))
    train_vib_vim(cfg(objective=objective, epochs=1), tiny_data, a, device="cpu", progress=False)
    train_vib_vim(cfg(objective=objective, epochs=1), tiny_data, b, device="cpu", progress=False)
    train_vib_vim(cfg(objective=objective, epochs=1, seed=1), tiny_data, c, device="cpu", progress=False)
    wa, wb, wc = weights(a), weights(b), weights(c)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert not torch.equal(wa["decoder.weight"], wc["decoder.weight"])


def test_training_lowers_the_loss(tiny_data, tmp_path):
    s = train_vib_vim(cfg(epochs=8, beta=0.0), tiny_data, tmp_path / "m.pt", device="cpu", progress=False)
    assert s["history"][-1]["ce"] < 0.7 * s["history"][0]["ce"]


def test_ema_is_debiased_average_of_visited_weights():
    p = torch.nn.Parameter(torch.tensor([0.0]))
    ema = EMA([p], decay=0.5)
    for v in (2.0, 4.0):
        with torch.no_grad():
            p.fill_(v)
        ema.update()
    # shadow = 0.5*(0.5*0 + 0.5*2) + 0.5*4 = 2.5 ; debias 1 - 0.25 = 0.75 -> weights 1/3, 2/3
    assert ema.averaged()[0].item() == pytest.approx(2.0 / 3 + 8.0 / 3)


def test_interrupted_run_resumes_and_matches_an_uninterrupted_one(tiny_data, tmp_path, monkeypatch):
    full = tmp_path / "full.pt"
    train_vib_vim(cfg(epochs=4), tiny_data, full, device="cpu", progress=False)

    out = tmp_path / "resumed.pt"
    real_loss, calls = T.vib_vim_loss, {"n": 0}

    def dying_loss(*a, **k):       # interrupt in the middle of epoch 3 (130 train images: 6 steps per epoch)
        calls["n"] += 1
        if calls["n"] == 15:
            raise KeyboardInterrupt
        return real_loss(*a, **k)

    monkeypatch.setattr(T, "vib_vim_loss", dying_loss)
    with pytest.raises(KeyboardInterrupt):
        train_vib_vim(cfg(epochs=4, checkpoint_seconds=-1), tiny_data, out, device="cpu", progress=False)
    resume = tmp_path / "resumed.pt.resume"
    assert resume.exists() and not out.exists()
    assert torch.load(resume, weights_only=False)["epoch"] == 2

    monkeypatch.setattr(T, "vib_vim_loss", real_loss)
    summary = train_vib_vim(cfg(epochs=4), tiny_data, out, device="cpu", progress=False)
    assert not resume.exists()
    assert [h["epoch"] for h in summary["history"]] == [1, 2, 3, 4]
    wf, wr = weights(full), weights(out)
    assert all(torch.allclose(wf[k], wr[k], atol=1e-6) for k in wf)


def test_resume_state_of_another_config_is_ignored(tiny_data, tmp_path, capsys):
    out = tmp_path / "m.pt"
    train_vib_vim(cfg(epochs=1), tiny_data, out, device="cpu", progress=False)
    from infomax.loop import resume_key
    save_torch({"key": resume_key(cfg(epochs=1, lr=1e-3), tiny_data, T.MODEL_FORMAT)}, tmp_path / "m.pt.resume")
    train_vib_vim(cfg(epochs=1), tiny_data, out, device="cpu", progress=False)
    assert "another configuration (differs in: lr)" in capsys.readouterr().out


def test_bad_inputs_are_named(tiny_data, tmp_path):
    with pytest.raises(ValueError, match="objective 'vab'"):
        cfg(objective="vab")
    with pytest.raises(ValueError, match="beta = -1"):
        cfg(beta=-1)
    with pytest.raises(ValueError, match="batch_size 1000 is larger than the train split"):
        train_vib_vim(cfg(batch_size=1000), tiny_data, tmp_path / "m.pt", device="cpu", progress=False)
    with pytest.raises(FileNotFoundError, match="nope.pt does not exist"):
        load_vib_vim_model(tmp_path / "nope.pt")
    (tmp_path / "half.pt").write_bytes(b"PK\x03\x04garbage")
    with pytest.raises(RuntimeError, match="half.pt is corrupt or truncated"):
        load_vib_vim_model(tmp_path / "half.pt")


def test_unreadable_resume_state_is_ignored(tiny_data, tmp_path, capsys):
    (tmp_path / "m.pt.resume").write_bytes(b"\x00garbage")
    s = train_vib_vim(cfg(epochs=1), tiny_data, tmp_path / "m.pt", device="cpu", progress=False)
    out = capsys.readouterr().out
    assert "m.pt.resume is corrupt or truncated" in out and "training starts afresh" in out
    assert s["history"][0]["epoch"] == 1


def test_loss_is_averaged_over_the_logged_epochs(tiny_data, tmp_path):
    run = lambda every: train_vib_vim(cfg(epochs=3, log_every=every), tiny_data, tmp_path / f"m{every}.pt",
                                      device="cpu", progress=False)["history"]
    each, pairs = run(1), run(2)                            # same seed: the same trajectory
    assert [h["epoch"] for h in pairs] == [2, 3]
    assert pairs[0]["ce"] == pytest.approx((each[0]["ce"] + each[1]["ce"]) / 2, rel=1e-5)
    assert pairs[1]["ce"] == pytest.approx(each[2]["ce"], rel=1e-5)
