"""Config validation names the wrong key; run lists follow the config."""

import copy
from pathlib import Path

import pytest
import yaml

from infomax.config import ConfigError, beta_tag, experiment
from infomax.studies import validate_config
from infomax.dim_infobal import runs as dim_infobal_runs
from infomax.dim_infobal.evaluate import EvalConfig as EvalConfigB
from infomax.dim_infobal.train import TrainConfig as TrainConfigB
from infomax.vib_vim import runs as vib_vim_runs

ROOT = Path(__file__).resolve().parents[2]
RAW = yaml.safe_load((ROOT / "config/config.yaml").read_text())
PARAMS = yaml.safe_load((ROOT / "params.yaml").read_text())
# what the Snakefile validates: config.yaml plus `experiment` from params.yaml (its second configfile)
CONFIG = {**RAW, "experiment": PARAMS["experiment"]}


def broken(edit):
    c = copy.deepcopy(CONFIG)
    edit(c)
    with pytest.raises(ConfigError) as e:
        validate_config(c)
    return str(e.value)


def test_shipped_config_is_valid_and_has_the_three_experiments():
    validate_config(copy.deepcopy(CONFIG))
    assert {"smoke", "quick", "paper"} <= set(CONFIG["experiments"])
    assert "experiment" not in RAW and PARAMS["experiment"] == "quick"      # the one switch is params.yaml


def test_negative_beta_names_the_key():
    msg = broken(lambda c: c["experiments"]["quick"]["vib_vim"]["betas"]["vib"].__setitem__(0, -1))
    assert "experiments.quick.vib_vim.betas.vib[0]" in msg and "-1" in msg


def test_unknown_objective_names_the_key():
    msg = broken(lambda c: c["experiments"]["quick"]["vib_vim"].__setitem__(
        "objectives", ["deterministic", "vib", "vim", "vab"]))
    assert "experiments.quick.vib_vim.objectives[3]" in msg and "'vab'" in msg


def test_misspelt_key_is_reported():
    msg = broken(lambda c: c["experiments"]["smoke"]["vib_vim"]["train"].__setitem__("epoch", 3))
    assert "experiments.smoke.vib_vim.train" in msg and "'epoch'" in msg and "unknown key" in msg


def test_unknown_experiment_lists_the_known_ones():
    msg = broken(lambda c: c.__setitem__("experiment", "papr"))
    assert "'papr'" in msg and "paper" in msg and "quick" in msg


def test_an_experiment_checks_only_the_studies_it_runs():
    """table1 runs study A on MNIST alone: study B's block (inherited from paper, CIFAR-10) is not
    checked against data it does not prepare, until the experiment asks for study B."""
    from infomax.studies import selected

    assert [s.NAME for s in selected(experiment(CONFIG, "table1"))] == ["vib_vim"]
    assert list(experiment(CONFIG, "table1")["data"]) == ["mnist"]
    msg = broken(lambda c: c["experiments"]["table1"].__setitem__("studies", ["vib_vim", "dim_infobal"]))
    assert "experiments.table1" in msg and "cifar10" in msg
    msg = broken(lambda c: c["experiments"]["table1"].__setitem__("studies", ["vib_vim", "vim_vib"]))
    assert "experiments.table1.studies[1]" in msg and "'vim_vib'" in msg


def test_top_level_group_size_replaces_the_experiments_and_changes_no_model():
    """The top-level group_size is study A's override (vib_vim.study.overrides), merged by
    infomax.studies.select; the base's config.select knows no study and merges only what it is given."""
    from infomax import config
    from infomax.studies import select

    assert config.select({**CONFIG, "experiment": "table1", "group_size": 5})[1] == experiment(CONFIG, "table1")
    name, t1 = select({**CONFIG, "experiment": "table1"})
    assert name == "table1" and t1["vib_vim"]["group_size"] == 1 and CONFIG["group_size"] is None
    _, stacked = select({**CONFIG, "experiment": "table1", "group_size": 5})
    assert stacked["vib_vim"]["group_size"] == 5
    assert {k: v for k, v in stacked.items() if k != "vib_vim"} == {k: v for k, v in t1.items() if k != "vib_vim"}
    one = {r: vib_vim_runs.train_settings(t1, *r, K=256) for r in vib_vim_runs.runs(t1)}
    groups = vib_vim_runs.groups(stacked)
    assert [len(m) for n, m in groups.items() if not n.startswith("k2_")] == [5, 5, 5]
    for name in groups:                             # each model's settings are the same in either layout
        for member, cfg in zip(groups[name], vib_vim_runs.group_train_settings(stacked, name)):
            if member[3] == 256:
                assert cfg == one[member[:3]]
    assert "group_size" in broken(lambda c: c.__setitem__("group_size", 0))


