"""A bad configuration stops Snakemake before it plans any job, with the key named.  One launch per
behaviour: wrong values (every problem listed at once), and a file that is not YAML.  Which keys
and values are caught is tested without Snakemake (tests/base/test_config.py)."""

import pytest

import yaml
from projects import project_copy, snakemake

pytestmark = pytest.mark.slow     # Snakemake launches


def test_bad_values_stop_snakemake_before_planning_and_every_one_is_named(tmp_path):
    project = project_copy(tmp_path)
    bad = yaml.safe_load((project / "config/config.yaml").read_text())
    quick = bad["experiments"]["quick"]["vib_vim"]
    quick["betas"]["vib"][0] = -1
    quick["objectives"] = ["deterministic", "vib", "vim", "vab"]
    (project / "config/config.yaml").write_text(yaml.safe_dump(bad))
    r = snakemake("-n", "--cores", "1", cwd=project, project=project)
    out = r.stdout + r.stderr
    assert r.returncode != 0, out
    assert "experiments.quick.vib_vim.betas.vib[0]: -1 is less than the minimum of 0" in out
    assert "experiments.quick.vib_vim.objectives[3]: 'vab' is not one of" in out
    # Stopped before planning: no DAG built, no job listed, nothing written.  (No wall-clock bound:
    # the shared CI machine took 11 s for this once; speed is the benches' business, not a test's.)
    assert "Traceback" not in out and "Building DAG" not in out and "Job stats" not in out
    assert not (project / "results").exists()


def test_a_params_file_that_is_not_yaml_is_named_with_its_line(tmp_path):
    project = project_copy(tmp_path)
    (project / "params.yaml").write_text("experiment: quick\n  other: [1\n")
    r = snakemake("-n", cwd=project, project=project)
    out = r.stdout + r.stderr
    assert r.returncode != 0 and f"{project / 'params.yaml'}:2:" in out and "not valid YAML" in out, out
