"""`--settings` of the CLI steps go through the config schema's own rules (issue 31): a wrong
type, a missing key, an out-of-range or a non-finite value names the key in one line, and no
step runs."""

import json
from dataclasses import asdict

import pytest

from infomax.cli import main

from configs import eval_a, eval_b, train_a, train_b


def a_train(tmp_path, settings):
    return ["vib_vim", "train", "--data", "unused.pt", "--out-dir", str(tmp_path / "m"), "--resume",
            str(tmp_path / "g.resume"), "--no-progress", "--settings", json.dumps(settings)]


def one_line_error(capsys, rc) -> str:
    err = capsys.readouterr().err
    assert rc == 1 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err


def with_(cfg, **kw):
    return {**asdict(cfg), **kw}


@pytest.mark.parametrize("edit,needle", [
    (dict(epochs="3"), "--settings[0].epochs: '3' is not of type 'integer'"),
    (dict(epochs=0), "--settings[0].epochs: 0 is less than the minimum of 1"),
    (dict(lr=float("nan")), "--settings[0].lr: nan is not a finite number"),
    (dict(ema_decay=float("nan")), "--settings[0].ema_decay: nan is not a finite number"),
    (dict(beta=float("inf")), "--settings[0].beta: inf is not a finite number"),
    (dict(K=100_000_000), "--settings[0].K: 100000000 is greater than the maximum of 4096"),
    (dict(objective="vab"), "--settings[0].objective: 'vab' is not one of"),
    (dict(epoch=3), "Additional properties are not allowed ('epoch' was unexpected)"),
])
def test_study_a_train_settings_name_the_key(tmp_path, capsys, edit, needle):
    rc = main(a_train(tmp_path, [with_(train_a("vib", 0.001, 0), **edit)]))
    assert needle in one_line_error(capsys, rc)
    assert not (tmp_path / "m").exists()


def test_a_missing_key_and_a_bare_object_are_named(tmp_path, capsys):
    s = asdict(train_a("vib", 0.001, 0))
    del s["lr"]
    assert "--settings[0]: 'lr' is a required property" in one_line_error(capsys, main(a_train(tmp_path, [s])))
    assert "--settings: {" in one_line_error(capsys, main(a_train(tmp_path, s)))       # not a list
    assert "--settings: [] should be non-empty" in one_line_error(capsys, main(a_train(tmp_path, [])))


def test_study_b_train_and_both_evaluate_settings_name_the_key(tiny_data, tmp_path, capsys):
    rc = main(["dim_infobal", "train", "--data", "unused.pt", "--out", str(tmp_path / "b.pt"), "--no-progress",
               "--settings", json.dumps(with_(train_b("dim_l"), fc_units="wide"))])
    assert "--settings.fc_units: 'wide' is not of type 'integer'" in one_line_error(capsys, rc)
    rc = main(["vib_vim", "evaluate", "--data", str(tiny_data), "--models-dir", str(tmp_path), "--runs", "x",
               "--out-dir", str(tmp_path / "e"), "--settings", json.dumps(with_(eval_a(), samples=0))])
    assert "--settings.samples: 0 is less than the minimum of 1" in one_line_error(capsys, rc)
    rc = main(["dim_infobal", "evaluate", "--data", str(tiny_data), "--models", str(tmp_path / "x.pt"),
               "--out-dir", str(tmp_path / "e"), "--settings", json.dumps(with_(eval_b(), mlp_dropout=float("nan")))])
    assert "--settings.mlp_dropout: nan is not a finite number" in one_line_error(capsys, rc)


def test_prepare_settings_are_a_data_block(tmp_path, capsys):
    block = {"source": "embedded", "n_images": "many", "test_fraction": 0.25, "val_fraction": 0.1, "seed": 0}
    rc = main(["prepare", "--dataset", "mnist", "--settings", json.dumps(block), "--out", str(tmp_path / "d.pt")])
    assert "--settings.n_images: 'many' is not of type 'integer', 'null'" in one_line_error(capsys, rc)
    del block["seed"]
    rc = main(["prepare", "--dataset", "mnist", "--settings", json.dumps(block), "--out", str(tmp_path / "d.pt")])
    assert "--settings: 'seed' is a required property" in one_line_error(capsys, rc)
    assert not (tmp_path / "d.pt").exists()