def test_a_part_of_table1_is_the_same_jobs_as_in_the_whole():
    """docs/PROTOCOL.md: seed 0 of table1 run first (a --configfile narrowing seeds and objectives)
    trains the jobs the whole experiment has, under the same names and settings, so the rest adds to
    it without retraining."""
    from infomax.config import merge

    whole = experiment(CONFIG, "table1")
    part = merge(whole, {"vib_vim": {"seeds": [0], "objectives": ["deterministic", "vib"]}})
    assert set(vib_vim_runs.groups(part)) == {"deterministic_g0", "vib_g0", "k2_vib_g0"}
    for name in vib_vim_runs.groups(part):
        assert vib_vim_runs.group_train_settings(part, name) == vib_vim_runs.group_train_settings(whole, name)


def test_yaml_1e3_string_gets_a_hint():
    msg = broken(lambda c: c["experiments"]["quick"]["vib_vim"]["train"].__setitem__("lr", "1e-3"))
    assert "experiments.quick.vib_vim.train.lr" in msg and "1.0e-3" in msg


def test_source_specific_keys():
    msg = broken(lambda c: c["experiments"]["paper"]["data"]["mnist"].pop("val_size"))
    assert "experiments.paper.data.mnist: 'val_size' is a required property" in msg


def test_wheel_source_keys():
    msg = broken(lambda c: c["experiments"]["quick"]["data"]["mnist"].update(train_size=56000))
    assert "experiments.quick.data.mnist.train_size: 56000 is more than the 55000 train images left" in msg
    msg = broken(lambda c: c["experiments"]["paper"]["data"]["cifar10"].update(source="wheel"))
    assert "experiments.paper.data.cifar10.source: 'wheel' is MNIST only" in msg
    msg = broken(lambda c: c["experiments"]["quick"]["data"]["mnist"].update(n_images=100))
    assert "experiments.quick.data.mnist.n_images: not used when source is 'wheel'" in msg
    msg = broken(lambda c: c["experiments"]["paper"]["data"]["mnist"].pop("train_size"))
    assert "experiments.paper.data.mnist: 'train_size' is a required property" in msg


def test_paper_plans_the_full_grid():
    paper = experiment(CONFIG, "paper")
    runs = vib_vim_runs.runs(paper)
    assert len(paper["vib_vim"]["seeds"]) >= 5 and paper["vib_vim"]["train"]["epochs"] == 200
    assert len(runs) == 5 * (1 + 7 + 7)
    assert {b for o, b, s in runs if o == "vib"} == {1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0}
    assert all(s == paper["vib_vim"]["seeds"][0] for _, _, s in vib_vim_runs.k2_runs(paper))


@pytest.mark.parametrize("beta,tag", [(0, "0"), (1e-3, "1e-3"), (2.5e-4, "2.5e-4"), (1.0, "1e0"), (100.0, "1e2")])
def test_beta_tag_round_trips(beta, tag):
    assert beta_tag(beta) == tag
    assert float(tag) == beta
    assert vib_vim_runs.run_name("vib", beta, 3) == f"vib_b{tag}_s3"


# -----------------------------------------------------------------------------
# Study B


def test_study_b_grids_follow_the_protocol():
    quick = experiment(CONFIG, "quick")
    assert sorted(dim_infobal_runs.runs(quick)) == sorted(
        [(m, e, s) for m, e in [("dim_g", "jsd"), ("dim_l", "jsd"), ("dim_l", "dv"), ("infobal_m2", "jsd"),
                                ("infobal_m2", "dv"), ("random", "none")] for s in range(5)])
    assert quick["dim_infobal"]["dataset"] == "mnist"
    # both studies run >= 5 seeds in quick: t(4) = 2.78, where 2 seeds' t(1) = 12.7 decides nothing
    assert len(quick["dim_infobal"]["seeds"]) >= 5 and len(quick["vib_vim"]["seeds"]) >= 5
    paper = experiment(CONFIG, "paper")
    runs = dim_infobal_runs.runs(paper)
    assert paper["dim_infobal"]["dataset"] == "cifar10" and len(paper["dim_infobal"]["seeds"]) >= 3
    for kind in ("dim_g", "dim_l"):
        assert {e for m, e, _ in runs if m == kind} == {"jsd", "dv", "nce"}
    assert {m["views"] for m in dim_infobal_runs.method_specs(paper).values() if m["kind"] == "infobal"} == {2, 4}
    assert dim_infobal_runs.run_name("infobal_m2", "dv", 1) == "infobal_m2_dv_s1"


