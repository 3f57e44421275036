"""scripts/compare_results.py: two results folders agree cell by cell, and a renamed column
(--rename-column, e.g. err_12 -> err_avg) maps the old side's CSV header and JSON keys."""

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("compare_results", ROOT / "scripts/compare_results.py")
cr = importlib.util.module_from_spec(spec)
spec.loader.exec_module(cr)


def write_results(d: Path, err: str, val_err: str, err_value="0.05"):
    """A results folder with one study-A table, a plot table, claims.json and summary.json."""
    (d / "vib_vim").mkdir(parents=True)
    (d / "plots").mkdir()
    (d / "vib_vim/metrics.csv").write_text(f"objective,beta,seed,err_1,{err},train_seconds\n"
                                           f"vib,0.001,0,0.06,{err_value},12.5\n")
    (d / "plots/vib_vim_error_vs_beta_vib.csv").write_text(f"beta,{err}\n0.001,{err_value}\n")
    (d / "claims.json").write_text(json.dumps({"claims": [{"id": "A1", "verdict": "supported"}]}))
    (d / "summary.json").write_text(json.dumps({"vib_vim": {"vib": {err: float(err_value), val_err: 0.04}}}))


def test_the_same_results_compare_equal(tmp_path, capsys):
    write_results(tmp_path / "old", "err_avg", "val_err_avg")
    write_results(tmp_path / "new", "err_avg", "val_err_avg")
    assert cr.main([str(tmp_path / "old"), str(tmp_path / "new")]) == 0
    assert "identical numbers and verdicts" in capsys.readouterr().out


def test_a_renamed_column_differs_unless_mapped(tmp_path, capsys):
    write_results(tmp_path / "old", "err_12", "val_err_12")
    write_results(tmp_path / "new", "err_avg", "val_err_avg")
    old, new = str(tmp_path / "old"), str(tmp_path / "new")
    assert cr.main([old, new]) == 1
    out = capsys.readouterr().out
    assert "columns" in out and "summary.json.vib_vim.vib.err_12: only in old" in out
    assert cr.main([old, new, "--rename-column", "err_12=err_avg", "--rename-column", "val_err_12=val_err_avg"]) == 0
    assert "4 files, 7 CSV cells compared (timings skipped): identical" in capsys.readouterr().out


def test_a_mapped_column_still_compares_its_cells(tmp_path, capsys):
    write_results(tmp_path / "old", "err_12", "val_err_12", err_value="0.05")
    write_results(tmp_path / "new", "err_avg", "val_err_avg", err_value="0.07")
    assert cr.main([str(tmp_path / "old"), str(tmp_path / "new"), "--rename-column", "err_12=err_avg",
                    "--rename-column", "val_err_12=val_err_avg"]) == 1
    out = capsys.readouterr().out
    assert "column err_avg: '0.07' (old '0.05')" in out and "summary.json.vib_vim.vib.err_avg: 0.07 (old 0.05)" in out


def test_a_rename_without_an_equals_sign_is_refused(tmp_path, capsys):
    write_results(tmp_path / "old", "err_avg", "val_err_avg")
    with pytest.raises(SystemExit):
        cr.main([str(tmp_path / "old"), str(tmp_path / "old"), "--rename-column", "err_12"])
    assert "--rename-column 'err_12': expected OLD=NEW" in capsys.readouterr().err
