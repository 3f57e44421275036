"""The replication report: statistics and verdicts on hand-made tables, anchors, the files."""

import json
import math
from pathlib import Path

import pytest
import yaml

from infomax import report as R
from infomax import stats as S
from infomax.config import experiment as R_experiment
from infomax.studies import report_settings
from infomax.dim_infobal import claims as claims_b
from infomax.dim_infobal.runs import method_specs
from infomax.dim_infobal.tables import Methods
from infomax.files import save_csv
from infomax.vib_vim import claims as claims_a
from infomax.vib_vim import study as vib_vim_study

from configs import CONFIG, PAPER, report_config

ROOT = Path(__file__).resolve().parents[2]
RC = report_config()
KIND_OPTIONS = PAPER["dim_infobal"]["kinds"]
T_975_2 = 4.302652729911275   # Student t, 97.5% quantile, 2 degrees of freedom (statistical tables)


# -----------------------------------------------------------------------------
# statistics and verdicts on hand-made numbers

def test_mean_ci_is_the_student_t_interval():
    ci = S.mean_ci({"s0": 1.0, "s1": 2.0, "s2": 3.0}, 0.95)    # mean 2, sd 1, n 3
    half = T_975_2 / math.sqrt(3)
    assert ci["mean"] == pytest.approx(2.0) and ci["n"] == 3
    assert ci["ci"] == pytest.approx([2 - half, 2 + half], abs=1e-9)
    one = S.mean_ci({"s0": 5.0}, 0.95)
    assert one["mean"] == 5.0 and one["n"] == 1 and all(math.isnan(x) for x in one["ci"])


def test_difference_is_paired_when_the_seeds_match_and_oriented_by_the_claim():
    # a per-seed offset that a paired test removes: differences 1, 1.1, 0.9
    a = {"s0": 11.0, "s1": 31.1, "s2": 20.9}
    b = {"s0": 10.0, "s1": 30.0, "s2": 20.0}
    d = S.difference(a, b, 0.95)
    assert d["paired"] and d["n"] == 3 and d["mean"] == pytest.approx(1.0)
    assert d["ci"][0] > 0.5 and "paired" in d["test"]
    lower = S.difference(a, b, 0.95, higher_is_better=False)     # errors: a is the worse side
    assert lower["mean"] == pytest.approx(-1.0) and lower["ci"][1] < 0


def test_one_matched_run_per_side_is_not_called_unpaired():
    d = S.difference({"s0": 3.0}, {"s0": 1.0}, 0.95)
    assert d["mean"] == pytest.approx(2.0) and d["n"] == 1 and all(math.isnan(x) for x in d["ci"])
    assert "Welch" not in d["test"] and "1 matched run" in d["test"]
    assert "Welch" in S.difference({"s0": 3.0}, {"s1": 1.0}, 0.95)["test"]      # one run each, not the same


def test_difference_falls_back_to_welch_when_the_runs_differ():
    a = {"s0": 3.0, "s1": 5.0}
    b = {"s2": 1.0, "s3": 2.0, "s4": 3.0}
    d = S.difference(a, b, 0.95)
    assert not d["paired"] and "Welch" in d["test"] and d["mean"] == pytest.approx(2.0)
    va, vb = 2.0 / 2, 1.0 / 3
    df = (va + vb) ** 2 / (va ** 2 / 1 + vb ** 2 / 2)
    half = S._t(0.95, df) * math.sqrt(va + vb)
    assert d["ci"] == pytest.approx([2 - half, 2 + half])


CLEAR_WIN = ({"s0": 10.0, "s1": 11.0, "s2": 12.0}, {"s0": 5.0, "s1": 5.5, "s2": 6.2})
CLEAR_LOSS = (CLEAR_WIN[1], CLEAR_WIN[0])
OVERLAP = ({"s0": 10.0, "s1": 6.0, "s2": 8.0}, {"s0": 7.0, "s1": 9.0, "s2": 7.5})
ONE_SEED = ({"s0": 99.0}, {"s0": 1.0})


@pytest.mark.parametrize("sides,verdict", [(CLEAR_WIN, S.SUPPORTED), (CLEAR_LOSS, S.CONTRADICTED),
                                           (OVERLAP, S.INCONCLUSIVE), (ONE_SEED, S.INCONCLUSIVE)])
def test_verdict_of_a_comparison(sides, verdict):
    c = S.comparison("x", "m", "%", "A", sides[0], "B", sides[1], RC)
    assert c["verdict"] == verdict, c["reason"]
    if sides is ONE_SEED:
        assert "1 run(s) per side" in c["reason"]


def test_a_margin_moves_the_verdict():
    # a clear 5-point win: "by more than 3" holds, "by more than 8" is contradicted
    a, b = CLEAR_WIN
    assert S.comparison("x", "m", "%", "A", a, "B", b, RC, margin=3.0)["verdict"] == S.SUPPORTED
    assert S.comparison("x", "m", "%", "A", a, "B", b, RC, margin=8.0)["verdict"] == S.CONTRADICTED
    # "does not beat by more than 1": a clear loss supports it, a clear win contradicts it
    assert S.comparison("x", "m", "%", "A", b, "B", a, RC, direction=S.BELOW, margin=1.0)["verdict"] == S.SUPPORTED
    assert S.comparison("x", "m", "%", "A", a, "B", b, RC, direction=S.BELOW, margin=1.0)["verdict"] == S.CONTRADICTED
    assert S.comparison("x", "m", "%", "A", OVERLAP[0], "B", OVERLAP[1], RC, direction=S.BELOW, margin=1.0)["verdict"] == S.INCONCLUSIVE


