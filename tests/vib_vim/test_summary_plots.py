"""dvc.yaml is static YAML that DVC reads (it cannot loop over a Python table): its plots name
exactly the plot tables study A's summary writes for paper (vib_vim.runs.plot_tables: one per
regularised objective, one per attack of infomax.attacks), so a new attack or objective that
leaves dvc.yaml behind fails here."""

import re
from pathlib import Path

import yaml

from infomax.attacks import ATTACKS
from infomax.studies import load
from infomax.vib_vim.runs import plot_tables

ROOT = Path(__file__).resolve().parents[2]


def test_dvc_yaml_plots_are_the_summarys_plot_tables():
    dvc = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    files = {re.sub(r".*/plots/(.*)\.csv", r"\1", f) for entry in dvc["plots"] for props in entry.values()
             for f in props["y"]}
    paper = load(experiment_name="paper")
    exp = {**paper["experiments"]["paper"]}
    assert files == set(plot_tables(exp))
    assert {f"vib_vim_robustness_{a}" for a in ATTACKS} <= files
