"""A failed model never becomes a row of numbers or a smaller sample: evaluation refuses NaN
weights and NaN metrics with an error naming the model, and the report says which runs failed."""

import json
import math
from dataclasses import asdict

import pytest
import torch
from configs import eval_a, report_config, train_a

from infomax.files import save_torch
from infomax import stats
from infomax.cli import main
from infomax.steps import require_finite


def js(cfg) -> str:
    return json.dumps(asdict(cfg))


def test_evaluation_refuses_a_model_with_nan_weights(tiny_data, tmp_path, capsys):
    model = tmp_path / "vib_b1e-3_s0.pt"
    assert main(["vib_vim", "train", "--data", str(tiny_data), "--out-dir", str(tmp_path), "--resume",
                 str(tmp_path / "g.resume"), "--no-progress",
                 "--settings", json.dumps([asdict(train_a("vib", 1e-3, 0, K=4, epochs=1, batch_size=20))])]) == 0
    ck = torch.load(model, weights_only=False)
    ck["state_dict"]["encoder.2.weight"][3, 5] = math.nan
    save_torch(ck, model)
    out = tmp_path / "e/vib_b1e-3_s0.json"
    rc = main(["vib_vim", "evaluate", "--data", str(tiny_data), "--models-dir", str(tmp_path), "--runs", "vib_b1e-3_s0",
               "--out-dir", str(tmp_path / "e"),
               "--settings", js(eval_a(gaussian=(0.0,), saltpepper=(0.0,), fgsm=(0.0,), probe_max_iter=5))])
    err = capsys.readouterr().err
    assert rc == 1 and str(model) in err and "encoder.2.weight holds NaN" in err
    assert not out.exists()


def test_nan_metrics_are_refused_naming_the_model_and_metric():
    require_finite({"probe_acc": 0.9, "test.rate_bits": math.nan}, "m.pt", allowed=("test.rate_bits",))
    with pytest.raises(ValueError, match=r"model m.pt: metric\(s\) knn_acc are NaN"):
        require_finite({"probe_acc": 0.9, "knn_acc": math.nan}, "m.pt")


def test_a_failed_run_makes_the_comparison_inconclusive_and_is_named():
    rc = report_config()
    good = {"s0": 5.0, "s1": 5.2, "s2": 5.1}
    worse = {"s0": 1.0, "s1": 1.1, "s2": 0.9}
    decided = stats.comparison("x", "m", "%", "A", good, "B", worse, rc)
    assert decided["verdict"] == stats.SUPPORTED and decided["failed_runs"] == []
    broken = stats.comparison("x", "m", "%", "A", {**good, "s3": math.nan}, "B", {**worse, "s3": 1.0}, rc)
    assert broken["verdict"] == stats.INCONCLUSIVE
    assert broken["failed_runs"] == ["A: s3"] and "failed run(s)" in broken["reason"] and "A: s3" in broken["reason"]