def test_min_seeds_makes_two_seeds_inconclusive_when_asked():
    a, b = {"s0": 10.0, "s1": 11.0}, {"s0": 1.0, "s1": 1.5}
    assert S.comparison("x", "m", "%", "A", a, "B", b, RC)["verdict"] == S.SUPPORTED
    strict = report_config(min_seeds=3)
    assert S.comparison("x", "m", "%", "A", a, "B", b, strict)["verdict"] == S.INCONCLUSIVE


def test_combine():
    s, c, i = ({"name": n, "verdict": v} for n, v in (("s", S.SUPPORTED), ("c", S.CONTRADICTED), ("i", S.INCONCLUSIVE)))
    assert S.combine([s, s])[0] == S.SUPPORTED
    assert S.combine([s, c, i]) == (S.CONTRADICTED, "contradicted by: c")
    assert S.combine([s, i])[0] == S.INCONCLUSIVE
    assert S.combine([s, {**c, "votes": False}])[0] == S.SUPPORTED      # additional parts do not vote
    assert S.combine([])[0] == S.INCONCLUSIVE


@pytest.mark.parametrize("bad", [{"confidence": 1.0}, {"min_seeds": 1}, {"anchor_tolerance": 0}])
def test_report_config_rejects_bad_values(bad):
    with pytest.raises(ValueError, match="report."):
        report_config(**bad)


# -----------------------------------------------------------------------------
# claims from hand-made tables

def write_study_a(d: Path, vim_err: list, vib_err: list, det_err: list, vim_noise: list, vib_noise: list,
                  validation=True):
    """Metrics/validation/robustness tables, one value per seed for each side at one beta each (and a
    worse VIB beta 1e-1 to choose against); ``validation=False``: as with val_size 0, one beta per
    objective and every val_err_avg empty."""
    metrics, val, rob = [], [], []
    cols = ["objective", "beta", "seed", "K", "err_1", "err_avg", "rate_bits", "izy_bits", "probe_acc", "knn_acc",
            "train_seconds"]
    for obj, beta, errs in (("vim", 1.0, vim_err), ("vib", 1e-3, vib_err), ("deterministic", 0.0, det_err),
                            ("vib", 1e-1, [0.5] * len(vib_err) if validation else [])):
        for seed, e in enumerate(errs):
            metrics.append({"objective": obj, "beta": beta, "seed": seed, "K": 256, "err_1": e + 0.01, "err_avg": e,
                            "rate_bits": "" if obj == "deterministic" else 20.0, "izy_bits": 3.0,
                            "probe_acc": 1 - e, "knn_acc": 1 - e, "train_seconds": 1.0})
            val.append({"objective": obj, "beta": beta, "seed": seed, "K": 256, "val_err_avg": e if validation else ""})
    for obj, beta, accs in (("vim", 1.0, vim_noise), ("vib", 1e-3, vib_noise)):
        for seed, acc in enumerate(accs):
            for attack in ("gaussian", "saltpepper", "fgsm"):
                for level in (0.0, 0.5):
                    rob.append({"objective": obj, "beta": beta, "seed": seed, "attack": attack, "level": level,
                                "acc": 0.99 if level == 0 else acc})
    save_csv(metrics, cols, d / "metrics.csv")
    save_csv(val, ["objective", "beta", "seed", "K", "val_err_avg"], d / "validation.csv")
    save_csv(rob, ["objective", "beta", "seed", "attack", "level", "acc"], d / "robustness.csv")
    return {"metrics": d / "metrics.csv", "validation": d / "validation.csv", "robustness": d / "robustness.csv"}


def verdicts(parts):
    return {cid: S.combine(p)[0] for cid, p in parts.items()}


