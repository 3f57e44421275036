"""The fourth verdict, negligible (the whole interval inside +-delta), delta's one rule, and the
projection of how many seeds an open comparison needs: made comparisons on each side of each
boundary, delta and the projection against hand computations."""

import math

import numpy as np
import pytest
from base.test_config import broken
from base.test_report import write_study_a
from configs import CONFIG, report_config

from infomax import report as R
from infomax import stats as S
from infomax.vib_vim import claims as claims_a

RC = report_config()
SEEDS = [f"s{i}" for i in range(5)]
# Student t, 97.5% quantiles (statistical tables): degrees of freedom -> t
T975 = {4: 2.776445, 5: 2.570582, 8: 2.306004, 9: 2.262157}


def made(mean, sd, n=5, base=5.0):
    """Error rates in % (lower is better) whose paired differences, other minus claimed, have
    exactly ``mean`` and sample sd ``sd``: the claimed side beats the other by ``mean`` points.
    The other side is ``base`` on every seed, so delta = 0.1 x base."""
    z = np.arange(n, dtype=float) - (n - 1) / 2
    z = z / z.std(ddof=1) if n > 1 else z
    seeds = [f"s{i}" for i in range(n)]
    claimed = {s: base - (mean + sd * e) for s, e in zip(seeds, z)}
    return claimed, {s: base for s in seeds}


def compare(mean, sd, n=5, rc=RC, **kw):
    claimed, other = made(mean, sd, n)
    return S.comparison("c", "err", "%", "X", claimed, "Y", other, rc, higher_is_better=False, error=S.ERROR, **kw)


def half(sd, n):
    return T975[n - 1] * sd / math.sqrt(n)


# -----------------------------------------------------------------------------
# the boundaries: delta = 0.1 x 5% = 0.5 points; the half-width at sd 0.1, n 5 is 0.124

@pytest.mark.parametrize("mean,sd,verdict,why", [
    (0.10, 0.1, S.NEGLIGIBLE, "inside ±δ, containing 0"),
    (0.30, 0.1, S.NEGLIGIBLE, "inside ±δ and clearly above 0: too small to matter, not supported"),
    (-0.30, 0.1, S.NEGLIGIBLE, "inside ±δ and clearly below 0: not contradicted"),
    (0.45, 0.1, S.SUPPORTED, "straddles +δ, above the margin 0: supported (part of it matters)"),
    (-0.45, 0.1, S.CONTRADICTED, "straddles -δ, below the margin"),
    (0.40, 0.4, S.INCONCLUSIVE, "straddles +δ and contains 0"),
    (1.00, 0.1, S.SUPPORTED, "beyond the margin and beyond δ"),
    (-1.00, 0.1, S.CONTRADICTED, "below the margin and beyond -δ"),
])
def test_each_side_of_each_boundary(mean, sd, verdict, why):
    c = compare(mean, sd)
    lo, hi = c["difference"]["ci"]
    assert c["delta"] == pytest.approx(0.5)
    assert (hi - lo) / 2 == pytest.approx(half(sd, 5), rel=1e-5)      # the interval the case was built for
    assert c["verdict"] == verdict, (why, c["reason"])
    if verdict == S.NEGLIGIBLE:
        assert "inside ±δ = ±0.5" in c["reason"] and c["projection"] is None
    if verdict == S.INCONCLUSIVE:
        assert "does not lie inside ±δ = ±0.5" in c["reason"] and c["projection"]["seeds"] is not None


def test_a_negligible_reason_says_how_large_and_whether_it_is_clear():
    worse = compare(-0.3, 0.1)                                  # [-0.42, -0.18]: clearly worse, below δ
    assert worse["reason"].startswith("X is 0.3 % worse than Y: significant (the interval [")
    assert worse["reason"].endswith("excludes 0), but it lies inside ±δ = ±0.5, too small to matter")
    flat = compare(0.1, 0.1)                                    # [-0.02, 0.22]
    assert flat["reason"].startswith("X is 0.1 % better than Y: not significant (the interval [")
    assert "contains 0), and it lies inside ±δ = ±0.5" in flat["reason"]


def test_the_delta_interval_is_open():
    diff = {"n": 5, "ci": [-0.2, 0.5]}
    assert S.decide(diff, S.ABOVE, 0.0, 2, delta=0.5)[0] == S.INCONCLUSIVE        # touches +δ: not inside
    assert S.decide({"n": 5, "ci": [-0.2, 0.4999]}, S.ABOVE, 0.0, 2, delta=0.5)[0] == S.NEGLIGIBLE
    assert S.decide({"n": 5, "ci": [0.1, 0.5]}, S.ABOVE, 0.0, 2, delta=0.5)[0] == S.SUPPORTED
    assert S.decide({"n": 5, "ci": [-0.5, -0.1]}, S.ABOVE, 0.0, 2, delta=0.5)[0] == S.CONTRADICTED
    assert S.decide({"n": 5, "ci": [-0.1, 0.1]}, S.ABOVE, 0.0, 2)[0] == S.INCONCLUSIVE    # no delta: three outcomes
    assert S.decide({"n": 1, "ci": [-0.1, 0.1]}, S.ABOVE, 0.0, 2, delta=0.5)[0] == S.INCONCLUSIVE   # min_seeds first


