"""scripts/job_seconds.py: job-seconds per rule group from a run's benchmark files."""

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("job_seconds", ROOT / "scripts/job_seconds.py")
js = importlib.util.module_from_spec(spec)
spec.loader.exec_module(js)

HEAD = "s\th:m:s\tmax_rss\tcpu_time\n"


def bench(results: Path, rel: str, seconds: float):
    f = results / "benchmarks" / rel
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_text(HEAD + f"{seconds}\t0:00:01\t100\t{seconds / 2}\n")


def test_groups_sum_the_wall_seconds_of_each_rule(tmp_path, capsys):
    now, before = tmp_path / "now", tmp_path / "before"
    for rel, s in [("dim_infobal/train/a_s0.tsv", 10.0), ("dim_infobal/train/b_s0.tsv", 30.0),
                   ("dim_infobal/evaluate/s0.tsv", 5.0), ("prepare_mnist.tsv", 2.0), ("summary.tsv", 1.0)]:
        bench(now, rel, s)
    for rel, s in [("dim_infobal/train/a_s0.tsv", 20.0), ("dim_infobal/evaluate/a_s0.tsv", 8.0),
                   ("dim_infobal/evaluate/b_s0.tsv", 12.0)]:
        bench(before, rel, s)
    groups = js.job_seconds(now)
    assert groups == {"dim_infobal train": [10.0, 30.0], "dim_infobal evaluate": [5.0], "other": [2.0, 1.0]}
    assert js.main([str(now), str(before)]) == 0
    out = capsys.readouterr().out
    assert "| dim_infobal evaluate | 1 | 5 | 5.0 | 5.0 | 2, 20 | 0.25x |" in out
    assert "| dim_infobal train | 2 | 40 | 20.0 | 30.0 | 1, 20 | 2.00x |" in out
    assert "total: 5 jobs, 48 job-seconds (before: 40)" in out


def test_a_folder_without_benchmarks_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="no benchmark folder"):
        js.job_seconds(tmp_path)
    (tmp_path / "benchmarks").mkdir()
    (tmp_path / "benchmarks/x.tsv").write_text("a\tb\n1\t2\n")
    with pytest.raises(ValueError, match="x.tsv: not a Snakemake benchmark file"):
        js.job_seconds(tmp_path)
