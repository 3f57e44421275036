"""Config validation names the wrong key; run lists follow the config."""

import copy
from pathlib import Path

import pytest
import yaml

from infomax.config import (ConfigError, beta_tag, run_name, validate_config, vib_vim_k2_runs,
                            vib_vim_runs)

ROOT = Path(__file__).resolve().parents[1]
CONFIG = yaml.safe_load((ROOT / "config/config.yaml").read_text())


def broken(edit):
    c = copy.deepcopy(CONFIG)
    edit(c)
    with pytest.raises(ConfigError) as e:
        validate_config(c)
    return str(e.value)


def test_shipped_config_is_valid_and_has_the_three_experiments():
    validate_config(copy.deepcopy(CONFIG))
    assert {"smoke", "quick", "paper"} <= set(CONFIG["experiments"])
    assert CONFIG["experiment"] == "quick"


def test_negative_beta_names_the_key():
    msg = broken(lambda c: c["experiments"]["quick"]["vib_vim"]["betas"]["vib"].__setitem__(0, -1))
    assert "experiments.quick.vib_vim.betas.vib[0]" in msg and "-1" in msg


def test_unknown_objective_names_the_key():
    msg = broken(lambda c: c["experiments"]["quick"]["vib_vim"]["objectives"].append("vab"))
    assert "experiments.quick.vib_vim.objectives[3]" in msg and "'vab'" in msg


def test_misspelt_key_is_reported():
    msg = broken(lambda c: c["experiments"]["smoke"]["vib_vim"]["train"].__setitem__("epoch", 3))
    assert "experiments.smoke.vib_vim.train" in msg and "'epoch'" in msg and "unknown key" in msg


def test_unknown_experiment_lists_the_known_ones():
    msg = broken(lambda c: c.__setitem__("experiment", "papr"))
    assert "'papr'" in msg and "paper" in msg and "quick" in msg


def test_yaml_1e3_string_gets_a_hint():
    msg = broken(lambda c: c["experiments"]["quick"]["vib_vim"]["train"].__setitem__("lr", "1e-3"))
    assert "experiments.quick.vib_vim.train.lr" in msg and "1.0e-3" in msg


def test_source_specific_keys():
    msg = broken(lambda c: c["experiments"]["paper"]["data"]["mnist"].pop("val_size"))
    assert "experiments.paper.data.mnist.val_size" in msg


def test_paper_plans_the_full_grid():
    paper = CONFIG["experiments"]["paper"]
    runs = vib_vim_runs(paper)
    assert len(paper["vib_vim"]["seeds"]) >= 5 and paper["vib_vim"]["train"]["epochs"] == 200
    assert len(runs) == 5 * (1 + 7 + 7)
    assert {b for o, b, s in runs if o == "vib"} == {1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0}
    assert all(s == paper["vib_vim"]["seeds"][0] for _, _, s in vib_vim_k2_runs(paper))


@pytest.mark.parametrize("beta,tag", [(0, "0"), (1e-3, "1e-3"), (2.5e-4, "2.5e-4"), (1.0, "1e0"), (100.0, "1e2")])
def test_beta_tag_round_trips(beta, tag):
    assert beta_tag(beta) == tag
    assert float(tag) == beta
    assert run_name("vib", beta, 3) == f"vib_b{tag}_s3"