def test_study_a_claims_clear_win_clear_loss_and_one_seed(tmp_path):
    win = write_study_a(tmp_path, vim_err=[0.010, 0.011, 0.012], vib_err=[0.020, 0.022, 0.021],
                        det_err=[0.030, 0.031, 0.029], vim_noise=[0.9, 0.91, 0.92], vib_noise=[0.5, 0.52, 0.51])
    v = verdicts(claims_a.claims(claims_a.read_tables(win), RC))
    assert v == {"A1": S.SUPPORTED, "A2": S.SUPPORTED, "A3": S.SUPPORTED, "A4": S.SUPPORTED}
    parts = claims_a.claims(claims_a.read_tables(win), RC)
    a1 = parts["A1"][0]
    assert a1["sides"][0]["label"] == "VIM (beta=1)" and a1["sides"][1]["label"] == "VIB (beta=1e-3)"
    assert a1["sides"][0]["mean"] == pytest.approx(1.1) and a1["unit"] == "%"        # percent of 0.011
    assert a1["difference"]["mean"] == pytest.approx(1.0)                            # VIB minus VIM error
    # where each best beta lies in its grid (an end of the grid may not be the best beta at all)
    assert "VIM (beta=1) is the only point of its grid" in a1["note"]
    assert "VIB (beta=1e-3) is the lowest of its grid 0.001 .. 0.1 (2 points)" in a1["note"]
    assert claims_a.grid_position(claims_a.read_tables(win)["metrics"], "vib", 0.1).startswith(
        "VIB (beta=1e-1) is the highest")
    # err_avg's labels say how many samples of z it averaged: the study's options (evaluate.samples)
    assert a1["name"] == "test error, samples of z" and "lowest mean validation sample-averaged error" in a1["note"]
    counted = claims_a.claims(claims_a.read_tables(win, vib_vim_study.options(
        {"vib_vim": {"evaluate": {"samples": 30}}})), RC)
    assert counted["A1"][0]["name"] == "test error, 30 samples of z"
    assert "lowest mean validation 30-sample error" in counted["A1"][0]["note"]
    assert counted["A4"][0]["name"].startswith("test error (30 samples), VIB beta=1e-3")

    loss = write_study_a(tmp_path, vim_err=[0.020, 0.022, 0.021], vib_err=[0.010, 0.011, 0.012],
                         det_err=[0.005, 0.006, 0.004], vim_noise=[0.5, 0.52, 0.51], vib_noise=[0.9, 0.91, 0.92])
    v = verdicts(claims_a.claims(claims_a.read_tables(loss), RC))
    assert v == {"A1": S.CONTRADICTED, "A2": S.CONTRADICTED, "A3": S.CONTRADICTED, "A4": S.CONTRADICTED}

    one = write_study_a(tmp_path, vim_err=[0.01], vib_err=[0.02], det_err=[0.03], vim_noise=[0.9], vib_noise=[0.5])
    assert set(verdicts(claims_a.claims(claims_a.read_tables(one), RC)).values()) == {S.INCONCLUSIVE}


def test_study_a_overlap_is_inconclusive(tmp_path):
    t = write_study_a(tmp_path, vim_err=[0.010, 0.030, 0.020], vib_err=[0.025, 0.012, 0.021],
                      det_err=[0.011, 0.031, 0.019], vim_noise=[0.6, 0.9, 0.7], vib_noise=[0.8, 0.6, 0.75])
    assert verdicts(claims_a.claims(claims_a.read_tables(t), RC))["A1"] == S.INCONCLUSIVE


def write_study_b(d: Path, y: dict, curves: dict, layers=("y", "fc", "conv")):
    """probes: y[(method, estimator)] = per-seed linear/mlp Y accuracy; curves[(m, e)] = per seed
    [(mi, acc) per epoch 0..E]."""
    probes, rows = [], []
    for (m, e), accs in y.items():
        for seed, acc in enumerate(accs):
            for layer in layers:
                for probe in ("linear", "mlp"):
                    probes.append({"method": m, "estimator": e, "seed": seed, "layer": layer, "probe": probe,
                                   "acc": acc if layer == "y" else 0.95})
    for (m, e), per_seed in curves.items():
        for seed, points in enumerate(per_seed):
            for epoch, (mi, acc) in enumerate(points):
                rows.append({"method": m, "estimator": e, "seed": seed, "epoch": epoch, "mi_estimate": mi,
                             "probe_acc": acc})
    save_csv(probes, ["method", "estimator", "seed", "layer", "probe", "acc"], d / "probes.csv")
    save_csv(rows, ["method", "estimator", "seed", "epoch", "mi_estimate", "probe_acc"], d / "curves.csv")
    return {"curves": d / "curves.csv", "probes": d / "probes.csv"}


def methods_of(kinds: dict) -> dict:
    """Study B's options (``study.options``): methods name -> kind, each with its kind's options
    (paper's kinds block), and the kinds."""
    return {"methods": {m: {"kind": k, **KIND_OPTIONS[k]} for m, k in kinds.items()}, "kinds": KIND_OPTIONS,
            "probes": {"linear_epochs": 4, "mlp_epochs": 50, "mlp_hidden": 200, "mlp_dropout": 0.1}}


KINDS = {"dim_g": "dim_g", "dim_l": "dim_l", "infobal_m2": "infobal"}
METHODS = methods_of(KINDS)


def b_claims(paths, options=METHODS):
    return claims_b.claims(claims_b.read_tables(paths, options), RC)


def rising_flat(seed_shift, drop=0.0):
    """MI rises every epoch; the probe reaches 0.6 at epoch 1 then stays (minus `drop` at the end)."""
    return [(0.0, 0.3), (1.0 + seed_shift, 0.6), (2.0 + seed_shift, 0.6 + seed_shift / 100),
            (3.0 + seed_shift, 0.6 - drop), (4.0 + seed_shift, 0.6 - drop)]