def test_claims_with_an_explicit_margin_keep_their_rules():
    # a tight interval around 0: "beats by more than 5" is contradicted, "at most 1" is supported
    claimed, other = made(0.0, 0.05)
    wide = S.comparison("c", "acc", "%", "X", claimed, "Y", other, RC, margin=5.0, error=S.ACCURACY)
    most = S.comparison("c", "acc", "%", "X", claimed, "Y", other, RC, direction=S.BELOW, margin=1.0,
                        error=S.ACCURACY)
    assert wide["verdict"] == S.CONTRADICTED and most["verdict"] == S.SUPPORTED
    assert wide["delta"] is None and most["delta"] is None
    assert wide["delta_rule"].startswith("none: the claim has an explicit margin (above 5 %)")
    assert "at or below 1 %" in most["delta_rule"]


def test_a_metric_without_an_error_has_no_negligible_outcome():
    claimed, other = made(0.0, 0.05)
    mi = S.comparison("c", "mi", "nats", "X", claimed, "Y", other, RC, no_delta="nats have no error")
    assert mi["verdict"] == S.INCONCLUSIVE and mi["delta"] is None and mi["delta_rule"] == "none: nats have no error"
    with pytest.raises(ValueError, match="needs the metric in %"):
        S.comparison("c", "mi", "nats", "X", claimed, "Y", other, RC, error=S.ACCURACY)


# -----------------------------------------------------------------------------
# delta by hand

def test_delta_is_the_fraction_of_the_beaten_sides_error_by_hand():
    acc = S.comparison("c", "acc", "%", "VIM", {"s0": 94.0, "s1": 94.2}, "VIB", {"s0": 94.4, "s1": 94.6}, RC,
                       error=S.ACCURACY)
    assert acc["delta"] == pytest.approx(0.1 * (100 - 94.5))            # VIB, the beaten side: 5.5% error
    assert "100 - VIB's mean accuracy 94.50% = 5.50" in acc["delta_rule"] and acc["delta_rule"].endswith("0.55 points")
    err = S.comparison("c", "err", "%", "VIM", {"s0": 5.0, "s1": 5.2}, "VIB", {"s0": 5.3, "s1": 5.5}, RC,
                       higher_is_better=False, error=S.ERROR)
    assert err["delta"] == pytest.approx(0.1 * 5.4) and "VIB's mean error 5.40%" in err["delta_rule"]
    doubled = S.comparison("c", "err", "%", "VIM", {"s0": 5.0, "s1": 5.2}, "VIB", {"s0": 5.3, "s1": 5.5},
                           report_config(negligible_fraction=0.2), higher_is_better=False, error=S.ERROR)
    assert doubled["delta"] == pytest.approx(0.2 * 5.4)


def test_study_a_takes_delta_from_the_vib_side(tmp_path):
    t = write_study_a(tmp_path, vim_err=[0.0540, 0.0545, 0.0538], vib_err=[0.0541, 0.0543, 0.0542],
                      det_err=[0.060, 0.061, 0.059], vim_noise=[0.90, 0.91, 0.92], vib_noise=[0.90, 0.912, 0.918])
    parts = claims_a.claims(claims_a.read_tables(t), RC)
    a1 = parts["A1"][0]
    assert a1["sides"][1]["label"].startswith("VIB") and a1["delta"] == pytest.approx(0.1 * 5.42)
    assert a1["verdict"] == S.NEGLIGIBLE, a1["reason"]                  # 0.0 +- 0.08 points, inside ±0.542
    a3 = parts["A3"][0]                                                 # an accuracy: 100 - VIB's 94.58
    assert a3["delta"] == pytest.approx(0.1 * (100 - 94.58))
    a4 = parts["A4"][0]                                                 # the beaten side is the deterministic
    assert a4["delta"] == pytest.approx(0.1 * 6.0)
    a2 = parts["A2"][0]
    assert a2["delta"] == pytest.approx(0.1 * (100 - 100 * np.mean([0.90, 0.912, 0.918])))


# -----------------------------------------------------------------------------
# a claim of several comparisons

