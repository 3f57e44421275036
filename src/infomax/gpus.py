"""GPUs for the workflow's jobs, without importing torch (the Snakefile imports this): how many a
job sees, how many jobs may share them on a local run, and which one a job takes.

- ``visible_gpus``: what CUDA will show a job (CUDA_VISIBLE_DEVICES, else the driver's list).
- ``gpu_job_limit``: a local run with GPU jobs and no ``--resources gpu=N`` of the user's gets
  JOBS_PER_GPU per visible GPU (workflow/rules/common.smk sets it at start): without a limit,
  ``snakemake --cores all`` would start one GPU job per core on one GPU.
- ``pick_gpu``: on a machine with several GPUs, each job takes the GPU with the fewest jobs of
  this user, held by a lock file for the job's life (every job on cuda:0 otherwise).  A cluster
  job that was given one GPU (CUDA_VISIBLE_DEVICES) sees one and takes it.
"""

import fcntl
import os
import subprocess
import tempfile
from pathlib import Path

# Study A's models are small MLPs: one job leaves most of a GPU idle, so several share one.
JOBS_PER_GPU = 4
_HELD = []          # lock files of this process's GPU slot (kept open: the lock lives as long as the job)


def visible_gpus(env=None) -> int:
    """The GPUs CUDA would show this process: CUDA_VISIBLE_DEVICES when set ("" or -1: none),
    else the NVIDIA driver's list (/proc/driver/nvidia/gpus, else ``nvidia-smi -L``); 0 without a driver."""
    env = os.environ if env is None else env
    if "CUDA_VISIBLE_DEVICES" in env:
        ids = [d.strip() for d in env["CUDA_VISIBLE_DEVICES"].split(",") if d.strip()]
        shown = []
        for d in ids:                      # CUDA stops at the first invalid entry (-1 hides them all)
            if d.startswith("-"):
                break
            shown.append(d)
        return len(shown)
    proc = Path("/proc/driver/nvidia/gpus")
    if proc.is_dir():
        return sum(1 for _ in proc.iterdir())
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return 0
    return sum(1 for line in out.stdout.splitlines() if line.startswith("GPU ")) if out.returncode == 0 else 0


def gpu_job_limit(resources: dict, gpu_jobs: bool, local: bool, gpus: int) -> int | None:
    """The ``gpu`` limit a run should get, or None to leave it as it is: only a local run whose
    jobs ask for GPUs (``gpu_jobs``), on a machine with ``gpus`` > 0, where the user set none."""
    if not gpu_jobs or not local or gpus == 0 or "gpu" in resources:
        return None
    return gpus * JOBS_PER_GPU


def pick_gpu(count: int, lock_dir=None) -> int:
    """The index of the GPU (of ``count``) this job runs on: the first free slot, trying slot 0 of
    every GPU, then slot 1, ...; a slot is a lock file held until the process ends, so jobs spread
    over the GPUs and a job killed mid-way frees its slot.  One GPU: 0, without a lock."""
    if count <= 1:
        return 0
    d = Path(lock_dir or Path(tempfile.gettempdir()) / f"infomax-gpus-{os.getuid()}")
    d.mkdir(parents=True, exist_ok=True)
    slot = 0
    while True:
        for gpu in range(count):
            f = open(d / f"gpu{gpu}.slot{slot}.lock", "w")
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                f.close()
                continue
            _HELD.append(f)
            return gpu
        slot += 1


def release_gpus():
    """Give up the slots this process holds (tests; a job's end does it by closing its files)."""
    while _HELD:
        _HELD.pop().close()