def test_study_b_claims_on_hand_made_tables(tmp_path):
    y = {("dim_g", "jsd"): [0.40, 0.42, 0.41], ("dim_l", "jsd"): [0.80, 0.81, 0.82], ("dim_l", "dv"): [0.70, 0.71, 0.69],
         ("infobal_m2", "jsd"): [0.70, 0.72, 0.71], ("infobal_m2", "dv"): [0.60, 0.61, 0.59],
         ("random", "none"): [0.70, 0.70, 0.70]}
    curves = {k: [rising_flat(s / 10, drop=0.1 if k[1] == "dv" else 0.0) for s in range(3)]
              for k in y if k[0] != "random"}
    parts = b_claims(write_study_b(tmp_path, y, curves))
    v = verdicts(parts)
    assert v == {"B1": S.SUPPORTED, "B2": S.SUPPORTED, "B3": S.SUPPORTED, "B4": S.SUPPORTED}, \
        {k: S.combine(p) for k, p in parts.items()}
    assert len([p for p in parts["B1"] if p["votes"]]) == 2          # InfoBal JSD and DV vs DIM(L) JSD and DV
    b2 = parts["B2"]
    assert b2[0]["difference"]["n"] == 5 * 3 and "epoch 2 -> 4" in b2[0]["note"]
    b4 = parts["B4"][0]
    assert b4["sides"][1]["mean"] == pytest.approx(10.1)   # DV's drawdown: 10, 10.1, 10.2 points
    # the notes say what the probes were, from the evaluate block
    assert "DIM's probe (200 hidden units, dropout 0.1, 50 epochs)" in parts["B3"][0]["note"]
    small = {**METHODS, "probes": {**METHODS["probes"], "linear_epochs": 2, "mlp_hidden": 32}}
    notes = [p["note"] for p in b_claims(write_study_b(tmp_path, y, curves), small)["B1"]]
    assert any("the post's linear probe (2 epochs)" in n for n in notes)

    # InfoBal clearly better than DIM(L): B1 contradicted; DIM(L) only 3 points above DIM(G): B3 contradicted
    y2 = {**y, ("infobal_m2", "jsd"): [0.90, 0.91, 0.92], ("dim_g", "jsd"): [0.77, 0.78, 0.79]}
    v2 = verdicts(b_claims(write_study_b(tmp_path, y2, curves)))
    assert v2["B1"] == S.CONTRADICTED and v2["B3"] == S.CONTRADICTED

    # the probe keeps climbing (no plateau): B2 contradicted
    climbing = {k: [[(e, 0.2 + 0.15 * e + s / 100) for e in range(5)] for s in range(3)] for k in curves}
    assert verdicts(b_claims(write_study_b(tmp_path, y, climbing)))["B2"] == S.CONTRADICTED

    # probes on Y / R only (quick): the same verdicts; B3's additional fc and conv rows are left out,
    # not reported as missing runs
    only_y = b_claims(write_study_b(tmp_path, y, curves, layers=("y",)))
    assert verdicts(only_y) == v
    assert [p["name"] for p in only_y["B3"]] == [p["name"] for p in parts["B3"] if " fc" not in p["name"]
                                                  and "conv" not in p["name"]]
    assert len(only_y["B3"]) == 2 and len(parts["B3"]) == 4


def test_study_b_without_the_needed_runs_is_inconclusive(tmp_path):
    y = {("dim_l", "nce"): [0.8], ("random", "none"): [0.7]}
    curves = {("dim_l", "nce"): [[(0.0, 0.3), (1.0, 0.5)]]}
    parts = b_claims(write_study_b(tmp_path, y, curves), methods_of({"dim_l": "dim_l"}))
    for cid in ("B1", "B2", "B3", "B4"):
        assert S.combine(parts[cid])[0] == S.INCONCLUSIVE
    assert "no second half" in parts["B2"][0]["reason"]


def test_study_b_names_a_method_missing_from_the_config(tmp_path):
    paths = write_study_b(tmp_path, {("dim_x", "jsd"): [0.5]}, {("dim_x", "jsd"): [[(0.0, 0.1), (1.0, 0.2)]]})
    with pytest.raises(ValueError, match="dim_x"):
        claims_b.read_tables(paths, METHODS)


def test_a_method_of_kind_dim_l_counts_as_dim_l_whatever_its_name(tmp_path):
    """B3 pairs methods by their config kind: DIM(L) named `local_dim` is DIM(L), exactly as `dim_l` is."""
    def b3(name):
        y = {("dim_g", "jsd"): [0.40, 0.42, 0.41], (name, "jsd"): [0.80, 0.81, 0.82], ("random", "none"): [0.7] * 3}
        curves = {k: [rising_flat(s / 10) for s in range(3)] for k in y if k[0] != "random"}
        d = tmp_path / name
        d.mkdir()
        methods = methods_of({"dim_g": "dim_g", name: "dim_l"})
        return b_claims(write_study_b(d, y, curves), methods)["B3"]

    def numbers(parts):
        """Each comparison without its label text."""
        return [{"votes": p["votes"], "metric": p["metric"], "verdict": p["verdict"], "margin": p["margin"],
                 "difference": p["difference"],
                 "sides": [{k: v for k, v in side.items() if k != "label"} for side in p["sides"]]} for p in parts]

    local, plain = b3("local_dim"), b3("dim_l")
    assert len(local) == len(plain) == 4                                     # not the "no such runs" placeholder
    assert S.combine(local) == S.combine(plain) and S.combine(local)[0] == S.SUPPORTED
    assert numbers(local) == numbers(plain)
    assert local[0]["sides"][0]["label"] == "DIM(L) JSD" and local[0]["sides"][0]["mean"] == pytest.approx(81.0)