@pytest.mark.parametrize("name", ["smoke", "quick", "paper"])
def test_every_study_b_job_gets_settings_its_step_accepts(name):
    exp = experiment(CONFIG, name)
    for method, est, seed in dim_infobal_runs.runs(exp):
        cfg = TrainConfigB(**dim_infobal_runs.train_settings(exp, method, est, seed))
        assert (cfg.method, cfg.estimator, cfg.seed) == (method, est, seed)
    EvalConfigB(**{**exp["dim_infobal"]["evaluate"], "seed": 0})


def test_method_options_belong_to_their_kind():
    msg = broken(lambda c: c["experiments"]["quick"]["dim_infobal"]["methods"]["dim_l"].__setitem__("views", 2))
    assert "experiments.quick.dim_infobal.methods.dim_l.views: not an option of kind 'dim_l'" in msg
    msg = broken(lambda c: c["experiments"]["quick"]["dim_infobal"]["methods"]["infobal_m2"].__setitem__(
        "pair_weights", [1.0, 2.0]))
    assert "infobal_m2.pair_weights: has 2 entries, expected 1 for 2 views" in msg
    # an override's value is checked by its kind's option schema (the schema's dim_infobal.kinds.<kind>)
    msg = broken(lambda c: c["experiments"]["quick"]["dim_infobal"]["methods"]["dim_l"].__setitem__("global_weight", "x"))
    assert "experiments.quick.dim_infobal.methods.dim_l.global_weight: 'x' is not of type 'number'" in msg
    msg = broken(lambda c: c["experiments"]["quick"]["dim_infobal"]["methods"]["infobal_m2"].__setitem__("lam", -1))
    assert "experiments.quick.dim_infobal.methods.infobal_m2.lam: -1 is less than the minimum of 0" in msg


def test_study_b_bad_values_name_the_key():
    msg = broken(lambda c: c["experiments"]["quick"]["dim_infobal"]["methods"]["dim_l"]["estimators"].append("mine"))
    assert "experiments.quick.dim_infobal.methods.dim_l.estimators[2]" in msg and "'mine'" in msg
    msg = broken(lambda c: c["experiments"]["quick"]["dim_infobal"]["methods"]["infobal_m2"].__setitem__("views", 3))
    assert "experiments.quick.dim_infobal.methods.infobal_m2.views" in msg
    msg = broken(lambda c: c["experiments"]["quick"]["dim_infobal"]["methods"].__setitem__(
        "random", {"kind": "dim_l", "estimators": ["jsd"]}))
    assert "experiments.quick.dim_infobal.methods" in msg and "random" in msg
    msg = broken(lambda c: c["experiments"]["quick"]["dim_infobal"].__setitem__("dataset", "cifar10"))
    assert "experiments.quick.dim_infobal.dataset: 'cifar10' has no data.cifar10 block" in msg


# -----------------------------------------------------------------------------
# Every key is required: deleting any of paper's keys is an error that names it


def leaf_keys(node, path):
    """Dotted paths of the leaves under ``node``: values, lists, null and empty mappings.  Under
    dim_infobal.methods only each method's `kind` and `estimators` (the other keys of a method are
    optional overrides of its kind, and the methods themselves are what runs)."""
    if isinstance(node, dict) and node:
        for key, value in node.items():
            here = (*path, key)
            if path[-2:] == ("dim_infobal", "methods"):
                yield from (((*here, k),) for k in ("kind", "estimators"))
            else:
                yield from leaf_keys(value, here)
    else:
        yield (path,)


PAPER_KEYS = [p for (p,) in leaf_keys(RAW["experiments"]["paper"], ("experiments", "paper"))]


