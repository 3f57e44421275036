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


def test_while_another_run_goes_on_a_dry_run_shows_what_is_left_and_a_real_run_is_refused(tmp_path):
    """A long run (table1: hours) is checked with a dry run while it goes on: the dry run plans,
    with a note naming the running pid; a real run is refused naming it and the dry run to use."""
    from infomax.files import running_snakemake

    locks = tmp_path / ".snakemake/locks"
    locks.mkdir(parents=True)
    (locks / "0.input.lock").write_text("x")
    other = subprocess.Popen(["bash", "-c", "exec -a snakemake sleep 120"], cwd=tmp_path)
    try:
        deadline = time.monotonic() + 10
        while running_snakemake(tmp_path) != other.pid:
            assert time.monotonic() < deadline, "the stand-in Snakemake was never seen"
            time.sleep(0.05)
        args = ("--cores", "1", "--config", "experiment=smoke", "--directory", str(tmp_path))
        dry = snakemake("-n", *args, "--rerun-incomplete", cwd=tmp_path)
        assert dry.returncode == 0, dry.stdout[-2000:] + dry.stderr[-2000:]
        assert f"note: another Snakemake (pid {other.pid}) is running in {tmp_path}" in dry.stderr
        assert "rule train_vib_vim" in dry.stdout + dry.stderr            # the plan is there
        real = snakemake(*args, cwd=tmp_path)
        said = real.stdout + real.stderr
        assert real.returncode != 0 and f"another Snakemake (pid {other.pid}) is still running" in said
        assert "`snakemake -n --rerun-incomplete` shows what is left" in said
        assert not (tmp_path / "results").exists()                        # refused before any job
    finally:
        other.kill()
        other.wait()


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


# --- table1, shortened: the published-protocol experiment stopped by Ctrl-C, then by SIGKILL,
# finishes with --rerun-incomplete from its resume states, to the weights of an uninterrupted run

T1_MODEL = "results/table1/vib_vim/models/vib_b1e-3_s0.pt"
T1_RESUME = "results/table1/vib_vim/groups/vib_g0.resume"
T1_LOG = "results/table1/logs/vib_vim/train/vib_g0.log"


def shortened_table1(dst: Path) -> Path:
    """A project copy whose table1 trains on 400 embedded digits for 20 short epochs, writing a
    resume state after every epoch; everything else (rules, K=256, objectives, seeds) is table1's."""
    import yaml

    from projects import project_copy

    dst.mkdir()
    project_copy(dst)
    cfg = yaml.safe_load((dst / "config/config.yaml").read_text())
    t1 = cfg["experiments"]["table1"]
    t1["data"] = {"mnist": {"source": "embedded", "n_images": 400, "test_fraction": 0.25, "val_fraction": 0.1,
                            "seed": 0}}
    t1["vib_vim"]["train"] = {"epochs": 20, "batch_size": 50, "checkpoint_seconds": 1.0e-3}
    (dst / "config/config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    return dst


def _wait_for(path: Path, p, after: float = 0.0, timeout: float = 300):
    """Until ``path`` exists with an mtime later than ``after``, while ``p`` still runs."""
    deadline = time.monotonic() + timeout
    while not (path.exists() and path.stat().st_mtime > after):
        assert p.poll() is None, "the workflow ended before the expected resume state"
        assert time.monotonic() < deadline, f"no {path.name} within {timeout} s"
        time.sleep(0.02)


def run_in(project: Path, *args):
    """Snakemake with the copy's own Snakefile (so its config), in the copy."""
    from projects import snakemake as launch

    return launch(*args, cwd=project, project=project)


def resumed_from(log: Path) -> list[int]:
    """The epochs a training log says it resumed from."""
    return [int(line.split("from epoch ")[1].split()[0]) for line in log.read_text().splitlines()
            if line.startswith("resuming vib_g0 from epoch")]


@pytest.mark.e2e
def test_table1_resumes_after_ctrl_c_and_sigkill_to_the_uninterrupted_weights(tmp_path):
    import torch

    stopped, reference = shortened_table1(tmp_path / "stopped"), shortened_table1(tmp_path / "reference")
    args = (T1_MODEL, "--cores", "1", "--config", "experiment=table1")

    def start():
        cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(stopped / "Snakefile"), *args, "--rerun-incomplete"]
        # SIGINT as a terminal's Ctrl-C finds it: a non-interactive shell starts background jobs with
        # SIGINT ignored, and an ignored signal stays ignored in every child (a CI runner may do that)
        return subprocess.Popen(cmd, cwd=stopped, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))

    resume, log = stopped / T1_RESUME, stopped / T1_LOG
    p = start()                                         # 1. Ctrl-C (SIGINT to the foreground group)
    try:
        _wait_for(resume, p)
    finally:
        os.killpg(p.pid, signal.SIGINT)
        p.wait(timeout=120)
    assert p.returncode != 0 and resume.exists() and not (stopped / T1_MODEL).exists()
    first_state = resume.stat().st_mtime

    p = start()                                         # 2. SIGKILL (no clean-up, the lock stays)
    try:
        _wait_for(resume, p, after=first_state)
    finally:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
    [after_ctrl_c] = resumed_from(log)
    assert 0 < after_ctrl_c < 20 and not (stopped / T1_MODEL).exists()

    r = run_in(stopped, "--unlock", *args)      # 3. the README's recovery
    assert r.returncode == 0, r.stderr[-2000:]
    r = run_in(stopped, *args, "--rerun-incomplete")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    [after_kill] = resumed_from(log)                   # each attempt writes its own log
    assert after_ctrl_c < after_kill < 20 and not resume.exists()

    r = run_in(reference, *args)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    resumed, uninterrupted = (torch.load(d / T1_MODEL, weights_only=False)["state_dict"] for d in (stopped, reference))
    assert resumed.keys() == uninterrupted.keys()
    for k in uninterrupted:
        assert torch.equal(resumed[k], uninterrupted[k]), k