# -----------------------------------------------------------------------------
# published anchors

def test_the_published_file_loads_and_every_anchor_has_a_source():
    pub = R.load_published(ROOT / "config/published.yaml")
    assert len(pub["anchors"]) >= 18
    for aid, a in pub["anchors"].items():
        assert a["source"].strip() and a["claims"] is not None, aid
    primary = [a for a in pub["anchors"].values() if a.get("primary")]
    assert [a["claims"] for a in primary] == [["A4"]]


@pytest.mark.parametrize("edit,needle", [
    (lambda p: p["anchors"]["vib_table1_vib"].pop("source"), "anchors.vib_table1_vib: missing source"),
    (lambda p: p["anchors"]["vib_table1_vib"].__setitem__("value", "1.13%"), "is not a number"),
    (lambda p: p["protocols"].pop("dim_infobal"), "protocols.dim_infobal: missing"),
])
def test_a_bad_published_file_is_named(tmp_path, edit, needle):
    pub = yaml.safe_load((ROOT / "config/published.yaml").read_text())
    edit(pub)
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(pub))
    with pytest.raises(ValueError, match=needle):
        R.load_published(tmp_path / "p.yaml")
    with pytest.raises(FileNotFoundError, match="nothere.yaml"):
        R.load_published(tmp_path / "nothere.yaml")


PROTOCOL = {"vib_vim": {"source": "x", "dataset": "mnist", "data": "full", "epochs": 200, "covariance": "diagonal"},
            "dim_infobal": {"source": "y", "dataset": "cifar10", "data": "full", "epochs": 1000}}


def one_anchor(value=1.13, primary=True):
    return {"protocols": PROTOCOL, "anchors": {"a": {
        "study": "vib_vim", "claims": ["A4"], "what": "VIB", "value": value, "unit": "percent", "source": "T1",
        "match": {"objective": "vib", "beta": 1e-3, "K": 256, "metric": "err_avg"}, "primary": primary}}}


def anchor_tables(errs):
    import pandas as pd

    m = pd.DataFrame([{"objective": "vib", "beta": 1e-3, "K": 256, "seed": s, "err_avg": e} for s, e in enumerate(errs)],
                     columns=["objective", "beta", "K", "seed", "err_avg"])
    return {"vib_vim": {"metrics": m}, "dim_infobal": {"probes": None, "methods": Methods({}, {})}}


def test_anchor_comparable_only_on_the_published_protocol():
    same = {"vib_vim": {"dataset": "mnist", "data": "full", "epochs": 200, "covariance": "diagonal"}}
    [a] = R.anchors(one_anchor(), same, anchor_tables([0.0112, 0.0115, 0.0118]), RC)
    assert a["comparable"] and a["ratio"] == pytest.approx(1.15 / 1.13)
    assert R.anchor_check(a, RC)["verdict"] == S.SUPPORTED
    [far] = R.anchors(one_anchor(), same, anchor_tables([0.020, 0.021, 0.022]), RC)      # 1.86x published
    assert R.anchor_check(far, RC)["verdict"] == S.CONTRADICTED
    [one] = R.anchors(one_anchor(), same, anchor_tables([0.020]), RC)          # one run decides nothing
    check = R.anchor_check(one, RC)
    assert check["verdict"] == S.INCONCLUSIVE and "1 run(s); at least 2 are needed" in check["reason"]
    assert "ratio 1.77" in check["reason"]

    quick = {"vib_vim": {"dataset": "mnist", "data": "the embedded subset", "epochs": 12, "covariance": "diagonal"}}
    [q] = R.anchors(one_anchor(), quick, anchor_tables([0.0112, 0.0115]), RC)
    assert not q["comparable"] and q["ratio"] == pytest.approx(1.135 / 1.13)    # same data set: ratio shown
    assert q["not_comparable_because"] == ["data the embedded subset (published: full)",
                                           "12 of the published 200 epochs"]
    check = R.anchor_check(q, RC)
    assert check["verdict"] == S.INCONCLUSIVE and "12 of the published 200 epochs" in check["reason"]

    other_data = {"vib_vim": {**same["vib_vim"], "dataset": "fashion"}}
    [o] = R.anchors(one_anchor(), other_data, anchor_tables([0.0112, 0.0115]), RC)
    assert math.isnan(o["ratio"]) and not o["comparable"]                  # no ratio across data sets
    [none] = R.anchors(one_anchor(), same, anchor_tables([]), RC)
    assert none["not_comparable_because"] == ["no matching run in this experiment"]
    # an anchor's own protocol: figure 2's K=2 models, trained fewer epochs than the main models
    k2 = one_anchor()
    k2["anchors"]["a"]["protocol"] = {"k2_epochs": 200}
    short = {"vib_vim": {**same["vib_vim"], "k2_epochs": 50}}
    [s] = R.anchors(k2, short, anchor_tables([0.0112, 0.0115]), RC)
    assert s["not_comparable_because"] == ["50 of the published 200 epochs (k2_epochs)"]
    [s] = R.anchors(k2, {"vib_vim": {**same["vib_vim"], "k2_epochs": 300}}, anchor_tables([0.0112, 0.0115]), RC)
    assert s["comparable"]