def test_combine_with_negligible_parts():
    s, n, i, c = ({"name": k, "verdict": v} for k, v in (("s", S.SUPPORTED), ("n", S.NEGLIGIBLE),
                                                          ("i", S.INCONCLUSIVE), ("c", S.CONTRADICTED)))
    assert S.combine([n, n]) == (S.NEGLIGIBLE, "negligible: n; n")
    assert S.combine([n, s]) == (S.NEGLIGIBLE, "negligible: n; supported: s")
    assert S.combine([n, i]) == (S.INCONCLUSIVE, "not decided by: i; negligible: n")
    assert S.combine([n, c])[0] == S.CONTRADICTED
    assert S.combine([s, {**n, "votes": False}])[0] == S.SUPPORTED        # an additional part does not vote


# -----------------------------------------------------------------------------
# the projection

def test_projection_to_supported_by_hand():
    # observed 0.3 points, sd 0.4 over 5 paired seeds: half-width 2.776 * 0.4 / sqrt(5) = 0.497
    c = compare(0.3, 0.4)
    assert c["verdict"] == S.INCONCLUSIVE
    # it excludes 0 once t(n-1) * 0.4 / sqrt(n) < 0.3: not at 9 seeds, at 10 (before ±δ: that needs < 0.2)
    assert half(0.4, 9) >= 0.3 > half(0.4, 10)
    p = c["projection"]
    assert p["seeds"] == 10 and p["verdict"] == S.SUPPORTED
    assert p["text"].startswith("at this spread, about 10 seeds per side would make the interval lie above 0")


def test_projection_to_negligible_by_hand():
    # observed 0.05, sd 0.4: inside ±0.5 once 0.05 + t(n-1) * 0.4 / sqrt(n) < 0.5, i.e. at 6 seeds
    c = compare(0.05, 0.4)
    assert c["verdict"] == S.INCONCLUSIVE
    assert 0.05 + half(0.4, 5) >= 0.5 > 0.05 + half(0.4, 6)
    assert (c["projection"]["seeds"], c["projection"]["verdict"]) == (6, S.NEGLIGIBLE)
    assert "fall inside ±δ = ±0.5 (negligible)" in c["projection"]["text"]


def exact(mean, sd, n, keys):
    z = np.arange(n, dtype=float) - (n - 1) / 2
    return {k: mean + sd * e for k, e in zip(keys, z / z.std(ddof=1))}


@pytest.mark.parametrize("paired", [True, False])
def test_the_projected_seeds_decide_the_same_test_and_one_fewer_does_not(paired):
    """Runs with the observed means and spread, at the projected number of seeds: the real
    comparison decides there and not one seed earlier (paired and Welch)."""
    def sides(n):
        a_keys = [f"s{i}" for i in range(n)]
        b_keys = a_keys if paired else [f"t{i}" for i in range(n)]
        if paired:
            claimed, other = made(0.2, 0.5, n)
            return claimed, other
        return exact(94.2, 0.3, n, a_keys), exact(94.0, 0.4, n, b_keys)

    def cmp(n):
        a, b = sides(n)
        if paired:
            return S.comparison("c", "err", "%", "X", a, "Y", b, RC, higher_is_better=False, error=S.ERROR)
        return S.comparison("c", "acc", "%", "X", a, "Y", b, RC, error=S.ACCURACY)

    first = cmp(5)
    assert first["verdict"] == S.INCONCLUSIVE and first["difference"]["paired"] == paired
    p = first["projection"]
    n = p["seeds"]
    assert n > 5 and ("Welch" in p["basis"]) != paired
    assert cmp(n)["verdict"] == p["verdict"] and cmp(n - 1)["verdict"] == S.INCONCLUSIVE


def test_no_projection_without_a_spread_or_with_a_difference_on_the_margin():
    one = S.comparison("c", "err", "%", "X", {"s0": 5.0}, "Y", {"s0": 5.1}, RC, higher_is_better=False, error=S.ERROR)
    assert one["projection"]["seeds"] is None and "at least 2 runs" in one["projection"]["text"]
    claimed, other = made(0.0, 0.4)
    flat = S.comparison("c", "mi", "nats", "X", claimed, "Y", other, RC, no_delta="nats")   # 0 exactly, no delta
    assert flat["projection"]["seeds"] is None
    assert flat["projection"]["text"].startswith(f"at this spread, more than {S.PROJECTION_CAP} seeds per side")
    broken_run = S.comparison("c", "err", "%", "X", {**claimed, "s4": math.nan}, "Y", other, RC,
                              higher_is_better=False, error=S.ERROR)
    assert broken_run["verdict"] == S.INCONCLUSIVE and broken_run["projection"] is None


# -----------------------------------------------------------------------------
# the report and the forest plot

