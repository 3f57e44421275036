"""scripts/import_graph.py: the project's import graph has no cycle, no base module imports a study,
and no base module or shared workflow file names a study (or spells an attack outside its table),
even in a string; the checks find each on a made project."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("import_graph", ROOT / "scripts/import_graph.py")
G = importlib.util.module_from_spec(spec)
spec.loader.exec_module(G)


def test_the_project_has_no_cycle_and_its_base_names_no_study(capsys):
    assert G.main([]) == 0
    out = capsys.readouterr().out
    assert "no cycle; no base module imports a study" in out
    assert "no base module or shared workflow file names a study" in out
    assert G.study_names() == ["dim_infobal", "vib_vim"]
    assert G.attack_names() == ["gaussian", "saltpepper", "fgsm"] and G.dataset_names() == ["mnist", "cifar10"]
    g = G.graph()
    assert "infomax.vib_vim.train" in g["infomax.vib_vim.cli"]                      # function-level imports count
    assert not any(t.startswith(("infomax.vib_vim", "infomax.dim_infobal")) for t in g["infomax.config"])


def test_a_cycle_and_a_base_module_importing_a_study_are_found(tmp_path, capsys):
    pkg = tmp_path / "infomax"
    (pkg / "study_x").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "study_x" / "__init__.py").write_text("")
    (pkg / "cli.py").write_text("from .study_x import cli\n")
    (pkg / "loop.py").write_text("def f():\n    from .study_x.train import step\n")
    (pkg / "study_x" / "cli.py").write_text("from ..cli import main\n")
    (pkg / "study_x" / "train.py").write_text("from .. import loop\n")
    assert G.main([str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "cycle: infomax.cli <-> infomax.study_x.cli" in out
    assert "base imports a study: infomax.loop -> infomax.study_x.train" in out


def test_a_study_named_in_a_string_of_a_shared_file_is_found(tmp_path, capsys):
    """What the import graph cannot see: a base module, the Snakefile or common.smk spelling out a
    study's name (a dict key, a path, a docstring), or a base module spelling out an attack; the
    study's own files, its rule file and the attacks table may."""
    src, pkg = tmp_path / "src", tmp_path / "src" / "infomax"
    (pkg / "study_x").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "studies.py").write_text("from .study_x import study\nSTUDIES = (study,)  # study_x\n")
    (pkg / "attacks.py").write_text('ATTACKS = [Attack("noise_x", "Noise X")]\n')
    (pkg / "config.py").write_text('def select(exp):\n    return exp["study_x"]["group_size"]\n')
    (pkg / "report.py").write_text('"""Reads the noise_x rows."""\n')
    (pkg / "datasets.py").write_text('X = Dataset(name="digits_x", title="Digits X")\n')
    (pkg / "obtain.py").write_text('A = "digits_x_reader()"  # not the dataset\nB = "digits_x/raw"\n')
    (pkg / "loop.py").write_text("# study_x in a comment is not a string\nx = 1\n")
    (pkg / "study_x" / "__init__.py").write_text("")
    (pkg / "study_x" / "study.py").write_text('NAME = "study_x"\nATTACK = "noise_x"\n')
    rules = tmp_path / "workflow" / "rules"
    rules.mkdir(parents=True)
    (tmp_path / "Snakefile").write_text('# study_x here is a comment\ninclude: "workflow/rules/common.smk"\n')
    (rules / "common.smk").write_text('X = config["study_x"]  # and a comment\n')
    (rules / "study_x.smk").write_text('rule train_study_x:\n    output: "study_x.pt"\n')
    assert G.main([str(src), str(tmp_path)]) == 1
    found = [line.removeprefix("shared file: ") for line in capsys.readouterr().out.splitlines()
             if line.startswith("shared file: ")]
    assert found == ["src/infomax/config.py:2: names study study_x", "src/infomax/obtain.py:2: spells dataset digits_x",
                     "src/infomax/report.py:1: spells attack noise_x", "workflow/rules/common.smk:1: names study study_x"]
    assert G.dataset_names(src) == ["digits_x"] and G.attack_names(src) == ["noise_x"]