# -----------------------------------------------------------------------------
# the files

def test_write_report_files(tmp_path):
    a = write_study_a(tmp_path, vim_err=[0.010, 0.011, 0.012], vib_err=[0.020, 0.022, 0.021],
                      det_err=[0.030, 0.031, 0.029], vim_noise=[0.9, 0.91, 0.92], vib_noise=[0.5, 0.52, 0.51])
    y = {("dim_g", "jsd"): [0.40, 0.42, 0.41], ("dim_l", "jsd"): [0.80, 0.81, 0.82], ("random", "none"): [0.7] * 3}
    b = write_study_b(tmp_path, y, {k: [rising_flat(s / 10) for s in range(3)] for k in y if k[0] != "random"})
    (tmp_path / "figures").mkdir()
    from PIL import Image

    Image.new("RGB", (1500, 600), (255, 0, 0)).save(tmp_path / "figures/error_vs_beta.png")
    (tmp_path / "captions").mkdir()
    (tmp_path / "captions/error_vs_beta.rst").write_text("Test error\nagainst beta.\n")
    config = {**CONFIG, "experiment": "paper"}
    full = report_settings(config)
    specs = {m: spec for m, spec in full["options"]["dim_infobal"]["methods"].items() if m in ("dim_g", "dim_l")}
    full["options"]["dim_infobal"]["methods"] = specs
    settings = {**full,
                "figures": [{"name": "error_vs_beta", "rule": "figures_vib_vim", "rule_file": "workflow/rules/vib_vim.smk",
                             "path": str(tmp_path / "figures/error_vs_beta.png")}]}
    tables = {"vib_vim": a, "dim_infobal": b}
    claims_path, md_path = tmp_path / "claims.json", tmp_path / "REPLICATION.md"
    html_path = tmp_path / "REPLICATION.html"
    claims = R.write_report(settings, tables, ROOT / "config/published.yaml", tmp_path / "captions", claims_path, md_path,
                            html_path)

    strict = json.loads(claims_path.read_text(), parse_constant=lambda c: pytest.fail(f"{c} in claims.json"))
    assert strict["experiment"] == "paper" and [c["id"] for c in strict["claims"]] == list(R.CLAIMS)
    # delta: the fraction from the config, and in every comparison with a difference, how it was computed
    assert strict["negligible_fraction"] == CONFIG["report"]["negligible_fraction"]
    assert all(p["delta_rule"] for c in strict["claims"] for p in c["comparisons"] if p.get("difference"))
    v = {c["id"]: c["verdict"] for c in claims["claims"]}
    assert v["A1"] == S.SUPPORTED and v["B3"] == S.SUPPORTED and v["B1"] == S.INCONCLUSIVE   # no InfoBal runs
    # A4: VIB at 1e-3 (2.1%) beats deterministic; paper holds 5,000 train images out (Alemi trains on
    # all 60,000), so Table 1's 1.13% is shown with its ratio but decides nothing (table1 decides it)
    a4 = next(c for c in claims["claims"] if c["id"] == "A4")
    assert [p["verdict"] for p in a4["comparisons"]] == [S.SUPPORTED, S.INCONCLUSIVE] and a4["verdict"] == S.INCONCLUSIVE
    vib_anchor = next(x for x in claims["anchors"] if x["id"] == "vib_table1_vib")
    assert not vib_anchor["comparable"] and "5,000 held out for validation" in " ".join(vib_anchor["not_comparable_because"])
    # study B on paper: 100 of DIM's 1000 epochs, so its anchors are not comparable
    dim = next(x for x in claims["anchors"] if x["id"] == "dim_table1_dim_l_jsd_y")
    assert not dim["comparable"] and "100 of the published 1000 epochs" in dim["not_comparable_because"]
    md = md_path.read_text()
    # which precision trained each study: paper trains both in float32
    assert strict["facts"]["vib_vim"]["precision"] == strict["facts"]["dim_infobal"]["precision"] == "float32"
    assert "Training precision: Study A (vib_vim) float32; Study B (dim_infobal) float32." in md
    # in study order whatever the order of the facts (the workflow passes them as sorted JSON)
    flipped = {**strict, "facts": {k: strict["facts"][k] for k in ("dim_infobal", "vib_vim")}}
    assert "Training precision: Study A (vib_vim) float32; Study B" in R.render_markdown(flipped, [])
    assert "![Test error against beta.](figures/error_vs_beta.png)" in md
    assert "Made by rule `figures_vib_vim` (workflow/rules/vib_vim.smk)." in md
    for cid in R.CLAIMS:
        assert f"## {cid}: " in md
    for x in claims["anchors"]:
        assert f"`{x['id']}`" in md

    page = html_path.read_text()
    assert "<h2>A1: " in page and "<table>" in page and "figures/error_vs_beta.png" not in page
    import base64
    import io

    embedded = page.split("data:image/png;base64,")[1].split('"')[0]
    with Image.open(io.BytesIO(base64.b64decode(embedded))) as im:      # the figure, 1000 px wide
        assert im.size == (1000, 400) and im.convert("RGB").getpixel((500, 200)) == (255, 0, 0)

    (tmp_path / "captions/error_vs_beta.rst").unlink()
    with pytest.raises(FileNotFoundError, match="error_vs_beta.rst"):
        R.write_report(settings, tables, ROOT / "config/published.yaml", tmp_path / "captions", claims_path, md_path)


