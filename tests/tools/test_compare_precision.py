"""scripts/compare_precision.py: float32 and bfloat16 runs are equivalent only when the interval of
the paired differences lies inside the margin (1 point, 0.1 nats), whatever the seed spread."""

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("compare_precision", ROOT / "scripts/compare_precision.py")
cp = importlib.util.module_from_spec(spec)
spec.loader.exec_module(cp)

SEEDS = range(5)


def write_run(d: Path, probe_acc, mi):
    """Study-B tables of one run: dim_l/jsd with ``probe_acc[seed]`` (fraction) and ``mi[seed]`` (nats)."""
    (d / "dim_infobal").mkdir(parents=True)
    rows = [{"method": "dim_l", "estimator": "jsd", "seed": s} for s in SEEDS]
    pd.DataFrame([{**r, "layer": "y", "probe": "linear", "acc": probe_acc[r["seed"]]} for r in rows]).to_csv(
        d / "dim_infobal/probes.csv", index=False)
    pd.DataFrame([{**r, "epoch": 3, "mi_estimate": mi[r["seed"]], "probe_acc": probe_acc[r["seed"]]} for r in rows]).to_csv(
        d / "dim_infobal/curves.csv", index=False)
    pd.DataFrame([{**r, "attack": "gaussian", "level": lv, "acc": probe_acc[r["seed"]]} for r in rows
                  for lv in (0.0, 0.5)]).to_csv(d / "dim_infobal/robustness.csv", index=False)


def run(tmp_path, name, shift_points, jitter_points, mi_shift=0.0):
    rng = np.random.default_rng(0)
    base = 0.70 + 0.05 * rng.standard_normal(5)            # a seed spread of ~5 points
    mi = -1.5 + 0.2 * rng.standard_normal(5)
    other = base + (shift_points + jitter_points * rng.standard_normal(5)) / 100
    write_run(tmp_path / name / "f32", base, mi)
    write_run(tmp_path / name / "bf16", other, mi + mi_shift)
    return cp.main([str(tmp_path / name / "f32"), str(tmp_path / name / "bf16")])


def test_a_tiny_paired_difference_is_equivalent(tmp_path, capsys):
    assert run(tmp_path, "same", 0.0, 0.05) == 0
    assert "4 of 4 metrics equivalent" in capsys.readouterr().out


def test_a_shift_inside_the_seed_spread_is_not_equivalent(tmp_path, capsys):
    # +3 points: the old rule (|difference| <= the ~5-point seed sd) passed this
    assert run(tmp_path, "shift", 3.0, 0.1) == 1
    out = capsys.readouterr().out
    assert "| dim_l jsd | linear probe on y (%) |" in out and "**no**" in out


def test_noisy_paired_differences_are_not_shown_equivalent_even_with_a_zero_mean(tmp_path, capsys):
    assert run(tmp_path, "noisy", 0.0, 3.0) == 1
    t = cp.compare(cp.study_b(tmp_path / "noisy/f32"), cp.study_b(tmp_path / "noisy/bf16"), 1.0, 0.1, 0.95)
    acc = t[t["metric"] == "linear probe on y (%)"].iloc[0]
    assert not acc["equivalent"] and acc["hi"] - acc["lo"] > 2.0


def test_mi_estimates_use_the_nats_margin(tmp_path):
    assert run(tmp_path, "mi", 0.0, 0.05, mi_shift=0.3) == 1
    t = cp.compare(cp.study_b(tmp_path / "mi/f32"), cp.study_b(tmp_path / "mi/bf16"), 1.0, 0.1, 0.95)
    mi = t[t["metric"].str.contains("nats")].iloc[0]
    assert mi["margin"] == 0.1 and not mi["equivalent"] and abs(mi["difference"] - 0.3) < 1e-9
    assert t[~t["metric"].str.contains("nats")]["equivalent"].all()
