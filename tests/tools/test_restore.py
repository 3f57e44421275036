"""`infomax restore-mtimes`: after `dvc pull`, check against dvc.lock, then mark Snakemake's jobs
as done in DAG order.  Pure parts on canned tool output; the whole on a tiny synthetic project
(git + DVC + a three-rule Snakefile), with the file times scrambled the way a checkout does."""

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from infomax.tools.restore import (
    RestoreError,
    parse_summary,
    pending_jobs,
    restore_mtimes,
    unverified_outputs,
    verified_paths,
)

pytestmark = pytest.mark.slow     # Snakemake launches

LOCKED = {"train": {"deps": ["src", "results/data"], "outs": ["results/models"]},
          "data": {"deps": ["src"], "outs": ["results/data"]}}


def test_verified_paths_of_a_clean_workspace():
    assert verified_paths({}, LOCKED) == (["results/data", "results/models", "src"], [])


def test_missing_outputs_are_left_to_snakemake():
    status = {"data": [{"changed outs": {"results/data": "deleted"}}],
              "train": [{"changed deps": {"results/data": "deleted"}}]}
    assert verified_paths(status, LOCKED) == (["results/models", "src"], ["results/data"])


@pytest.mark.parametrize("status,needle", [
    ({"train": [{"changed outs": {"results/models": "modified"}}]}, "stage train: output results/models: modified"),
    ({"data": [{"changed deps": {"src": "modified"}}]}, "stage data: dependency src: modified"),
    ({"data": [{"changed deps": {"params.yaml": {"experiment": "modified"}}}]},
     "stage data: dependency params.yaml: experiment modified"),
    ({"train": ["changed command"]}, "stage train: changed command"),
    ({"train": [{"changed deps": {"raw.csv": "deleted"}}]}, "dependency raw.csv: deleted"),  # not an out
])
def test_any_other_difference_stops_with_its_name(status, needle):
    with pytest.raises(RestoreError, match="does not match dvc.lock") as e:
        verified_paths(status, LOCKED)
    assert needle in str(e.value)


def test_parse_summary_takes_the_output_column_only():
    text = ("Building DAG of jobs...\noutput_file\tdate\trule\tlog-file(s)\tstatus\tplan\n"
            "out/c.txt\tSun Nov 22 2026\tc\t-\tok\tno update\nout/a.txt\t-\ta\t-\tmissing\tupdate pending\n")
    assert parse_summary(text) == ["out/c.txt", "out/a.txt"]
    with pytest.raises(RestoreError, match="no table"):
        parse_summary("Building DAG of jobs...\nWorkflowError: oops\n")


def test_unverified_outputs(tmp_path):
    for f in ("results/models/m.pt", "results/other/x.csv"):
        (tmp_path / f).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / f).write_text("x")
    outs = ["results/models/m.pt", "results/other/x.csv", "results/other/gone.csv"]
    assert unverified_outputs(outs, tmp_path, ["results/models"]) == ["results/other/x.csv"]


# -----------------------------------------------------------------------------
# a tiny project: a -> b -> c, one DVC stage that runs snakemake, outputs under out/

SNAKEFILE = """\
configfile: "config.yaml"

rule all:
    input: "out/c.txt"

rule a:
    output: "out/a.txt"
    params: n=config["n"]
    shell: "echo {params.n} > {output}"

rule b:
    input: "out/a.txt"
    output: "out/b.txt"
    shell: "cat {input} {input} > {output}"

rule c:
    input: "out/b.txt"
    output: "out/c.txt"
    shell: "cat {input} > {output}; echo c >> {output}"
"""

DVC_YAML = """\
stages:
  build:
    cmd: snakemake --cores 1 --config experiment=${experiment}
    params:
      - experiment
      - config.yaml:
          - n
    outs:
      - out/a.txt:
          persist: true
      - out/b.txt:
          persist: true
      - out/c.txt:
          persist: true
"""

FILES = ["out/a.txt", "out/b.txt", "out/c.txt"]


def env():
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
            "DVC_NO_ANALYTICS": "1"}