def test_an_experiment_of_one_study_reports_that_study_only(tmp_path):
    """table1 runs study A only: its report has A1-A4, study A's anchors and deviations, says that
    the other study is not part of it, and is decided by the published numbers (full MNIST, 200
    epochs: comparable).  Tables of a study it does not run, or none of one it runs, are errors."""
    a = write_study_a(tmp_path, vim_err=[0.0110, 0.0112, 0.0114], vib_err=[0.0114, 0.0116, 0.0115],
                      det_err=[0.0140, 0.0139, 0.0141], vim_noise=[0.9, 0.91, 0.92], vib_noise=[0.9, 0.9, 0.91],
                      validation=False)
    settings = report_settings({**CONFIG, "experiment": "table1"})
    assert settings["studies"] == ["vib_vim"] and set(settings["facts"]) == {"vib_vim"}
    claims_path, md_path = tmp_path / "claims.json", tmp_path / "REPLICATION.md"
    claims = R.write_report({**settings, "figures": []}, {"vib_vim": a}, ROOT / "config/published.yaml",
                            tmp_path, claims_path, md_path)
    assert [c["id"] for c in claims["claims"]] == ["A1", "A2", "A3", "A4"] and claims["studies"] == ["vib_vim"]
    assert {x["study"] for x in claims["anchors"]} == {"vib_vim"} and list(claims["deviations"]) == ["vib_vim"]
    a4 = next(c for c in claims["claims"] if c["id"] == "A4")
    table1 = next(x for x in claims["anchors"] if x["id"] == "vib_table1_vib")
    assert table1["comparable"] and claims["deviations"]["vib_vim"] == []
    assert [p["verdict"] for p in a4["comparisons"]] == [S.SUPPORTED, S.SUPPORTED]    # 1.15% vs 1.13%: ratio 1.02
    md = md_path.read_text()
    assert "runs Study A (vib_vim) only" in md and "## B1" not in md and "not the published protocol" not in md
    # each claim's metric text and labels say how many samples of z err_avg averaged (evaluate.samples)
    assert a4["metric"].startswith("12-sample test error of VIB") and "12 samples of z vote" in claims["claims"][0]["metric"]
    # no validation split (val_size 0): nothing was chosen, and no text says a beta was chosen on validation
    for c in claims["claims"]:
        assert "validation" not in c["metric"].replace("no validation split", ""), c["metric"]
        for comp in c["comparisons"]:
            assert "validation" not in comp.get("note", "").replace("no validation split", ""), comp["note"]
    assert "at its only beta (no validation split: nothing chosen)" in claims["claims"][0]["metric"]
    assert claims["claims"][0]["comparisons"][0]["note"].startswith("each objective at its only beta")
    # how each beta was come by is read from the validation table (one source), not from the config: the
    # same settings over tables with validation errors say the betas were chosen on validation
    chosen = R.build_claims(settings, {"vib_vim": write_study_a(
        tmp_path / "val", vim_err=[0.0110, 0.0112, 0.0114], vib_err=[0.0114, 0.0116, 0.0115],
        det_err=[0.0140, 0.0139, 0.0141], vim_noise=[0.9, 0.91, 0.92], vib_noise=[0.9, 0.9, 0.91])},
                            ROOT / "config/published.yaml")
    assert "at its validation-best beta; 12 samples" in chosen["claims"][0]["metric"]
    assert chosen["claims"][0]["comparisons"][0]["note"].startswith("each objective at its validation-best beta (")
    thirty = R.build_claims({**settings, "options": {"vib_vim": {**settings["options"]["vib_vim"], "samples": 30}}},
                            {"vib_vim": a},
                            ROOT / "config/published.yaml")
    assert thirty["claims"][0]["metric"].endswith("; 30 samples of z vote, 1 sample is additional")
    assert thirty["claims"][0]["comparisons"][0]["name"] == "test error, 30 samples of z"
    with pytest.raises(ValueError, match="expected the tables of exactly those studies"):
        R.build_claims(settings, {"vib_vim": a, "dim_infobal": a}, ROOT / "config/published.yaml")
    with pytest.raises(ValueError, match="runs vib_vim"):
        R.build_claims(settings, {}, ROOT / "config/published.yaml")


