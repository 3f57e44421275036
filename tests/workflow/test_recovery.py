"""Running the workflow from another directory, and the README's recovery after a SIGKILL:
`snakemake --unlock && snakemake --cores all --rerun-incomplete` finishes the interrupted job."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow     # Snakemake launches

ROOT = Path(__file__).resolve().parents[2]
MODEL = "results/smoke/vib_vim/models/vib_b1e-3_s0.pt"


def snakemake_cmd(*args):
    return [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"), *args]


def env():
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}


def snakemake(*args, cwd, timeout=600):
    return subprocess.run(snakemake_cmd(*args), cwd=cwd, env=env(), capture_output=True, text=True, timeout=timeout)


def test_directory_elsewhere_uses_the_projects_config_and_params(tmp_path):
    # nothing copied: config/config.yaml and params.yaml are found next to the Snakefile
    r = snakemake("-n", "--cores", "1", "--directory", str(tmp_path), cwd=tmp_path)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "results/quick/vib_vim/models/" in r.stdout                 # params.yaml's experiment
    r = snakemake("-n", "--cores", "1", "--config", "experiment=smoke", "--directory", str(tmp_path), cwd=tmp_path)
    assert r.returncode == 0 and "results/smoke/dim_infobal/models/" in r.stdout
    assert not (tmp_path / "results").exists()


@pytest.mark.e2e
def test_readme_recovery_after_sigkill(tmp_path):
    args = ("--cores", "1", "--config", "experiment=smoke", "--directory", str(tmp_path))
    log = tmp_path / "results/smoke/logs/vib_vim/train/vib_g0.log"          # the model's training group
    p = subprocess.Popen(snakemake_cmd(*args, MODEL), cwd=tmp_path, env=env(), stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.time() + 300
        while not log.exists() and p.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        assert log.exists() and p.poll() is None, "the training job never started"
    finally:
        os.killpg(p.pid, signal.SIGKILL)                 # snakemake and its job, no clean-up
        p.wait()
    model = tmp_path / MODEL
    assert not model.exists()
    # a temp file a killed writer left (its pid is no longer running)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    resume = tmp_path / "results/smoke/vib_vim/groups/vib_g0.resume"
    orphan = resume.with_name(f".{resume.name}.{dead.pid}.0badc0de.tmp")
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_bytes(b"half a checkpoint")

    locked = snakemake(*args, MODEL, "--rerun-incomplete", cwd=tmp_path)
    assert locked.returncode != 0 and "lock" in (locked.stdout + locked.stderr).lower()   # why --unlock is needed

    r = snakemake("--unlock", *args, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    r = snakemake(*args, "--rerun-incomplete", MODEL, cwd=tmp_path)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert model.stat().st_size > 0 and not orphan.exists()
    assert not list(model.parent.glob(".*.tmp")) and not list(resume.parent.glob(".*.tmp"))
    again = snakemake("-n", *args, MODEL, cwd=tmp_path)
    assert again.returncode == 0 and "Nothing to be done" in again.stdout + again.stderr