def claims_of(*comparisons):
    return {"experiment": "t", "studies": ["vib_vim"], "confidence": 0.95, "min_seeds": 2, "negligible_fraction": 0.1,
            "deviations": {}, "anchors": [], "reconstructed": [],
            "claims": [{"id": "A1", "statement": "s", "study": "vib_vim", "verdict": "negligible", "reason": "r",
                        "metric": "m", "comparisons": list(comparisons)}]}


def test_the_report_states_delta_in_every_comparison_and_the_projection():
    negl, open_ = compare(0.1, 0.1), compare(0.3, 0.4)
    wide_a, wide_b = made(-10.0, 0.1)          # accuracies: X is 10 points above Y
    wide = S.comparison("w", "acc", "%", "X", wide_a, "Y", wide_b, RC, margin=5.0, error=S.ACCURACY)
    md = R.render_markdown(claims_of(negl, open_, wide), [])
    assert md.count("  - smallest effect of interest: ") == 3
    assert "**negligible**, X is 0.1 % better than Y: not significant" in md
    assert "the smallest difference this experiment could detect: ±0.50 % (the interval's half-width); at this " \
           "spread, about 10 seeds per side would make the interval lie above 0 (supported)" in md
    assert "smallest effect of interest: none: the claim has an explicit margin" in md


def test_forest_plot_draws_the_delta_band_and_a_fourth_colour(tmp_path, monkeypatch):
    negl, open_, sup = compare(0.1, 0.1), compare(0.3, 0.4), compare(1.0, 0.1)
    wide_a, wide_b = made(-10.0, 0.1)          # accuracies: X is 10 points above Y
    wide = S.comparison("w", "acc", "%", "X", wide_a, "Y", wide_b, RC, margin=5.0, error=S.ACCURACY)
    claims = claims_of(negl, open_, sup, wide)
    rows = R.forest_rows(claims)
    assert [r["verdict"] for r in rows] == [S.NEGLIGIBLE, S.INCONCLUSIVE, S.SUPPORTED, S.SUPPORTED]
    # the band is delta in half-widths; a negligible row's interval [z - 1, z + 1] lies inside it
    for r in rows[:3]:
        assert r["band"] == pytest.approx(0.5 / r["half"])
    assert -rows[0]["band"] < rows[0]["z"] - 1 and rows[0]["z"] + 1 < rows[0]["band"]
    assert not (rows[1]["z"] + 1 < rows[1]["band"] and rows[1]["z"] - 1 > -rows[1]["band"])
    assert rows[3]["band"] is None and "\u03b4 = 0.5" in R._forest_text(rows[0])

    import infomax.figures as F
    seen = {}
    real = F.save_figure

    def keep(fig, stem):
        ax = fig.axes[1]                              # the first study's interval axis
        seen["bands"] = [p.get_paths()[0].get_extents() for p in ax.collections]
        seen["legend"] = [t.get_text() for leg in fig.legends for t in leg.get_texts()]
        seen["colours"] = {tuple(line.get_color()) if not isinstance(line.get_color(), str) else line.get_color()
                           for line in ax.lines}
        return real(fig, stem)

    monkeypatch.setattr(F, "save_figure", keep)
    paths = R.forest_figure(claims, tmp_path / "forest")
    assert all(p.stat().st_size > 1000 for p in paths)
    # one band per direction row, centred on the line and as wide as ±band; none for the margin row
    assert len(seen["bands"]) == 3
    for box, r in zip(seen["bands"], rows):
        assert box.x0 == pytest.approx(-r["band"]) and box.x1 == pytest.approx(r["band"])
    assert R.VERDICT_COLORS[S.NEGLIGIBLE] in seen["colours"]
    assert S.NEGLIGIBLE in seen["legend"]
    assert any(t.startswith("\u00b1\u03b4: too small to matter\n(0.1 \u00d7 the beaten side's error)") for t in seen["legend"])


# -----------------------------------------------------------------------------
# one source: the YAML

def test_the_fraction_lives_in_the_yaml_only():
    assert CONFIG["report"]["negligible_fraction"] == RC.negligible_fraction == 0.1
    block = {k: v for k, v in CONFIG["report"].items() if k != "negligible_fraction"}
    with pytest.raises(ValueError, match=r"report\.negligible_fraction: missing"):
        R.ReportConfig.of(block)
    for bad in (0, 1, 1.5):
        with pytest.raises(ValueError, match=r"report\.negligible_fraction = "):
            report_config(negligible_fraction=bad)


def test_the_schema_requires_the_fraction():
    msg = broken(lambda c: c["report"].pop("negligible_fraction"))
    assert "negligible_fraction" in msg and "report" in msg
    msg = broken(lambda c: c["report"].__setitem__("negligible_fraction", 2))
    assert "report.negligible_fraction" in msg

