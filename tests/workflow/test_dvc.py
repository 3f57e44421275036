"""DVC: dvc.yaml covers the workflow, and the round trip a collaborator makes works end to end:
`dvc exp run` the smoke experiment, push to a remote, clone afresh, pull, `infomax restore-mtimes`,
and Snakemake trains nothing but regenerates the figures."""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from projects import FIGURES, ROOT, copy_worktree, job_counts

from infomax.tools.restore import dag_outputs

pytestmark = pytest.mark.slow     # Snakemake and DVC launches

DVC_YAML = (ROOT / "dvc.yaml").read_text()
EXPERIMENTS = list(yaml.safe_load((ROOT / "config/config.yaml").read_text())["experiments"])


def env(**extra):
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
            "DVC_NO_ANALYTICS": "1", **extra}


def run(cmd, cwd, timeout=600, **extra_env):
    r = subprocess.run(cmd, cwd=cwd, env=env(**extra_env), capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f"{' '.join(map(str, cmd))} failed in {cwd}:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r.stdout + r.stderr


def dvc(*args, cwd, **kw):
    return run([sys.executable, "-m", "dvc", *args], cwd, **kw)


def snakemake(*args, cwd):
    return run([sys.executable, "-m", "snakemake", *args], cwd)


def stages(experiment):
    """dvc.yaml's stages with ${experiment} filled in, as `dvc repro` sees them."""
    return yaml.safe_load(DVC_YAML.replace("${experiment}", experiment))["stages"]


def out_paths(stage):
    return [next(iter(o)) if isinstance(o, dict) else o for o in stage.get("outs", []) + stage.get("metrics", [])]


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_dvc_stages_cover_every_snakemake_output(experiment):
    """Every file the workflow makes lies in exactly one stage's outputs: otherwise DVC would not
    version it, and `infomax restore-mtimes` would refuse to vouch for it after a pull."""
    files = dag_outputs(ROOT, ["--config", f"experiment={experiment}"])
    assert len(files) > 10
    owners = {}
    for name, stage in stages(experiment).items():
        for path in out_paths(stage):
            owners[path] = name
    for f in files:
        covering = [p for p in owners if f == p or f.startswith(p + "/")]
        assert len(covering) == 1, f"{f}: covered by {covering} in dvc.yaml (expected exactly one stage output)"


def test_the_one_stage_runs_the_whole_workflow_with_persisted_outs():
    s = stages("smoke")
    assert list(s) == ["workflow"]
    stage = s["workflow"]
    # no target: Snakemake's default target (rule all) for the experiment, and it decides what is stale
    assert stage["cmd"].split("&&")[-1].strip() == "snakemake --cores all --config experiment=smoke"
    rules = snakemake("--list-target-rules", "--config", "experiment=smoke", cwd=ROOT).split()
    assert "all" in rules
    assert "experiment" in stage["params"]                 # params.yaml's switch: a new experiment reruns
    assert any(isinstance(p, dict) and "config/config.yaml" in p for p in stage["params"])
    for kind in ("outs", "metrics"):
        for o in stage[kind]:
            assert isinstance(o, dict) and all(o[p].get("persist") for p in o), f"{o}: must persist"
    assert "results/smoke/summary.json" in out_paths(stage)


def git_repo(path: Path):
    run(["git", "init", "-q"], path)
    run(["git", "config", "user.email", "test@example.org"], path)
    run(["git", "config", "user.name", "test"], path)


def md5(path):
    return hashlib.md5(Path(path).read_bytes()).hexdigest()


@pytest.mark.e2e
def test_push_clone_pull_trains_nothing_and_regenerates_figures(tmp_path):
    work, clone, remote = tmp_path / "work", tmp_path / "clone", tmp_path / "remote"
    work.mkdir()
    copy_worktree(work)
    git_repo(work)
    run(["git", "add", "-A"], work)
    run(["git", "commit", "-qm", "snapshot"], work)

    # The documented way to run one experiment through DVC, then the done-when checks.
    out = dvc("exp", "run", "-S", "experiment=smoke", cwd=work)
    assert "Running stage 'workflow'" in out
    assert json.loads(dvc("status", "--json", cwd=work).strip() or "{}") == {}
    again = dvc("repro", cwd=work)
    assert "Running stage" not in again and again.count("didn't change, skipping") == 1
    metrics = json.loads(dvc("metrics", "show", "--json", cwd=work))
    summary = next(iter(metrics.values()))["data"]["results/smoke/summary.json"]["data"]
    assert 0 <= summary["vib_vim"]["vib"]["err_avg"] <= 1
    assert 0 <= summary["dim_infobal"]["random_none"]["linear_y"] <= 1
    plots = dvc("plots", "show", "--json", cwd=work)
    assert '"vib_vim_robustness_fgsm"' in plots and '"vib_vim_error_vs_beta"' in plots
    assert "results/" not in run(["git", "status", "--porcelain"], work)    # outputs stay out of git

    run(["git", "add", "dvc.lock", "params.yaml"], work)
    run(["git", "commit", "-qm", "smoke run"], work)
    dvc("remote", "add", "--local", "-d", "store", str(remote), cwd=work)
    dvc("push", cwd=work)

    # A collaborator: fresh clone, a link cache that leaves read-only files, pull.
    run(["git", "clone", "-q", str(work), str(clone)], tmp_path)
    dvc("remote", "add", "--local", "-d", "store", str(remote), cwd=clone)
    dvc("config", "--local", "cache.type", "hardlink", cwd=clone)
    dvc("pull", cwd=clone)
    smoke = clone / "results/smoke"
    summary_json = smoke / "summary.json"
    assert os.stat(summary_json).st_nlink == 2 and os.stat(summary_json).st_mode & 0o222 == 0
    # Worst case of checkout order: the data newest.  Plain snakemake would now retrain everything.
    t = time.time()
    os.utime(smoke / "data/mnist.pt", (t, t))
    sm = ("--cores", "2", "--config", "experiment=smoke")
    stale = job_counts(snakemake("-n", *sm, cwd=clone))
    assert stale.get("train_vib_vim", 0) > 0 and stale.get("train_dim_infobal", 0) > 0

    run([sys.executable, "-m", "infomax", "restore-mtimes"], clone, PYTHONPATH=str(clone / "src"))
    assert "Nothing to be done" in snakemake("-n", *sm, cwd=clone)

    shutil.rmtree(smoke / "figures")
    # the figures, and the replication report that embeds them; nothing upstream
    assert set(job_counts(snakemake("-n", *sm, cwd=clone))) == {"figures_vib_vim", "figures_dim_infobal", "replication",
                                                                 "all"}
    log = snakemake(*sm, cwd=clone)
    assert "rule train" not in log and "rule evaluate" not in log and "rule collect" not in log
    for name in FIGURES:
        for ext in ("png", "pdf"):
            assert (smoke / f"figures/{name}.{ext}").stat().st_size > 1000

    # Rerunning a step over outputs that DVC hardlinked, read-only, to its cache works and leaves
    # the cache intact.
    lock = yaml.safe_load((clone / "dvc.lock").read_text())
    recorded = next(o["md5"] for o in lock["stages"]["workflow"]["outs"] if o["path"].endswith("summary.json"))
    snakemake(*sm, "--forcerun", "summary", cwd=clone)
    assert md5(clone / ".dvc/cache/files/md5" / recorded[:2] / recorded[2:]) == recorded
    assert md5(summary_json) == recorded            # the summary is deterministic