def run(cmd, cwd):
    r = subprocess.run(cmd, cwd=cwd, env=env(), capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f"{cmd}: {r.stdout[-2000:]}{r.stderr[-2000:]}"
    return r.stdout


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The tiny project after `dvc repro`, committed."""
    root = tmp_path_factory.mktemp("tiny")
    (root / "Snakefile").write_text(SNAKEFILE)
    (root / "config.yaml").write_text("n: 1\n")
    (root / "params.yaml").write_text("experiment: tiny\n")
    (root / "dvc.yaml").write_text(DVC_YAML)
    (root / ".gitignore").write_text(".snakemake/\n")
    run(["git", "init", "-q"], root)
    run(["git", "config", "user.email", "test@example.org"], root)
    run(["git", "config", "user.name", "test"], root)
    run([sys.executable, "-m", "dvc", "init", "-q"], root)
    run([sys.executable, "-m", "dvc", "repro"], root)
    run(["git", "add", "-A"], root)
    run(["git", "commit", "-qm", "tiny"], root)
    return root


@pytest.fixture
def project(built, tmp_path, monkeypatch):
    """A copy as a fresh clone has it after `dvc pull`: no .snakemake/, times in checkout order
    (here the worst case: the first file of the DAG is the newest)."""
    root = tmp_path / "tiny"
    shutil.copytree(built, root, symlinks=True)
    shutil.rmtree(root / ".snakemake")
    t = time.time() - 100
    for i, f in enumerate(reversed(FILES)):
        os.utime(root / f, (t + i, t + i))
    monkeypatch.setenv("PATH", env()["PATH"])
    monkeypatch.setenv("DVC_NO_ANALYTICS", "1")
    return root


def mtimes(root):
    return [os.stat(root / f).st_mtime for f in FILES]


def recorded(root):
    """Files of Snakemake's job metadata (what `snakemake --touch` writes)."""
    meta = root / ".snakemake/metadata"
    return list(meta.iterdir()) if meta.exists() else []


def test_scrambled_times_would_rebuild_then_restore_marks_all_done(project):
    assert pending_jobs(project) == {"b": 1, "c": 1, "all": 1}      # the problem DVC leaves behind
    res = restore_mtimes(project, log=lambda *_: None)
    assert res["pending"] == {} and res["missing"] == [] and res["experiment"] == "tiny"
    a, b, c = mtimes(project)
    assert a < b < c                                                 # inputs older than outputs
    assert run([sys.executable, "-m", "dvc", "status", "--json"], project).strip() in ("", "{}")
    assert (project / "out/b.txt").read_text() == "1\n1\n"
    assert len(recorded(project)) == 3
    # Snakemake now has its metadata too: a changed param reruns exactly the affected jobs.
    (project / "config.yaml").write_text("n: 2\n")
    assert pending_jobs(project) == {"a": 1, "b": 1, "c": 1, "all": 1}


def test_a_missing_output_is_rebuilt_with_what_depends_on_it(project):
    (project / "out/c.txt").unlink()       # e.g. figures that were not pulled, or deleted
    res = restore_mtimes(project, log=lambda *_: None)
    assert res["missing"] == ["out/c.txt"] and res["pending"] == {"c": 1, "all": 1}
    a, b = (os.stat(project / f).st_mtime for f in FILES[:2])
    assert a < b


def test_a_modified_output_is_refused_and_nothing_changes(project):
    (project / "out/b.txt").write_text("tampered\n")
    before = mtimes(project)
    with pytest.raises(RestoreError, match=r"stage build: output out/b.txt: modified"):
        restore_mtimes(project, log=lambda *_: None)
    assert mtimes(project) == before
    assert recorded(project) == []


def test_outputs_that_dvc_does_not_track_are_refused(project):
    """A rule whose outputs no stage of dvc.yaml lists (say, a new study not added there yet):
    DVC cannot vouch for its files, so they must not be marked as done."""
    snakefile = project / "Snakefile"
    snakefile.write_text(snakefile.read_text().replace('input: "out/c.txt"', 'input: "out/c.txt", "extra/d.txt"')
                         + '\nrule d:\n    output: "extra/d.txt"\n    shell: "echo d > {output}"\n')
    (project / "extra").mkdir()
    (project / "extra/d.txt").write_text("d\n")
    with pytest.raises(RestoreError, match="no output of dvc.lock covers them") as e:
        restore_mtimes(project, log=lambda *_: None)
    assert "extra/d.txt" in str(e.value)
    assert recorded(project) == []


def test_experiment_comes_from_params_yaml(project):
    (project / "params.yaml").write_text("experimnt: tiny\n")
    with pytest.raises(RestoreError, match=r"params.yaml: expected a key `experiment: NAME`"):
        restore_mtimes(project, log=lambda *_: None)


def test_cli_error_is_one_line_naming_the_file(tmp_path, capsys):
    from infomax.cli import main

    assert main(["restore-mtimes", "--repo", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert f"{tmp_path}/params.yaml does not exist" in err and "Traceback" not in err
