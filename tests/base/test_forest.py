"""Inconclusive says how close it came: the smallest detectable difference of each undecided
comparison, and the forest plot of every voting comparison at the top of the report."""

import math

import pytest
from configs import report_config

from infomax import report as R
from infomax import stats


def claims_of(*comparisons):
    return {"experiment": "t", "studies": ["vib_vim", "dim_infobal"], "confidence": 0.95, "min_seeds": 2,
            "negligible_fraction": 0.1,
            "deviations": {}, "anchors": [], "reconstructed": [],
            "claims": [{"id": "A1", "statement": "s", "verdict": "inconclusive", "reason": "r", "metric": "m",
                        "comparisons": list(comparisons)}]}


def test_the_detectable_difference_is_the_half_width_of_the_interval():
    rc = report_config()
    p = stats.comparison("c", "m", "%", "A", {"s0": 1.0, "s1": 3.0, "s2": 2.0}, "B",
                         {"s0": 1.5, "s1": 1.0, "s2": 2.5}, rc)
    lo, hi = p["difference"]["ci"]
    assert p["verdict"] == stats.INCONCLUSIVE and p["detectable"] == pytest.approx((hi - lo) / 2)
    # t(0.975, 2) = 4.3027 times the standard error of the paired differences (-0.5, 2.0, -0.5)
    d = [-0.5, 2.0, -0.5]
    sd = math.sqrt(sum((x - sum(d) / 3) ** 2 for x in d) / 2)
    assert p["detectable"] == pytest.approx(4.3027 * sd / math.sqrt(3), rel=1e-4)
    md = R.render_markdown(claims_of(p), [])
    assert f"±{p['detectable']:.2f} %" in md and "how close it came: observed 0.33 %" in md
    one = stats.comparison("c", "m", "%", "A", {"s0": 1.0}, "B", {"s0": 2.0}, rc)
    assert one["detectable"] is None and "none (no interval" in R.render_markdown(claims_of(one), [])


def test_forest_plot_has_a_row_per_voting_comparison_coloured_by_verdict(tmp_path):
    rc = report_config()
    win = stats.comparison("win", "m", "%", "A", {"s0": 9.0, "s1": 9.5, "s2": 9.2}, "B",
                           {"s0": 1.0, "s1": 1.2, "s2": 0.9}, rc)
    open_ = stats.comparison("open", "m", "nats", "A", {"s0": 1.0, "s1": 3.0}, "B", {"s0": 2.0, "s1": 1.0}, rc)
    extra = stats.comparison("extra", "m", "%", "A", {"s0": 1.0, "s1": 2.0}, "B", {"s0": 1.0, "s1": 2.0}, rc,
                             votes=False)
    claims = claims_of(win, open_, extra)
    rows = R.forest_rows(claims)
    assert [(r["label"], r["verdict"], r["unit"]) for r in rows] == [
        ("A1: win", stats.SUPPORTED, "%"), ("A1: open", stats.INCONCLUSIVE, "nats")]
    paths = R.forest_figure(claims, tmp_path / "forest")
    assert [p.suffix for p in paths] == [".png", ".pdf"] and all(p.stat().st_size > 1000 for p in paths)


