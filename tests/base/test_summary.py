"""The experiment summary (DVC metrics) and its plot tables (DVC plots), on synthetic tables."""

import csv
import json
import math

import pandas as pd
import pytest
from figure_inputs import VIB_BETAS, VIM_BETAS, make_inputs, make_infobal_inputs

from infomax.cli import main
from infomax.report import write_summary
from infomax.vib_vim.tables import choose


def a_tables(p):
    return {t: p[t] for t in ("metrics", "validation", "robustness")}


def b_tables(b):
    return {t: b[t] for t in ("curves", "probes", "robustness")}


def read_csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_summary_reports_each_objective_at_its_validation_best_beta(tmp_path):
    p = make_inputs(tmp_path / "in", seeds=(0, 1, 2))
    b = make_infobal_inputs(tmp_path / "b")
    out, plots = tmp_path / "summary.json", tmp_path / "plots"
    write_summary(out, plots, {"vib_vim": a_tables(p), "dim_infobal": b_tables(b)})
    s = json.loads(out.read_text())["vib_vim"]

    best = choose(p["validation"]).best
    metrics = pd.read_csv(p["metrics"])
    metrics = metrics[metrics["K"] == 256]
    rob = pd.read_csv(p["robustness"])
    assert s["models"] == len(metrics)
    for obj in ("deterministic", "vib", "vim"):
        at = metrics[(metrics["objective"] == obj) & (metrics["beta"] == best[obj])]
        assert s[obj]["beta"] == best[obj] and s[obj]["seeds"] == 3
        assert s[obj]["err_avg"] == pytest.approx(at["err_avg"].mean(), rel=1e-5)
        assert s[obj]["probe_acc"] == pytest.approx(at["probe_acc"].mean(), rel=1e-5)
        r = rob[(rob["objective"] == obj) & (rob["beta"] == best[obj]) & (rob["attack"] == "fgsm")]
        strongest = r[r["level"] == r["level"].max()]
        assert s[obj]["robust_acc"]["fgsm"] == pytest.approx(strongest["acc"].mean(), rel=1e-5)
    assert "rate_bits" not in s["deterministic"] and s["vib"]["rate_bits"] > 0
    assert s["attack_levels"]["fgsm"] == pytest.approx(0.3)
    assert "NaN" not in out.read_text()    # strict JSON: DVC and other tools must parse it


def test_plot_tables_have_the_fields_dvc_yaml_plots(tmp_path):
    p = make_inputs(tmp_path / "in")
    b = make_infobal_inputs(tmp_path / "b")
    plots = tmp_path / "plots"
    write_summary(tmp_path / "summary.json", plots, {"vib_vim": a_tables(p), "dim_infobal": b_tables(b)})

    for obj, betas in (("vib", VIB_BETAS), ("vim", VIM_BETAS)):
        rows = read_csv(plots / f"vib_vim_error_vs_beta_{obj}.csv")
        assert [float(r["beta"]) for r in rows] == pytest.approx(sorted(betas))
        assert [float(r["log10_beta"]) for r in rows] == pytest.approx([math.log10(b) for b in sorted(betas)])
        assert all(0 < float(r["err_avg"]) < 1 for r in rows)
    assert not (plots / "vib_vim_error_vs_beta_deterministic.csv").exists()   # no beta to plot against
    for attack in ("gaussian", "saltpepper", "fgsm"):
        rows = read_csv(plots / f"vib_vim_robustness_{attack}.csv")
        assert list(rows[0]) == ["level", "deterministic", "vib", "vim"]
        levels = [float(r["level"]) for r in rows]
        assert levels == sorted(levels) and len(levels) >= 6
        assert float(rows[0]["vib"]) > float(rows[-1]["vib"])         # accuracy falls with noise


def test_cli_summarize_names_a_missing_table(tmp_path, capsys):
    p = make_inputs(tmp_path / "in")
    b = make_infobal_inputs(tmp_path / "b")
    rc = main(["summarize", "--table", f"vib_vim.metrics={p['metrics']}", f"vib_vim.validation={tmp_path / 'nope.csv'}",
               f"vib_vim.robustness={p['robustness']}", *(f"dim_infobal.{t}={b[t]}" for t in ("curves", "probes", "robustness")),
               "--out", str(tmp_path / "s.json"), "--plots-dir", str(tmp_path / "plots")])
    err = capsys.readouterr().err
    assert rc == 1 and "nope.csv: file not found" in err and "val_err_avg" in err
    assert not (tmp_path / "s.json").exists()


def test_summary_has_study_b_probe_means_per_method(tmp_path):
    p = make_inputs(tmp_path / "in")
    b = make_infobal_inputs(tmp_path / "b", seeds=(0, 1, 2))
    out = tmp_path / "summary.json"
    write_summary(out, tmp_path / "plots", {"vib_vim": a_tables(p), "dim_infobal": b_tables(b)})
    s = json.loads(out.read_text())["dim_infobal"]
    assert "infobal" not in json.loads(out.read_text())
    probes = pd.read_csv(b["probes"], keep_default_na=False)
    assert set(s) == {f"{m}_{e}" for m, e in zip(probes["method"], probes["estimator"])}
    assert "random_none" in s and s["dim_l_jsd"]["seeds"] == 3
    rows = probes[(probes["method"] == "dim_l") & (probes["estimator"] == "jsd")]
    for probe, layer in [("linear", "y"), ("mlp", "conv")]:
        at = rows[(rows["probe"] == probe) & (rows["layer"] == layer)]
        assert s["dim_l_jsd"][f"{probe}_{layer}"] == pytest.approx(at["acc"].mean(), rel=1e-5)
