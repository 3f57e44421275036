"""GPUs for the workflow's jobs (infomax.gpus): how many a job sees, the local run's limit on
concurrent GPU jobs, and each job's choice of GPU on a machine with several."""

import multiprocessing
import sys

import pytest

from infomax import gpus
from projects import ROOT, snakemake


@pytest.mark.parametrize("env,expected", [
    ({"CUDA_VISIBLE_DEVICES": "0,1,2"}, 3), ({"CUDA_VISIBLE_DEVICES": "1"}, 1), ({"CUDA_VISIBLE_DEVICES": ""}, 0),
    ({"CUDA_VISIBLE_DEVICES": "-1"}, 0), ({"CUDA_VISIBLE_DEVICES": "0,-1,2"}, 1),   # CUDA stops at an invalid entry
    ({"CUDA_VISIBLE_DEVICES": "GPU-5c1e,GPU-77aa"}, 2),
])
def test_visible_gpus_reads_cuda_visible_devices(env, expected):
    assert gpus.visible_gpus(env) == expected


def test_the_local_limit_is_per_gpu_and_never_overrides_the_user():
    assert gpus.gpu_job_limit({}, gpu_jobs=True, local=True, gpus=2) == 2 * gpus.JOBS_PER_GPU
    assert gpus.gpu_job_limit({"gpu": 1}, gpu_jobs=True, local=True, gpus=2) is None      # --resources gpu=1
    assert gpus.gpu_job_limit({}, gpu_jobs=True, local=False, gpus=2) is None             # SLURM: per-job requests
    assert gpus.gpu_job_limit({}, gpu_jobs=False, local=True, gpus=2) is None             # device: cpu
    assert gpus.gpu_job_limit({}, gpu_jobs=True, local=True, gpus=0) is None              # no GPU here


def test_jobs_spread_over_the_gpus_and_a_finished_job_frees_its_slot(tmp_path):
    try:
        picks = [gpus.pick_gpu(3, tmp_path) for _ in range(7)]
        assert picks == [0, 1, 2, 0, 1, 2, 0]
        assert gpus.pick_gpu(1, tmp_path) == 0                                 # one GPU: no lock needed
        gpus._HELD.pop(1).close()                                               # the second job (GPU 1) ends
        assert gpus.pick_gpu(3, tmp_path) == 1
    finally:
        gpus.release_gpus()
    assert gpus.pick_gpu(3, tmp_path) == 0
    gpus.release_gpus()


def _pick(lock_dir, q):
    q.put(gpus.pick_gpu(2, lock_dir))


def test_another_process_holds_its_gpu_until_it_ends(tmp_path):
    """The slot is held across processes (each training job is one): ours is GPU 0, so a second
    process takes GPU 1; once it has ended, GPU 1 is free again."""
    try:
        assert gpus.pick_gpu(2, tmp_path) == 0
        ctx = multiprocessing.get_context("fork" if sys.platform != "win32" else "spawn")
        q = ctx.Queue()
        p = ctx.Process(target=_pick, args=(tmp_path, q))
        p.start()
        p.join(30)
        assert q.get(timeout=5) == 1
        assert gpus.pick_gpu(2, tmp_path) == 1
    finally:
        gpus.release_gpus()


@pytest.mark.slow
def test_a_local_run_seeing_gpus_limits_its_gpu_jobs(tmp_path):
    """The workflow's start hook: a local run that sees 2 GPUs (CUDA_VISIBLE_DEVICES) and jobs
    that ask for GPUs gets 2 x JOBS_PER_GPU; with --resources gpu=N it keeps the user's N."""
    import os

    env_before = os.environ.get("CUDA_VISIBLE_DEVICES")
    os.environ["CUDA_VISIBLE_DEVICES"] = "0,1"
    try:
        target = "results/smoke/data/mnist.pt"
        (tmp_path / "auto.yaml").write_text("experiments: {smoke: {device: auto}}\n")   # smoke says cpu
        r = snakemake("--cores", "1", "--configfile", "auto.yaml", "--config", "experiment=smoke", "--", target,
                      cwd=tmp_path, project=ROOT)
        assert r.returncode == 0, r.stderr[-2000:]
        assert f"GPU jobs: at most {2 * gpus.JOBS_PER_GPU} at once" in r.stdout + r.stderr
        r = snakemake("--cores", "1", "--resources", "gpu=1", "--forcerun", "prepare", "--configfile", "auto.yaml",
                      "--config", "experiment=smoke", "--", target, cwd=tmp_path, project=ROOT)
        assert r.returncode == 0 and "GPU jobs: at most" not in r.stdout + r.stderr
    finally:
        if env_before is None:
            os.environ.pop("CUDA_VISIBLE_DEVICES")
        else:
            os.environ["CUDA_VISIBLE_DEVICES"] = env_before