def test_the_leaf_walk_finds_every_kind_of_leaf():
    keys = {".".join(p) for p in PAPER_KEYS}
    assert {"experiments.paper.device", "experiments.paper.vib_vim.train.epochs",
            "experiments.paper.vib_vim.k2.train",                                      # {}: a leaf
            "experiments.paper.vib_vim.seeds",                                         # a list
            "experiments.paper.dim_infobal.kinds.infobal.view_weights",                # null
            "experiments.paper.dim_infobal.methods.dim_l.kind",
            "experiments.paper.dim_infobal.methods.infobal_m2.estimators"} <= keys
    assert "experiments.paper.dim_infobal.methods.infobal_m2.views" not in keys       # an optional override
    assert len(keys) == len(PAPER_KEYS) > 80


@pytest.mark.parametrize("path", PAPER_KEYS, ids=lambda p: ".".join(p[2:]))
def test_deleting_any_paper_key_is_an_error_that_names_it(path):
    c = copy.deepcopy(CONFIG)
    parent = c
    for key in path[:-1]:
        parent = parent[key]
    del parent[path[-1]]
    with pytest.raises(ConfigError) as e:
        validate_config(c)
    full, at, key = ".".join(path), ".".join(path[:-1]), path[-1]
    lines = [line.strip() for line in str(e.value).splitlines()]
    assert any(line.startswith(full) or (line.startswith(f"{at}:") and f"'{key}'" in line) for line in lines), \
        (full, str(e.value))


def test_yaml_syntax_error_names_file_line_and_column(tmp_path):
    from infomax.config import read_yaml

    bad = tmp_path / "config.yaml"
    bad.write_text("experiments:\n  quick: [\n    a: 1\n")
    with pytest.raises(ConfigError, match=r"config.yaml:4:1: not valid YAML: .*flow sequence at line 2, column 10"):
        read_yaml(bad)


def test_each_vocabulary_is_one_list_that_the_schema_and_the_tables_follow():
    """The schema's enums are the code's lists (a new estimator, objective, precision or probed
    layer added in one place and not the other fails here, not in a training job), and each study's
    TABLES are its tables module's output contract."""
    from infomax.dim_infobal import study as dim_infobal_study
    from infomax.dim_infobal import tables as dim_infobal_tables
    from infomax.dim_infobal.evaluate import LAYERS
    from infomax.estimators import MI_ESTIMATORS
    from infomax.loop import PRECISION_CHOICES
    from infomax.vib_vim import study as vib_vim_study
    from infomax.vib_vim import tables as vib_vim_tables
    from infomax.vib_vim.runs import OBJECTIVES

    defs = yaml.safe_load((ROOT / "workflow/schemas/config.schema.yaml").read_text())["$defs"]
    vib_vim, dim_infobal = defs["experiment"]["properties"]["vib_vim"]["properties"], defs["dim_infobal"]["properties"]
    assert defs["estimator_list"]["items"]["enum"] == list(MI_ESTIMATORS)
    assert vib_vim["objectives"]["items"]["enum"] == list(OBJECTIVES)
    assert defs["train"]["properties"]["precision"]["enum"] == list(PRECISION_CHOICES)
    assert dim_infobal["train"]["properties"]["precision"]["enum"] == list(PRECISION_CHOICES)
    assert dim_infobal["evaluate"]["properties"]["layers"]["items"]["enum"] == list(LAYERS)
    assert vib_vim_study.TABLES == tuple(vib_vim_tables.COLUMNS)
    assert dim_infobal_study.TABLES == tuple(dim_infobal_tables.COLUMNS)
    from infomax.studies import STUDIES

    assert defs["experiment"]["properties"]["studies"]["items"]["enum"] == [s.NAME for s in STUDIES]
    assert vib_vim_tables.OBJECTIVES is OBJECTIVES and dim_infobal_tables.estimator_order() == tuple(MI_ESTIMATORS)


def test_val_size_0_only_where_nothing_is_chosen_or_drawn_on_validation():
    """table1 trains on all 60,000 MNIST train images (val_size 0, as Alemi's code); a beta grid
    chosen on validation, or study B's per-epoch validation curves, need a validation split."""
    t1 = experiment(CONFIG, "table1")
    assert t1["data"]["mnist"]["val_size"] == 0 and len(t1["vib_vim"]["seeds"]) == 5
    msg = broken(lambda c: c["experiments"]["table1"]["vib_vim"]["betas"].__setitem__("vib", [1.0e-3, 1.0e-2]))
    assert "experiments.table1.data.mnist.val_size: 0 (no validation split), but vib_vim.betas.vib lists 2 betas" in msg
    def study_b_on_mnist(c):
        c["experiments"]["table1"]["studies"] = ["vib_vim", "dim_infobal"]
        c["experiments"]["table1"]["dim_infobal"] = {"dataset": "mnist"}
    msg = broken(study_b_on_mnist)
    assert "experiments.table1.data.mnist.val_size: the val split (0 images) needs >= 2" in msg and "curves" in msg
    msg = broken(lambda c: c["experiments"]["quick"]["data"]["mnist"].__setitem__("val_size", 5))
    assert "experiments.quick.data.mnist.val_size" in msg                   # 1..9: too few to choose on


