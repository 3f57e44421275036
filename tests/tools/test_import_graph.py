"""scripts/import_graph.py: the project's import graph has no cycle and no base module imports a
study; the checks find both on a made package."""

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