def test_report_settings_state_how_the_experiment_differs():
    config = {**CONFIG, "experiment": "quick"}
    quick = report_settings(config)
    assert quick["experiment"] == "quick" and quick["facts"]["vib_vim"]["data"] != "full"
    b = quick["options"]["dim_infobal"]
    assert b["methods"]["dim_l"]["kind"] == "dim_l" and quick["report"]["min_seeds"] >= 2
    assert b["methods"] == method_specs(R_experiment(config, "quick"))
    assert b["kinds"] == PAPER["dim_infobal"]["kinds"]                      # quick inherits paper's kinds
    # how many samples of z err_avg averaged, for the claims' texts (how each beta was come by is the tables')
    assert quick["options"]["vib_vim"] == {"samples": R_experiment(config, "quick")["vib_vim"]["evaluate"]["samples"]}
    pub = R.load_published(ROOT / "config/published.yaml")
    dev = R.deviations(quick["facts"], pub["protocols"])
    assert any("epochs" in r for r in dev["vib_vim"]) and any("local_units" in r for r in dev["dim_infobal"])
    paper = report_settings({**CONFIG, "experiment": "paper"})
    # paper holds 5,000 train images out to choose beta on; Alemi's code trains on all 60,000: table1 does
    assert R.deviations(paper["facts"], pub["protocols"])["vib_vim"] == [
        "data 55,000 of the 60,000 official training images (5,000 held out for validation) (published: full)"]
    table1 = report_settings({**CONFIG, "experiment": "table1"})
    assert R.deviations(table1["facts"], pub["protocols"], ["vib_vim"])["vib_vim"] == []   # table1 is Alemi's protocol
    # what quick evaluates less of than paper is listed too: noise levels, probed layers
    a, b = "; ".join(dev["vib_vim"]), "; ".join(dev["dim_infobal"])
    assert "Gaussian noise at 0.1, 0.3, 0.5, 1 only (paper: 0.1, 0.2, 0.3, 0.5, 0.75, 1)" in a
    assert "salt-and-pepper noise at 0.1, 0.3 only" in a and "FGSM at 0.1, 0.3 only" in a
    assert "probes on layer(s) y only (paper: y, fc, conv)" in b and "Gaussian noise at 0.3, 1 only" in b
    assert "only (paper" not in paper["facts"]["dim_infobal"]["data"] + paper["facts"]["vib_vim"]["data"]
    # the training precision comes from each study's train block
    ib = R_experiment(config, "quick")["dim_infobal"]["train"]["precision"]
    assert quick["facts"]["dim_infobal"]["precision"] == ib and paper["facts"]["vib_vim"]["precision"] == "float32"
    assert "bfloat16 autocast" in R.PRECISION_TEXT["bfloat16"]


def test_cli_names_a_missing_table(tmp_path, capsys):
    from infomax.cli import main

    settings = json.dumps({"experiment": "quick", "studies": ["vib_vim", "dim_infobal"],
                           "options": {"vib_vim": {}, "dim_infobal": METHODS}, "facts": {}, "report": CONFIG["report"]})
    tables = [f"vib_vim.metrics={tmp_path / 'metrics.csv'}", "vib_vim.validation=v", "vib_vim.robustness=r",
              "dim_infobal.curves=c", "dim_infobal.probes=p", "dim_infobal.robustness=r2"]
    out = ["--claims", str(tmp_path / "c.json"), "--markdown", str(tmp_path / "r.md")]
    rc = main(["replication", "--settings", settings, "--table", *tables, *out])
    assert rc == 1 and "metrics.csv: file not found" in capsys.readouterr().err
    # a table left out, or one no study has, is named with the list expected
    rc = main(["replication", "--settings", settings, "--table", *tables[1:], "vib_vim.metric=m", *out])
    err = capsys.readouterr().err
    assert rc == 1 and "unknown vib_vim.metric; missing vib_vim.metrics" in err and "dim_infobal.robustness," in err
    assert not (tmp_path / "c.json").exists() and not (tmp_path / "r.md").exists()


def test_the_report_names_the_precision_each_run_used(tmp_path):
    """precision: auto in the config; what ran is in the tables' precision column (from each
    checkpoint), so the report says what each machine chose, and both when runs differ."""
    a, b, old = tmp_path / "a.csv", tmp_path / "b.csv", tmp_path / "old.csv"
    a.write_text("objective,precision\nvib,bfloat16\nvim,bfloat16\n")
    b.write_text("objective,precision\nvib,float32\n")
    old.write_text("objective,err_avg\nvib,0.1\n")                       # a table from before the column
    assert R.precision_used({"metrics": a}) == ["bfloat16"]
    assert R.precision_used({"metrics": a, "more": b, "old": old}) == ["bfloat16", "float32"]
    assert R.precision_used({"old": old}) == []
    auto = R.precision_text({"precision": "auto", "precision_used": ["bfloat16"]})
    assert auto.startswith(R.PRECISION_TEXT["bfloat16"]) and "(precision auto: bfloat16 where" in auto
    assert R.precision_text({"precision": "auto", "precision_used": ["float32"]}).startswith("float32 (precision auto")
    assert R.precision_text({"precision": "auto", "precision_used": ["bfloat16", "float32"]}).startswith(
        R.PRECISION_TEXT["bfloat16"] + " and float32")
    assert R.precision_text({"precision": "float32", "precision_used": ["float32"]}) == "float32"
    assert R.precision_text({"precision": "bfloat16", "precision_used": []}) == R.PRECISION_TEXT["bfloat16"]
