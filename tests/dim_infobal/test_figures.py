"""Study B's figures (infomax.dim_infobal.figures) and their vocabulary (dim_infobal.tables) on
small synthetic inputs (tests/figure_inputs.py)."""

import numpy as np
import pandas as pd
import pytest
from configs import PAPER
from figure_inputs import B_LEVELS, assert_figure_files, make_infobal_inputs

from infomax import figures
from infomax.dim_infobal import figures as FB
from infomax.dim_infobal import study as dim_infobal_study
from infomax.dim_infobal import tables as TB
from infomax.dim_infobal.runs import method_specs

# study B's vocabulary for paper's methods (every method the synthetic tables use)
METHODS = TB.Methods(method_specs(PAPER), PAPER["dim_infobal"]["kinds"])
SETUP = {"linear_epochs": 3, "mlp_epochs": 7, "mlp_hidden": 64, "mlp_dropout": 0.2}   # what the probes were


@pytest.fixture(scope="module")
def b_inputs(tmp_path_factory):
    return make_infobal_inputs(tmp_path_factory.mktemp("b_inputs"))


@pytest.fixture
def captured(monkeypatch):
    """Replace save_figure: keep the figure for inspection instead of writing it."""
    figs = []
    monkeypatch.setattr(FB, "save_figure", lambda fig, stem: figs.append(fig) or [])
    yield figs
    for fig in figs:
        figures.plt.close(fig)


def _lines_by_gid(ax):
    return {line.get_gid(): line for line in ax.get_lines() if line.get_gid()}


def test_every_probe_and_layer_has_one_label_in_plotting_order():
    """The probes' and layers' names live with the code that computes them (probes.PROBES,
    evaluate.LAYERS); the labels of dim_infobal.tables are keyed on exactly those, in that order."""
    from infomax.dim_infobal.evaluate import LAYERS
    from infomax.probes import PROBES

    assert TB.probe_order() is PROBES and tuple(TB.PROBE_NAMES) == PROBES
    assert tuple(TB.LAYER_LABELS) == LAYERS == tuple(TB.LAYER_MARKERS) and set(TB.DIM_LAYER_LABELS) == set(LAYERS)
    # layer y is DIM's Y and InfoBal's R: the label says both, text about DIM alone says Y
    assert TB.LAYER_LABELS["y"] == "Y / R" and TB.DIM_LAYER_LABELS["y"] == "Y"
    assert set(TB.Y_NAMES) == {TB.FAMILY[k] for k in ("dim_g", "infobal")}

def test_infobal_labels():
    m = METHODS
    assert m.run_label("dim_g", "jsd") == "DIM(G) JSD"
    assert m.run_label("dim_l", "dv") == "DIM(L) DV"
    assert m.run_label("infobal_m2", "jsd") == "InfoBal M=2 JSD"
    assert m.run_label("infobal_m4", "nce") == "InfoBal M=4 infoNCE"
    assert m.label("infobal_m2_club") == "InfoBal M=2 (CLUB)"
    assert m.label("infobal_m2_r") == "InfoBal M=2 (target R)"
    assert m.run_label("random", "none") == "random init (untrained)"
    # the label comes from the kind and the options that differ from the kind's, never the name
    kinds = PAPER["dim_infobal"]["kinds"]
    other = TB.Methods({"foo_bar": {"kind": "infobal", **kinds["infobal"], "views": 12, "infomin": "club"}}, kinds)
    assert other.label("foo_bar") == "InfoBal M=12 (CLUB)"
    with pytest.raises(ValueError, match="'my_method' is not in the experiment's config"):
        m.label("my_method")
    # DIM and InfoBal get different colour families, random is grey
    colors = m.colors(["infobal_m2", "dim_l", "random", "dim_g", "infobal_m4"])
    assert colors["random"] == TB.RANDOM_COLOR
    assert {colors["dim_g"], colors["dim_l"]} <= set(TB.FAMILY_PALETTES["dim"])
    assert {colors["infobal_m2"], colors["infobal_m4"]} <= set(TB.FAMILY_PALETTES["infobal"])
    assert len(set(colors.values())) == 5