def test_the_facts_say_how_much_of_the_training_set_was_trained_on():
    from infomax.config import data_used

    assert data_used(experiment(CONFIG, "table1"), "mnist") == "full"
    paper = data_used(experiment(CONFIG, "paper"), "mnist")
    assert paper.startswith("55,000 of the 60,000 official training images (5,000 held out for validation)")


# -----------------------------------------------------------------------------
# Non-finite numbers, bounds, step settings, exact beta tags (issue 31)


def numeric_leaves(node, path):
    """Dotted paths (as tuples) of every number under ``node``, list items included."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield from numeric_leaves(v, (*path, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from numeric_leaves(v, (*path, i))
    elif isinstance(node, (int, float)) and not isinstance(node, bool):
        yield path


NUMERIC = list(numeric_leaves(RAW, ()))


def _set(c, path, value):
    parent = c
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = value


def _dotted(path) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_every_numeric_key_refuses_non_finite_values(value):
    """One check covers the whole schema: every number of config.yaml, NaN or ±inf, is named."""
    assert len(NUMERIC) > 150
    for path in NUMERIC:
        c = copy.deepcopy(CONFIG)
        _set(c, path, value)
        with pytest.raises(ConfigError) as e:
            validate_config(c)
        assert f"{_dotted(path)}: {value} is not a finite number" in str(e.value), (path, str(e.value))


def test_non_finite_beta_in_an_override_is_named_not_a_traceback():
    msg = broken(lambda c: c["experiments"]["smoke"]["vib_vim"].__setitem__("betas", {"vib": [float("nan")], "vim": [1.0]}))
    assert msg.splitlines()[1].strip() == "experiments.smoke.vib_vim.betas.vib[0]: nan is not a finite number " \
                                         "(NaN and infinity are never valid values)"


@pytest.mark.parametrize("key,value", [(("vib_vim", "K"), 100_000_000), (("vib_vim", "evaluate", "samples"), 100_000_000),
                                       (("vib_vim", "group_size"), 10_000), (("vib_vim", "train", "batch_size"), 10**7),
                                       (("dim_infobal", "train", "fc_units"), 10**7)])
def test_sizes_that_would_exhaust_memory_are_refused(key, value):
    def edit(c):
        block = c["experiments"]["paper"]
        for k in key[:-1]:
            block = block[k]
        block[key[-1]] = value

    assert f"experiments.paper.{'.'.join(key)}: {value} is greater than the maximum" in broken(edit)


def _old_beta_tag(beta):
    """beta_tag before issue 31 (7 significant digits), to check that no existing file name changes."""
    if beta == 0:
        return "0"
    mantissa, exponent = f"{beta:e}".split("e")
    return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"


def test_beta_tags_are_exact_and_keep_every_existing_name():
    assert beta_tag(1e-3) != beta_tag(1.0000001e-3) == "1.0000001e-3"
    assert beta_tag(1.00000001e-3) == "1.00000001e-3" and float(beta_tag(1.00000001e-3)) == 1.00000001e-3
    betas = {float(b) for exp in RAW["experiments"] for b in
             [b for e in [experiment(CONFIG, exp)["vib_vim"]] for bl in (e["betas"], e["k2"]["betas"])
              for v in bl.values() for b in v]}
    assert len(betas) >= 10 and all(beta_tag(b) == _old_beta_tag(b) for b in betas)


def test_two_betas_differing_after_the_7th_digit_get_two_models():
    c = copy.deepcopy(CONFIG)
    c["experiments"]["smoke"]["vib_vim"]["betas"] = {"vib": [1e-3, 1.0000001e-3], "vim": [1.0]}
    validate_config(c)
    smoke = experiment(c, "smoke")
    names = [vib_vim_runs.run_name(*r) for r in vib_vim_runs.runs(smoke) if r[0] == "vib"]
    assert len(set(names)) == len(names) == 2 * len(smoke["vib_vim"]["seeds"])