def made_paper_like_claims():
    """A claims file shaped like a 5-seed run: study A's differences of 0.0-0.4 points with
    intervals of +-0.2-0.4, study B's of -15 to +48 points and one in nats, "at most" claims included."""
    rc = report_config()
    seeds = [f"s{i}" for i in range(5)]

    def comp(name, unit, base, diffs, **kw):
        return stats.comparison(name, "m", unit, "X", {s: base + d for s, d in zip(seeds, diffs)}, "Y",
                                {s: base for s in seeds}, rc, **kw)

    a = [comp("A err", "%", 4.0, [-0.3, -0.2, -0.4, -0.3, -0.35], higher_is_better=False),    # +0.3 favours
         comp("A noise", "%", 80.0, [0.4, -0.2, 0.1, 0.3, -0.1]),                           # ~+0.1, open
         comp("A probe", "%", 95.0, [-0.1, -0.3, -0.2, -0.4, -0.2]),                        # -0.24: contradicted
         comp("A4 det", "%", 4.6, [0.1, -0.2, 0.2, 0.0, 0.05], higher_is_better=False)]
    b = [comp("B1 jsd", "%", 80.0, [-14.0, -16.0, -15.5, -13.0, -16.5], direction=stats.BELOW, margin=1.0),
         comp("B1 dv", "%", 70.0, [0.5, 2.5, -1.0, 3.0, 1.5], direction=stats.BELOW, margin=1.0),
         comp("B2 probe", "%", 60.0, [0.5, 3.0, 2.8, 2.5, 3.5], direction=stats.BELOW, margin=1.0),
         comp("B3 wide", "%", 40.0, [47.0, 49.0, 48.0, 46.5, 50.0], margin=5.0),
         comp("B2 mi", "nats", 1.0, [0.02, 0.05, 0.01, 0.04, 0.03])]
    claims = claims_of(*a)
    claims["claims"][0]["study"] = "vib_vim"
    claims["claims"].append({"id": "B1", "statement": "s", "verdict": "inconclusive", "reason": "r", "metric": "m",
                             "study": "dim_infobal", "comparisons": b})
    return claims


def test_forest_rows_put_every_claim_on_one_scale_where_right_favours_the_claim():
    rows = {r["label"].split(": ")[1]: r for r in R.forest_rows(made_paper_like_claims())}
    for r in rows.values():
        # the verdict reads off the scaled interval [z - 1, z + 1] against the margin at 0
        z = r["z"]
        want = stats.SUPPORTED if z - 1 > 0 else stats.CONTRADICTED if z + 1 < 0 else stats.INCONCLUSIVE
        assert r["verdict"] == want, r["label"]
        # z is the difference's distance from the margin in half-widths, sign flipped for "at most"
        sign = -1 if r["direction"] == stats.BELOW else 1
        assert z == pytest.approx(sign * (r["mean"] - r["margin"]) / r["half"])
    # "InfoBal's advantage is at most 1 point" at -15: supported, and drawn on the right
    assert rows["B1 jsd"]["verdict"] == stats.SUPPORTED and rows["B1 jsd"]["z"] > 1
    assert rows["B2 probe"]["verdict"] == stats.CONTRADICTED and rows["B2 probe"]["z"] < -1
    assert rows["A probe"]["verdict"] == stats.CONTRADICTED and rows["A probe"]["z"] < -1
    # study A's sub-point differences are as far from the margin, on this scale, as B's tens of points
    assert abs(rows["A err"]["z"]) > 1 and rows["A err"]["verdict"] == stats.SUPPORTED
    assert rows["B1 dv"]["zero"] == pytest.approx(1.0 / rows["B1 dv"]["half"])   # -(0 - 1) / half


def test_forest_plot_of_a_paper_like_run_draws_every_interval_legibly(tmp_path):
    claims = made_paper_like_claims()
    paths = R.forest_figure(claims, tmp_path / "forest")
    assert all(p.stat().st_size > 1000 for p in paths)
    rows = R.forest_rows(claims)
    # every row's interval spans 2 of the 2 x (clip + 0.3) units of its axis: a sixth of the width,
    # whatever its unit or size; a row beyond the range is an arrow at the edge
    assert 2 / (2 * (R.FOREST_CLIP + 0.3)) > 0.15
    beyond = [r["label"] for r in rows if abs(r["z"]) > R.FOREST_CLIP]
    assert beyond == ["B1: B1 jsd", "B1: B3 wide"]
    assert R._forest_text(rows[-1]).endswith("nats; claim > 0")
    assert "claim \u2264 1" in R._forest_text(rows[4])


def test_forest_plot_without_intervals_still_lists_every_row(tmp_path):
    rc = report_config()
    one = stats.comparison("one seed", "m", "%", "A", {"s0": 1.0}, "B", {"s0": 2.0}, rc)
    rows = R.forest_rows(claims_of(one))
    assert rows[0]["z"] is None and "no interval (1 run(s))" in R._forest_text(rows[0])
    assert R.forest_figure(claims_of(one), tmp_path / "forest")[0].stat().st_size > 1000
