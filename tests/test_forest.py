"""Inconclusive says how close it came: the smallest detectable difference of each undecided
comparison, and the forest plot of every voting comparison at the top of the report."""

import math

import pytest
from configs import report_config

from infomax import report as R
from infomax import stats


def claims_of(*comparisons):
    return {"experiment": "t", "confidence": 0.95, "min_seeds": 2, "deviations": {}, "anchors": [],
            "reconstructed": [], "claims": [{"id": "A1", "statement": "s", "verdict": "inconclusive", "reason": "r",
                                             "metric": "m", "comparisons": list(comparisons)}]}


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
