"""Config validation names the wrong key; run lists follow the config."""

import copy
from pathlib import Path

import pytest
import yaml

from infomax.config import (ConfigError, beta_tag, infobal_run_name, infobal_runs, infobal_train_settings,
                            run_name, validate_config, vib_vim_k2_runs, vib_vim_runs)
from infomax.evaluate import InfoBalEvalConfig
from infomax.train import InfoBalTrainConfig

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


# -----------------------------------------------------------------------------
# Study B


def test_study_b_grids_follow_the_protocol():
    quick = CONFIG["experiments"]["quick"]
    assert sorted(infobal_runs(quick)) == sorted(
        [(m, e, s) for m, e in [("dim_g", "jsd"), ("dim_l", "jsd"), ("dim_l", "dv"), ("infobal_m2", "jsd"),
                                ("infobal_m2", "dv"), ("random", "none")] for s in (0, 1)])
    assert quick["infobal"]["dataset"] == "mnist"
    paper = CONFIG["experiments"]["paper"]
    runs = infobal_runs(paper)
    assert paper["infobal"]["dataset"] == "cifar10" and len(paper["infobal"]["seeds"]) >= 3
    for kind in ("dim_g", "dim_l"):
        assert {e for m, e, _ in runs if m == kind} == {"jsd", "dv", "nce"}
    assert {m["views"] for m in paper["infobal"]["methods"].values() if m["kind"] == "infobal"} == {2, 4}
    assert infobal_run_name("infobal_m2", "dv", 1) == "infobal_m2_dv_s1"


@pytest.mark.parametrize("name", ["smoke", "quick", "paper"])
def test_every_study_b_job_gets_settings_its_step_accepts(name):
    exp = CONFIG["experiments"][name]
    for method, est, seed in infobal_runs(exp):
        cfg = InfoBalTrainConfig(**infobal_train_settings(exp, method, est, seed))
        assert (cfg.method, cfg.estimator, cfg.seed) == (method, est, seed)
    InfoBalEvalConfig(**exp["infobal"]["evaluate"], seed=0)


def test_method_options_belong_to_their_kind():
    msg = broken(lambda c: c["experiments"]["quick"]["infobal"]["methods"]["dim_l"].__setitem__("views", 2))
    assert "experiments.quick.infobal.methods.dim_l.views: not an option of kind 'dim_l'" in msg
    msg = broken(lambda c: c["experiments"]["quick"]["infobal"]["methods"]["infobal_m2"].__setitem__(
        "pair_weights", [1.0, 2.0]))
    assert "infobal_m2.pair_weights: has 2 entries, expected 1 for 2 views" in msg


def test_study_b_bad_values_name_the_key():
    msg = broken(lambda c: c["experiments"]["quick"]["infobal"]["methods"]["dim_l"]["estimators"].append("mine"))
    assert "experiments.quick.infobal.methods.dim_l.estimators[2]" in msg and "'mine'" in msg
    msg = broken(lambda c: c["experiments"]["quick"]["infobal"]["methods"]["infobal_m2"].__setitem__("views", 3))
    assert "experiments.quick.infobal.methods.infobal_m2.views" in msg
    msg = broken(lambda c: c["experiments"]["quick"]["infobal"]["methods"].__setitem__(
        "random", {"kind": "dim_l", "estimators": ["jsd"]}))
    assert "experiments.quick.infobal.methods" in msg and "random" in msg
    msg = broken(lambda c: c["experiments"]["quick"]["infobal"].__setitem__("dataset", "cifar10"))
    assert "experiments.quick.infobal.dataset: 'cifar10' has no data.cifar10 block" in msg