def _with_dim_l_named(name):
    """paper's methods with DIM(L) (kind dim_l) under ``name``: otherwise the same set."""
    kinds = PAPER["dim_infobal"]["kinds"]
    specs = {(name if m == "dim_l" else m): spec for m, spec in method_specs(PAPER).items()}
    return TB.Methods(specs, kinds)


def test_a_method_is_named_by_its_kind_not_its_name():
    local, plain = _with_dim_l_named("local_dim"), _with_dim_l_named("dim_l")
    assert local.label("local_dim") == plain.label("dim_l") == "DIM(L)"
    assert local.run_label("local_dim", "nce") == "DIM(L) infoNCE"
    assert local.kind("local_dim") == "dim_l" and local.family("local_dim") == "dim"
    assert local.of_kind("dim_l") == ["local_dim"]
    names = lambda m: [n for n in m.specs]                                   # noqa: E731
    lc, pc = local.colors(names(local)), plain.colors(names(plain))
    assert lc["local_dim"] == pc["dim_l"]
    assert {k: v for k, v in lc.items() if k != "local_dim"} == {k: v for k, v in pc.items() if k != "dim_l"}
    assert lc["local_dim"] != lc["dim_g"]                   # a colour of its own, from DIM's palette


def test_random_floor_is_mean_of_random_linear_y_rows(tmp_path):
    rows = [("random", "none", 0, "y", "linear", 0.20), ("random", "none", 1, "y", "linear", 0.30),
            ("random", "none", 0, "fc", "linear", 0.90), ("random", "none", 0, "y", "mlp", 0.80),
            ("dim_g", "jsd", 0, "y", "linear", 0.70)]
    df = pd.DataFrame(rows, columns=["method", "estimator", "seed", "layer", "probe", "acc"])
    assert FB.random_floor(df) == pytest.approx(0.25)
    assert FB.random_floor(df, "y", "mlp") == pytest.approx(0.80)
    assert np.isnan(FB.random_floor(df[df["method"] != "random"]))


def test_infobal_spread_is_mean_min_max_over_seeds():
    df = pd.DataFrame(dict(method="dim_g", estimator="jsd", seed=[0, 1, 2, 0], epoch=[1, 1, 1, 2],
                           acc=[0.1, 0.2, 0.6, np.inf]))
    s = FB._spread(df, ["epoch"], "acc")
    assert s["epoch"].tolist() == [1]  # the inf row is dropped, not averaged
    row = s.iloc[0]
    assert (row["mean"], row["lo"], row["hi"], row["n"]) == pytest.approx((0.3, 0.1, 0.6, 3))
    assert FB._runs_seeds_note(df) == "n seeds = 3"
    assert FB._runs_seeds_note(df[df["seed"] == 0]) == "n seeds = 1 (no spread)"


def test_curves_draws_random_floor_and_means(b_inputs, captured):
    FB.curves(b_inputs["curves"], "unused", METHODS)
    (fig,) = captured
    curves = pd.read_csv(b_inputs["curves"], keep_default_na=False, na_values=[""])
    rnd = curves[curves["method"] == "random"]
    assert len(rnd) == 2 and set(rnd["epoch"]) == {0}  # both seeds, the epoch-0 point only
    acc_axes = [ax for ax in fig.axes if str(ax.get_gid()).startswith("acc:")]
    assert len(acc_axes) == 3
    for ax in acc_axes:    # the floor is the same (curve) probe on the untrained encoder
        floor = _lines_by_gid(ax)["random_floor"]
        assert np.allclose(floor.get_ydata(), 100 * rnd["probe_acc"].mean())
    # a curve is the mean over seeds, per epoch
    mi_axes = {ax.get_gid(): ax for ax in fig.axes if str(ax.get_gid()).startswith("mi:")}
    line = _lines_by_gid(mi_axes["mi:dv"])["infobal_m2/dv"]
    rows = curves[(curves["method"] == "infobal_m2") & (curves["estimator"] == "dv")]
    expected = rows.groupby("epoch")["mi_estimate"].mean()
    assert np.allclose(line.get_xdata(), expected.index) and np.allclose(line.get_ydata(), expected.values)
    acc_line = _lines_by_gid(next(ax for ax in acc_axes if ax.get_gid() == "acc:dv"))["infobal_m2/dv"]
    assert np.allclose(acc_line.get_ydata(), 100 * rows.groupby("epoch")["probe_acc"].mean().values)


