"""The CLI steps the rules call: clear one-line errors, and the collect step's CSV contract."""

import csv
import json
from dataclasses import asdict
from pathlib import Path

from infomax.cli import main

from configs import eval_a, eval_b, train_a, train_b


def js(cfg) -> str:
    """A step's complete --settings: the dataclass has no defaults, the rules pass every key."""
    return json.dumps(asdict(cfg))


def js_list(*cfgs) -> str:
    """A study-A train step's --settings: one complete settings object per model of the group."""
    return json.dumps([asdict(c) for c in cfgs])


def test_missing_model_is_one_clear_error(tiny_data, tmp_path, capsys):
    rc = main(["vib_vim", "evaluate", "--data", str(tiny_data), "--models-dir", str(tmp_path), "--runs", "gone",
               "--settings", js(eval_a()), "--out-dir", str(tmp_path / "e")])
    err = capsys.readouterr().err
    assert rc == 1 and "gone.pt does not exist" in err and "Traceback" not in err
    assert not (tmp_path / "e/gone.json").exists()


def test_corrupt_data_file_is_named(tmp_path, capsys):
    bad = tmp_path / "mnist.pt"
    bad.write_bytes(b"not a torch file")
    rc = main(["vib_vim", "train", "--data", str(bad), "--out-dir", str(tmp_path / "m"), "--resume",
               str(tmp_path / "m.resume"), "--no-progress", "--settings", js_list(train_a("vib", 0.001, 0, epochs=1))])
    assert rc == 1 and f"{bad} is corrupt or truncated" in capsys.readouterr().err


def test_unknown_settings_key_is_named(tiny_data, tmp_path, capsys):
    settings = asdict(train_a("vib", 0.001, 0))
    settings["epoch"] = settings.pop("epochs")
    rc = main(["vib_vim", "train", "--data", str(tiny_data), "--out-dir", str(tmp_path / "m"), "--resume",
               str(tmp_path / "m.resume"), "--settings", json.dumps([settings])])
    err = capsys.readouterr().err
    assert rc == 1 and "('epoch' was unexpected)" in err and "'epochs' is a required property" in err


def test_train_evaluate_collect_round_trip(tiny_data, tmp_path):
    models, evals = tmp_path / "models", tmp_path / "eval"
    settings = train_a("vib", 0.001, 0, epochs=1, batch_size=20, K=2)
    assert main(["vib_vim", "train", "--data", str(tiny_data), "--out-dir", str(models), "--resume",
                 str(tmp_path / "g.resume"), "--no-progress", "--settings", js_list(settings)]) == 0
    assert main(["vib_vim", "evaluate", "--data", str(tiny_data), "--models-dir", str(models), "--runs", "vib_b1e-3_s0",
                 "--out-dir", str(evals), "--embeddings",
                 "--settings", js(eval_a(gaussian=[0.0], saltpepper=[0.1], fgsm=[0.1]))]) == 0
    ev = evals / "vib_b1e-3_s0.json"
    assert (evals / "vib_b1e-3_s0.npz").exists()
    assert main(["vib_vim", "collect", "--out-dir", str(tmp_path / "out"), str(ev)]) == 0
    rows = list(csv.DictReader(open(tmp_path / "out/metrics.csv")))
    assert ",".join(rows[0]) == ("objective,beta,seed,K,err_1,err_avg,rate_bits,izy_bits,probe_acc,"
                                 "knn_acc,train_seconds,precision")
    assert rows[0]["objective"] == "vib" and rows[0]["K"] == "2" and rows[0]["precision"] == "float32"
    rob = list(csv.DictReader(open(tmp_path / "out/robustness.csv")))
    assert [(r["attack"], float(r["level"])) for r in rob] == [("gaussian", 0.0), ("saltpepper", 0.1), ("fgsm", 0.1)]
    assert (evals / "vib_b1e-3_s0.npz").stat().st_size > 0


def test_study_b_train_evaluate_collect_round_trip(tiny_data, tmp_path):
    train = {"epochs": 1, "batch_size": 16, "fc_units": 32, "local_units": 8, "prior_hidden": [8],
             "curve_probe_images": 40, "curve_probe_epochs": 1}
    models = []
    for method, kind, est in [("dim_l", "dim_l", "jsd"), ("random", "random", "none")]:
        model = tmp_path / f"{method}_{est}_s0.pt"
        settings = train_b(kind, est, seed=0, method=method, **train)
        assert main(["dim_infobal", "train", "--data", str(tiny_data), "--out", str(model), "--no-progress",
                     "--settings", js(settings)]) == 0
        models.append(str(model))
    ev = js(eval_b(mlp_epochs=1, gaussian=[0.0, 0.3]))
    # one process evaluates a seed's models; each gets the JSON its own evaluation would give
    assert main(["dim_infobal", "evaluate", "--data", str(tiny_data), "--models", *models,
                 "--out-dir", str(tmp_path / "eval"), "--settings", ev]) == 0
    evals = [str(tmp_path / "eval" / f"{Path(m).stem}.json") for m in models]
    assert main(["dim_infobal", "evaluate", "--data", str(tiny_data), "--models", models[1],
                 "--out-dir", str(tmp_path / "solo"), "--settings", ev]) == 0
    solo, grouped = (json.loads((tmp_path / d / "random_none_s0.json").read_text()) for d in ("solo", "eval"))
    assert solo == grouped
    assert main(["dim_infobal", "collect", "--out-dir", str(tmp_path / "out"), *evals]) == 0
    curves = list(csv.DictReader(open(tmp_path / "out/curves.csv")))
    assert ",".join(curves[0]) == "method,estimator,seed,epoch,mi_estimate,probe_acc"
    assert [(r["method"], r["epoch"]) for r in curves] == [("dim_l", "0"), ("dim_l", "1"), ("random", "0")]
    assert curves[2]["mi_estimate"] == "" and 0 <= float(curves[2]["probe_acc"]) <= 1   # no critic, a probe
    probes = list(csv.DictReader(open(tmp_path / "out/probes.csv")))
    assert ",".join(probes[0]) == "method,estimator,seed,layer,probe,acc,precision" and len(probes) == 12
    assert {p["precision"] for p in probes} == {"float32"}
    assert {(r["method"], r["estimator"]) for r in probes} == {("dim_l", "jsd"), ("random", "none")}
    rob = list(csv.DictReader(open(tmp_path / "out/robustness.csv")))
    assert ",".join(rob[0]) == "method,estimator,seed,attack,level,acc" and len(rob) == 4


def test_study_b_unknown_settings_key_is_named(tiny_data, tmp_path, capsys):
    settings = asdict(train_b("dim_l", "jsd", seed=0))
    settings["local_unit"] = settings.pop("local_units")
    rc = main(["dim_infobal", "train", "--data", str(tiny_data), "--out", str(tmp_path / "m.pt"),
               "--settings", json.dumps(settings)])
    err = capsys.readouterr().err
    assert rc == 1 and "('local_unit' was unexpected)" in err
