"""Files the project loads are data, never code, and a model is never used with data it was not
trained on (issue 31).

A planted checkpoint or resume state whose pickle would run a command (here: create a marker file)
is refused in each study and by `infomax restore-mtimes`, naming the file and its rebuild: the
marker never appears.  A model evaluated on another prepared file, and a prepared file made from
another data block than the config's, stop with both files named."""

import json
import os
import shutil
from dataclasses import asdict
from pathlib import Path

import pytest
import torch

from infomax.cli import main
from infomax.files import DIGEST, content_digest

from configs import eval_a, eval_b, train_a, train_b


class Trojan:
    """Unpickling it creates ``marker``: what a hostile checkpoint would do with any command."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def plant(path, marker, **fields) -> Path:
    """A torch file that looks like one of ours (a format and a matching digest, as an attacker
    can recompute it) with a Trojan inside."""
    body = {**fields, "torch": Trojan(marker)}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({**body, DIGEST: content_digest(body)}, path)
    return path


def test_the_planted_file_is_a_real_trojan(tmp_path):
    """The control: a full unpickle (what infomax did before issue 31) runs the command."""
    marker = tmp_path / "ran"
    torch.load(plant(tmp_path / "x.pt", marker, format="any"), weights_only=False)
    assert marker.exists()


def js(cfg) -> str:
    return json.dumps(asdict(cfg))


def test_study_a_model_is_refused_not_run(tiny_data, tmp_path, capsys):
    from infomax.vib_vim.train import MODEL_FORMAT

    marker = tmp_path / "ran"
    models = tmp_path / "results/smoke/vib_vim/groups/vib_g0/models"
    model = plant(models / "vib_b1e-3_s0.pt", marker, format=MODEL_FORMAT, state_dict={})
    rc = main(["vib_vim", "evaluate", "--data", str(tiny_data), "--models-dir", str(models), "--runs", "vib_b1e-3_s0",
               "--settings", js(eval_a()), "--out-dir", str(tmp_path / "e")])
    err = capsys.readouterr().err
    assert rc == 1 and not marker.exists()
    assert f"{model} names a class or function" in err and "not unpickled" in err
    assert f"rebuild it: snakemake --cores all --config experiment=smoke --force {models}" in err
    assert not list((tmp_path / "e").glob("*.json"))


def test_study_b_model_is_refused_not_run(tiny_data, tmp_path, capsys):
    from infomax.dim_infobal.train import MODEL_FORMAT

    marker = tmp_path / "ran"
    model = plant(tmp_path / "results/smoke/dim_infobal/models/dim_l_jsd_s0.pt", marker, format=MODEL_FORMAT)
    rc = main(["dim_infobal", "evaluate", "--data", str(tiny_data), "--models", str(model),
               "--settings", js(eval_b()), "--out-dir", str(tmp_path / "e")])
    err = capsys.readouterr().err
    assert rc == 1 and not marker.exists()
    assert f"{model} names a class or function" in err
    assert f"rebuild it: snakemake --cores all --config experiment=smoke --force {model}" in err


def test_study_a_group_resume_state_is_refused_not_run(tiny_data, tmp_path, capsys):
    marker = tmp_path / "ran"
    resume = plant(tmp_path / "g.resume", marker, key={}, epoch=1)
    settings = train_a("vib", 0.001, 0, epochs=1, batch_size=20, K=2)
    rc = main(["vib_vim", "train", "--data", str(tiny_data), "--out-dir", str(tmp_path / "m"), "--resume", str(resume),
               "--no-progress", "--settings", json.dumps([asdict(settings)])])
    out = capsys.readouterr().out
    assert rc == 0 and not marker.exists()
    assert f"ignoring {resume} names a class or function" in out and "training starts afresh" in out
    assert (tmp_path / "m/vib_b1e-3_s0.pt").exists()


def test_study_b_resume_state_is_refused_not_run(tiny_data, tmp_path, capsys):
    marker = tmp_path / "ran"
    out_path = tmp_path / "dim_l_jsd_s0.pt"
    resume = plant(tmp_path / "dim_l_jsd_s0.pt.resume", marker, key={}, epoch=1)
    cfg = train_b("dim_l", epochs=1, batch_size=32, curve_probe_images=40, curve_probe_epochs=1, fc_units=16,
                  local_units=16, global_hidden=16, prior_hidden=[8], y_dim=8)
    rc = main(["dim_infobal", "train", "--data", str(tiny_data), "--out", str(out_path), "--no-progress",
               "--settings", js(cfg)])
    out = capsys.readouterr().out
    assert rc == 0 and not marker.exists()
    assert f"ignoring {resume} names a class or function" in out and "training starts afresh" in out
    assert out_path.exists()


def test_restore_mtimes_refuses_a_planted_checkpoint(tmp_path):
    """Step 2 of restore-mtimes reads every checkpoint of the DAG: a pulled trojan is named, not run."""
    from infomax.tools.restore import damaged_torch_files

    marker = tmp_path / "ran"
    plant(tmp_path / "results/smoke/dim_infobal/models/dim_l_jsd_s0.pt", marker, format="x")
    plant(tmp_path / "results/smoke/vib_vim/groups/vib_g0/models/vib_b1e-3_s0.pt", marker, format="x")
    problems = damaged_torch_files(["results/smoke/dim_infobal/models/dim_l_jsd_s0.pt",
                                    "results/smoke/vib_vim/groups/vib_g0/models"], tmp_path)
    assert not marker.exists() and len(problems) == 2
    assert "dim_l_jsd_s0.pt names a class or function" in problems[0]
    assert ("--force results/smoke/dim_infobal/models/dim_l_jsd_s0.pt" in problems[0]
            and "--force results/smoke/vib_vim/groups/vib_g0/models" in problems[1])


def test_restore_mtimes_command_refuses_a_planted_checkpoint(tmp_path, monkeypatch, capsys):
    """The same through `infomax restore-mtimes`, with DVC's and Snakemake's answers stubbed (a
    workspace that matches dvc.lock, one checkpoint in the DAG): nothing is marked as done."""
    from infomax.tools import restore

    marker = tmp_path / "ran"
    out = "results/smoke/dim_infobal/models/dim_l_jsd_s0.pt"
    plant(tmp_path / out, marker, format="x")
    (tmp_path / "params.yaml").write_text("experiment: smoke\n")
    monkeypatch.setattr(restore, "dvc_status", lambda repo: {})
    monkeypatch.setattr(restore, "locked_paths", lambda repo: {"s": {"deps": [], "outs": ["results/smoke"]}})
    monkeypatch.setattr(restore, "dag_outputs", lambda repo, args: [out])
    touched = []
    monkeypatch.setattr(restore, "touch_in_dag_order", lambda *a: touched.append(a))
    assert main(["restore-mtimes", "--repo", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert not marker.exists() and not touched
    assert f"{tmp_path / out} names a class or function" in err and f"--force {out}" in err


# --- a model and the data it was trained on


@pytest.fixture
def other_data(tmp_path):
    """Another experiment's prepared file: other digits, the same format."""
    from infomax.data import prepare_embedded

    return prepare_embedded(tmp_path / "other/mnist.pt", n_images=300, test_fraction=0.25, val_fraction=0.1, seed=1)