def test_curves_one_mi_axis_per_estimator(b_inputs, captured):
    FB.curves(b_inputs["curves"], "unused", METHODS)
    (fig,) = captured
    curves = pd.read_csv(b_inputs["curves"])
    mi_axes = [ax for ax in fig.axes if str(ax.get_gid()).startswith("mi:")]
    assert sorted(ax.get_gid() for ax in mi_axes) == ["mi:dv", "mi:jsd", "mi:nce"]
    for ax in mi_axes:
        est = ax.get_gid().split(":")[1]
        gids = list(_lines_by_gid(ax))
        assert gids, ax.get_gid()
        assert {g.split("/")[1] for g in gids} == {est}  # never two estimators on one MI axis
        assert "random" not in {g.split("/")[0] for g in gids}  # random has no curve
        # ... and the values drawn are this estimator's (the synthetic scales do not overlap at the end)
        values = curves.loc[curves["estimator"] == est, "mi_estimate"]
        for line in _lines_by_gid(ax).values():
            assert values.min() <= line.get_ydata().min() and line.get_ydata().max() <= values.max()
    # the MI axes do not share a y axis (their scales differ)
    assert not any(mi_axes[0].get_shared_y_axes().joined(mi_axes[0], ax) for ax in mi_axes[1:])


def test_probes_values(b_inputs, captured):
    FB.probes(b_inputs["probes"], "unused", METHODS, SETUP)
    (fig,) = captured
    probes = pd.read_csv(b_inputs["probes"], keep_default_na=False)
    axes = {ax.get_gid(): ax for ax in fig.axes}
    assert set(axes) == {"probe:linear", "probe:mlp"}
    # the panel titles say what each probe was, from the evaluate block (not paper's 4 epochs / 200 units)
    assert axes["probe:linear"].get_title() == "probe: linear (3 ep., InfoBal post)"
    assert axes["probe:mlp"].get_title() == "probe: MLP 64 units, 7 ep. (DIM)"
    # a dot is the mean over seeds, its bar spans min..max
    rows = probes[(probes["method"] == "dim_l") & (probes["estimator"] == "nce") & (probes["layer"] == "fc")
                  & (probes["probe"] == "mlp")]["acc"] * 100
    ax = axes["probe:mlp"]
    dots = [c for c in ax.containers if c.lines[0].get_gid() == "dim_l/nce/fc"]
    assert len(dots) == 1
    assert np.allclose(dots[0].lines[0].get_xdata(), rows.mean())
    bar = dots[0].lines[2][0].get_segments()[0]
    assert np.allclose(sorted(bar[:, 0]), [rows.min(), rows.max()])
    # the random floor is a row of its own (last) and a dashed line at its linear/y mean
    labels = [t.get_text() for t in axes["probe:linear"].get_yticklabels()]
    assert labels[-1] == "random init (untrained)" and labels[0] == "DIM(G) JSD"
    rnd = probes[(probes["method"] == "random") & (probes["layer"] == "y") & (probes["probe"] == "linear")]
    floor = _lines_by_gid(axes["probe:linear"])["random_floor"]
    assert np.allclose(floor.get_xdata(), 100 * rnd["acc"].mean())


