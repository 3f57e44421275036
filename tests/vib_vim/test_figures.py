"""Study A's figures (infomax.vib_vim.figures) and their vocabulary (vib_vim.tables) on small
synthetic inputs (tests/figure_inputs.py)."""

from pathlib import Path

import matplotlib.text
import numpy as np
import pandas as pd
import pytest
from figure_inputs import assert_figure_files, make_inputs

from infomax.figures import plt
from infomax.vib_vim import figures as FA
from infomax.vib_vim import study as vib_vim_study
from infomax.vib_vim import tables as TA


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    return make_inputs(tmp_path_factory.mktemp("inputs"))


# -----------------------------------------------------------------------------
# helpers and model selection

def test_beta_label():
    assert TA.beta_label(0) == "0"
    assert TA.beta_label(1e-3) == "1e-3"
    assert TA.beta_label(2.5e-4) == "2.5e-4"
    assert TA.beta_label(1.0) == "1"
    assert TA.beta_label(10) == "1e1"


def test_choose_takes_the_best_mean_validation_error_not_min_and_not_test(tmp_path):
    rows = [
        # vib beta=1e-3 has the single lowest value (0.010) but the worse mean (0.030)
        ("vib", 1e-3, 0, 0.010), ("vib", 1e-3, 1, 0.050),
        ("vib", 1e-2, 0, 0.020), ("vib", 1e-2, 1, 0.022),  # mean 0.021 -> best
        # vim: tie on the mean -> the smaller beta
        ("vim", 0.1, 0, 0.020), ("vim", 0.1, 1, 0.030),
        ("vim", 1.0, 0, 0.025), ("vim", 1.0, 1, 0.025),
        ("vim", 10.0, 0, 0.040), ("vim", 10.0, 1, 0.040),
        ("deterministic", 0.0, 0, 0.02), ("deterministic", 0.0, 1, 0.02),
    ]
    df = pd.DataFrame(rows, columns=["objective", "beta", "seed", "val_err_avg"])
    df["K"] = 256
    # K=2 rows with a different winner must be ignored
    df = pd.concat([df, pd.DataFrame([dict(objective="vib", beta=1e-1, seed=0, K=2, val_err_avg=0.0)])])
    path = tmp_path / "validation.csv"
    df.to_csv(path, index=False)
    assert TA.choose(path).best == {"deterministic": 0.0, "vib": 1e-2, "vim": 0.1}
    assert TA.choose(path).selected and TA.choose(path).words == "validation-best beta"
    # no other file is read: a test-metrics file next to it is irrelevant
    (tmp_path / "metrics.csv").write_text("garbage\n")
    assert TA.choose(path).best["vib"] == 1e-2


def test_missing_column_names_file_and_column(tmp_path, inputs):
    bad = tmp_path / "metrics.csv"
    pd.read_csv(inputs["metrics"]).drop(columns=["izy_bits"]).to_csv(bad, index=False)
    with pytest.raises(ValueError, match=r"izy_bits") as info:
        FA.information_plane(bad, tmp_path / "ip")
    assert str(bad) in str(info.value)
    badval = tmp_path / "validation.csv"
    pd.read_csv(inputs["validation"]).drop(columns=["val_err_avg"]).to_csv(badval, index=False)
    with pytest.raises(ValueError, match=r"val_err_avg"):
        TA.choose(badval)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        FA.error_vs_beta(tmp_path / "nope.csv", tmp_path / "e")
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        FA.embedding_k2([tmp_path / "nope.npz"], tmp_path / "e")


def test_missing_npz_key(tmp_path):
    path = tmp_path / "bad.npz"
    np.savez(path, mu=np.zeros((3, 2)))
    with pytest.raises(ValueError, match="sigma"):
        FA.embedding_k2([path], tmp_path / "e")

# -----------------------------------------------------------------------------
# figures

@pytest.mark.slow
def test_all_figures(tmp_path, inputs):
    out = tmp_path / "figs"
    written = FA.make_figures(inputs["metrics"], inputs["validation"], inputs["robustness"],
                                           inputs["npz"], out)
    names = list(vib_vim_study.FIGURES)
    assert len(written) == 2 * len(names)
    for name in names:
        assert_figure_files([p for p in written if p.stem == name], out / name)


def test_individual_figures_return_paths(tmp_path, inputs):
    stem = tmp_path / "sub" / "err"
    paths = FA.error_vs_beta(inputs["metrics"], stem)
    assert_figure_files(paths, stem)


@pytest.mark.slow
def test_one_seed_and_missing_objective(tmp_path):
    inp = make_inputs(tmp_path / "in", seeds=(0,), objectives=("vib", "deterministic"))
    out = tmp_path / "figs"
    written = FA.make_figures(inp["metrics"], inp["validation"], inp["robustness"],
                                           inp["npz"], out)
    assert len(written) == 10
    for p in written:
        assert p.stat().st_size > 1000


@pytest.mark.parametrize("samples, avg, chosen, err", [(30, "30 samples of z", "validation 30-sample error", "err30="),
                                                      (None, "samples of z", "validation sample-averaged error",
                                                       "err_avg=")])
def test_labels_name_the_sample_count_given(tmp_path, inputs, monkeypatch, samples, avg, chosen, err):
    """err_avg's labels say how many samples of z it averaged (the rule passes vib_vim.evaluate.samples),
    and name no count where none is given."""
    texts = {}

    def keep(fig, stem):
        texts[Path(stem).name] = [t.get_text() for t in fig.findobj(matplotlib.text.Text)]
        plt.close(fig)
        return []

    monkeypatch.setattr(FA, "save_figure", keep)
    FA.make_figures(inputs["metrics"], inputs["validation"], inputs["robustness"], inputs["npz"], tmp_path,
                    samples=samples)
    assert any(t.startswith(avg) for t in texts["vib_vim_error_vs_beta"])
    assert any(chosen in t for t in texts["vib_vim_robustness"])
    assert any(err in t for t in texts["vib_vim_embedding_k2"])
    assert not any("12" in t and "sample" in t for ts in texts.values() for t in ts)


def test_robustness_title_without_a_validation_split_says_nothing_was_chosen(tmp_path, inputs, monkeypatch):
    """table1 (val_size 0) trains one beta per objective and has no validation errors: the robustness
    figure must not claim its betas were chosen on validation; with a validation split it still says so."""
    texts = {}

    def keep(fig, stem):
        texts[Path(stem).name] = fig._suptitle.get_text()
        plt.close(fig)
        return []

    monkeypatch.setattr(FA, "save_figure", keep)
    val = pd.read_csv(inputs["validation"])
    one = {o: sorted(val[val["objective"] == o]["beta"].unique())[-1] for o in val["objective"].unique()}
    val = val[[np.isclose(b, one[o]) for o, b in zip(val["objective"], val["beta"])]].assign(val_err_avg=np.nan)
    rob = pd.read_csv(inputs["robustness"])
    rob = rob[[np.isclose(b, one[o]) for o, b in zip(rob["objective"], rob["beta"])]]
    val.to_csv(tmp_path / "validation.csv", index=False)
    rob.to_csv(tmp_path / "robustness.csv", index=False)

    FA.robustness(tmp_path / "robustness.csv", tmp_path / "validation.csv", tmp_path / "none", samples=12)
    FA.robustness(inputs["robustness"], inputs["validation"], tmp_path / "chosen", samples=12)
    assert "chosen on validation" not in texts["none"] and "no validation split" in texts["none"], texts["none"]
    assert "β chosen on validation 12-sample error" in texts["chosen"], texts["chosen"]