def test_a_study_a_model_is_not_evaluated_on_other_data(tiny_data, other_data, tmp_path, capsys):
    models = tmp_path / "models"
    settings = train_a("vib", 0.001, 0, epochs=1, batch_size=20, K=2)
    assert main(["vib_vim", "train", "--data", str(tiny_data), "--out-dir", str(models), "--resume",
                 str(tmp_path / "g.resume"), "--no-progress", "--settings", json.dumps([asdict(settings)])]) == 0
    capsys.readouterr()
    rc = main(["vib_vim", "evaluate", "--data", str(other_data), "--models-dir", str(models), "--runs", "vib_b1e-3_s0",
               "--settings", js(eval_a()), "--out-dir", str(tmp_path / "e")])
    err = capsys.readouterr().err
    assert rc == 1 and not list((tmp_path / "e").glob("*.json"))
    assert f"{models / 'vib_b1e-3_s0.pt'} was trained on other data than {other_data}" in err
    assert f"trained from {tiny_data}" in err and f"--force {other_data}" in err


def test_a_study_b_model_is_not_evaluated_on_other_data(tiny_data, other_data, tmp_path, capsys):
    from infomax.dim_infobal.train import train

    model = tmp_path / "random_none_s0.pt"
    train(train_b("random", "none", epochs=1, curve_probe_images=40, curve_probe_epochs=1), tiny_data, model,
          device="cpu", progress=False)
    rc = main(["dim_infobal", "evaluate", "--data", str(other_data), "--models", str(model),
               "--settings", js(eval_b()), "--out-dir", str(tmp_path / "e")])
    err = capsys.readouterr().err
    assert rc == 1 and f"{model} was trained on other data than {other_data}" in err


def test_a_prepared_file_from_another_data_block_is_refused(tmp_path, capsys):
    """The issue's scenario: quick's data/mnist.pt copied over smoke's.  The file records the data
    block it was made from, and a step given the config's block refuses a file made from another."""
    from infomax.data import DataError, load_prepared

    smoke = {"source": "embedded", "n_images": 200, "test_fraction": 0.25, "val_fraction": 0.1, "seed": 0}
    other = {**smoke, "n_images": 300}
    path = tmp_path / "results/smoke/data/mnist.pt"
    assert main(["prepare", "--dataset", "mnist", "--settings", json.dumps(other), "--out", str(path)]) == 0
    assert load_prepared(path, settings=other).meta["n_images"] == 300
    with pytest.raises(DataError) as e:
        load_prepared(path, settings=smoke)
    assert (f"prepared data file {path} was made from other settings than the config's data block "
            f"(n_images: the file has 300, the config 200)") in str(e.value)
    assert f"--config experiment=smoke --force {path}" in str(e.value)
    settings = train_a("vib", 0.001, 0, epochs=1, batch_size=20, K=2)
    capsys.readouterr()
    rc = main(["vib_vim", "train", "--data", str(path), "--data-settings", json.dumps(smoke), "--out-dir",
               str(tmp_path / "m"), "--resume", str(tmp_path / "g.resume"), "--no-progress",
               "--settings", json.dumps([asdict(settings)])])
    assert rc == 1 and "was made from other settings" in capsys.readouterr().err
    assert not (tmp_path / "m").exists() or not list((tmp_path / "m").iterdir())