def test_robustness_lines(b_inputs, captured):
    FB.robustness(b_inputs["robustness"], "unused", METHODS)
    (fig,) = captured
    rob = pd.read_csv(b_inputs["robustness"], keep_default_na=False)
    axes = {ax.get_gid(): ax for ax in fig.axes}
    assert set(axes) == {"robustness:jsd", "robustness:dv", "robustness:nce"}
    for gid, ax in axes.items():
        lines = _lines_by_gid(ax)
        assert "random/none" in lines  # the floor in every panel
        assert {g.split("/")[1] for g in lines if not g.startswith("random")} == {gid.split(":")[1]}
    line = _lines_by_gid(axes["robustness:jsd"])["dim_g/jsd"]
    expected = rob[(rob["method"] == "dim_g") & (rob["estimator"] == "jsd")].groupby("level")["acc"].mean()
    assert np.allclose(line.get_xdata(), B_LEVELS) and np.allclose(line.get_ydata(), 100 * expected.values)


@pytest.mark.slow
def test_make_infobal_figures(tmp_path, b_inputs):
    import matplotlib.image

    out = tmp_path / "figs"
    written = FB.make_figures(b_inputs["curves"], b_inputs["probes"], b_inputs["robustness"], out, METHODS, SETUP)
    names = list(dim_infobal_study.FIGURES)
    assert len(written) == 6
    for name in names:
        assert_figure_files([p for p in written if p.stem == name], out / name)
        img = matplotlib.image.imread(out / f"{name}.png")
        assert img.ndim == 3 and img.shape[0] > 300 and img.shape[1] > 600


def test_infobal_one_seed(tmp_path):
    inp = make_infobal_inputs(tmp_path / "in", seeds=(0,), runs=[("dim_g", "jsd"), ("infobal_m2", "jsd")])
    written = FB.make_figures(inp["curves"], inp["probes"], inp["robustness"], tmp_path / "figs", METHODS, SETUP)
    assert len(written) == 6
    for p in written:
        assert p.stat().st_size > 1000


def test_infobal_missing_random_warns_and_still_draws(tmp_path):
    inp = make_infobal_inputs(tmp_path / "in", seeds=(0,), runs=[("dim_g", "jsd")], random=False)
    with pytest.warns(UserWarning, match="random"):
        paths = FB.curves(inp["curves"], tmp_path / "c", METHODS)
    assert_figure_files(paths, tmp_path / "c")


@pytest.mark.parametrize("which,column,func", [
    ("curves", "mi_estimate", lambda p, out: FB.curves(p["curves"], out, METHODS)),
    ("probes", "layer", lambda p, out: FB.probes(p["probes"], out, METHODS, SETUP)),
    ("probes", "acc", lambda p, out: FB.probes(p["probes"], out, METHODS, SETUP)),
    ("robustness", "level", lambda p, out: FB.robustness(p["robustness"], out, METHODS)),
])
def test_infobal_missing_column_names_file_and_column(tmp_path, b_inputs, which, column, func):
    bad = tmp_path / f"bad_{which}.csv"
    pd.read_csv(b_inputs[which], keep_default_na=False).drop(columns=[column]).to_csv(bad, index=False)
    with pytest.raises(ValueError, match=column) as info:
        func({**b_inputs, which: bad}, tmp_path / "f")
    assert str(bad) in str(info.value)
    assert "expected columns" in str(info.value)
    assert not list(tmp_path.glob("f.*"))  # nothing written


def test_infobal_missing_or_empty_file(tmp_path, b_inputs):
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        FB.probes(tmp_path / "nope.csv", tmp_path / "p", METHODS, SETUP)
    header_only = tmp_path / "probes.csv"
    header_only.write_text("method,estimator,seed,layer,probe,acc\n")
    with pytest.raises(ValueError, match=r"probes\.csv: the table has no rows"):
        FB.probes(header_only, tmp_path / "p", METHODS, SETUP)
    blank = tmp_path / "robustness.csv"
    blank.write_text("")
    with pytest.raises(ValueError, match=r"robustness\.csv: file is empty"):
        FB.robustness(blank, tmp_path / "r", METHODS)
    no_noise = tmp_path / "rob2.csv"
    pd.read_csv(b_inputs["robustness"], keep_default_na=False).assign(attack="fgsm").to_csv(no_noise, index=False)
    with pytest.raises(ValueError, match="attack=gaussian"):
        FB.robustness(no_noise, tmp_path / "r", METHODS)
