"""The cluster path: the shipped SLURM profile against a real scheduler, a throwaway single-node
SLURM brought up by scripts/slurm/cluster.sh.  Needs root, Debian's slurm-wlm and munge, and
snakemake-executor-plugin-slurm; skipped otherwise.  Run alone with `pytest -m slurm`.

1. `smoke` through the profile gives the same tables and claims, cell by cell, as a local run.
2. A training job cancelled with scancel after it wrote its resume state continues from it when
   the workflow is rerun, and ends with the same weights as an uninterrupted run."""

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from projects import ROOT, copy_worktree

CLUSTER = ROOT / "scripts/slurm/cluster.sh"
PROFILE = "workflow/profiles/slurm"
SMOKE = ["--config", "experiment=smoke"]
FAST_POLL = ["--slurm-init-seconds-before-status-checks", "2"]  # the test cluster answers at once


def _missing():
    tools = [t for t in ("sbatch", "squeue", "scancel", "slurmctld", "slurmd", "munged") if not shutil.which(t, path=_path())]
    if tools:
        return f"SLURM not installed (missing {', '.join(tools)}): apt-get install slurm-wlm munge"
    if os.geteuid() != 0:
        return "the throwaway SLURM cluster must be started as root"
    if importlib.util.find_spec("snakemake_executor_plugin_slurm") is None:
        return "snakemake-executor-plugin-slurm is not installed"
    if Path("/etc/slurm/slurm.conf").is_file() and not Path("/etc/slurm/slurm.conf").is_symlink():
        return "this host already has a SLURM config (/etc/slurm/slurm.conf): not starting a test cluster"
    return None


def _path():
    return f"{Path(sys.executable).parent}{os.pathsep}/usr/sbin{os.pathsep}/sbin{os.pathsep}{os.environ['PATH']}"


pytestmark = [pytest.mark.slurm, pytest.mark.e2e, pytest.mark.skipif(_missing() is not None, reason=_missing() or "")]


def run(cmd, cwd, env, timeout=900, check=True):
    r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if check:
        assert r.returncode == 0, f"{' '.join(map(str, cmd))} failed in {cwd}:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r


def snakemake(*args):
    return [sys.executable, "-m", "snakemake", *args]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """The environment of a running single-node cluster (SLURM_CONF set); stopped afterwards."""
    state = tmp_path_factory.mktemp("slurm")
    env = {**os.environ, "PATH": _path(), "SLURM_CONF": str(state / "slurm.conf")}
    run(["bash", str(CLUSTER), "up", str(state)], ROOT, env, timeout=120)
    try:
        yield env
    finally:
        run(["bash", str(CLUSTER), "down", str(state)], ROOT, env, timeout=120, check=False)


def worktree(path: Path) -> Path:
    path.mkdir()
    copy_worktree(path)
    return path


def timing(column: str) -> bool:
    return column.endswith("_seconds")


def without_timings(obj):
    """claims.json without any *_seconds field (it has none today; a future one must not fail this)."""
    if isinstance(obj, dict):
        return {k: without_timings(v) for k, v in obj.items() if not timing(k)}
    if isinstance(obj, list):
        return [without_timings(v) for v in obj]
    return obj


def test_smoke_on_slurm_equals_local(cluster, tmp_path):
    on_slurm, local = worktree(tmp_path / "slurm"), worktree(tmp_path / "local")
    run(snakemake("--profile", PROFILE, *FAST_POLL, "--jobs", "4", *SMOKE), on_slurm, cluster)
    run(snakemake("--cores", "2", *SMOKE), local, cluster)

    out = Path("results/smoke")
    tables = sorted(p.relative_to(local) for p in (local / out).glob("**/*.csv"))
    assert len(tables) >= 6, tables
    assert tables == sorted(p.relative_to(on_slurm) for p in (on_slurm / out).glob("**/*.csv"))
    for rel in tables:
        a, b = pd.read_csv(local / rel), pd.read_csv(on_slurm / rel)
        keep = [c for c in a.columns if not timing(c)]
        assert list(a.columns) == list(b.columns), rel
        pd.testing.assert_frame_equal(a[keep], b[keep], check_exact=True, obj=str(rel))
    claims = [without_timings(json.loads((d / out / "claims.json").read_text())) for d in (local, on_slurm)]
    assert claims[0] == claims[1]
    assert (on_slurm / out / "REPLICATION.md").is_file()


# One study-A model (its group: smoke's two VIM models), long enough to be cancelled mid-way, with
# a resume state every second.
MODEL = "results/smoke/vib_vim/models/vim_b1e-1_s0.pt"
RESUME = "results/smoke/vib_vim/groups/vim_g0.resume"
LOG = "results/smoke/logs/vib_vim/train/vim_g0.log"
LONGER = {"experiments": {"smoke": {"vib_vim": {"train": {"epochs": 300, "checkpoint_seconds": 1.0}}}}}


def test_cancelled_training_job_resumes_to_the_same_weights(cluster, tmp_path):
    override = tmp_path / "longer.yaml"
    override.write_text(yaml.safe_dump(LONGER))
    on_slurm, local = worktree(tmp_path / "slurm"), worktree(tmp_path / "local")
    args = [MODEL, "--configfile", str(override), *SMOKE]

    first = subprocess.Popen(snakemake("--profile", PROFILE, *FAST_POLL, *args), cwd=on_slurm, env=cluster,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    resume = on_slurm / RESUME
    deadline = time.monotonic() + 300
    while not resume.exists():
        assert first.poll() is None, f"the workflow ended before a resume state was written:\n{first.stdout.read()[-3000:]}"
        assert time.monotonic() < deadline, "no resume state within 300 s"
        time.sleep(0.5)
    time.sleep(2)  # a later state than the first, still mid-way
    run(["scancel", "--user", "root"], on_slurm, cluster)
    out, _ = first.communicate(timeout=300)
    assert first.returncode != 0, out[-3000:]
    assert resume.exists() and not (on_slurm / MODEL).exists()

    run(snakemake("--profile", PROFILE, *FAST_POLL, *args), on_slurm, cluster)
    assert "resuming" in (on_slurm / LOG).read_text()
    assert not resume.exists()

    run(snakemake("--cores", "1", *args), local, cluster)
    resumed, reference = (torch.load(d / MODEL, weights_only=False)["state_dict"] for d in (on_slurm, local))
    assert resumed.keys() == reference.keys()
    for k in reference:
        assert torch.equal(resumed[k], reference[k]), k
