"""Copies of the project and Snakemake launches for the workflow tests."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The figures of the output contract, as docs/outputs.md spells it (not the code's own constants: they could drift).
FIGURES = ["vib_vim_error_vs_beta", "vib_vim_information_plane", "vib_vim_robustness", "vib_vim_representation_vs_beta",
           "vib_vim_embedding_k2", "dim_infobal_curves", "dim_infobal_probes", "dim_infobal_robustness"]


def snakemake(*args, cwd=ROOT, timeout=900, project=ROOT):
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(Path(project) / "Snakefile"), *args]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def project_copy(dst: Path) -> Path:
    """The Snakefile with what it reads next to it (config, params.yaml, workflow, src): the
    Snakefile finds its config next to itself, so a test edits the copy's config."""
    for name in ("Snakefile", "params.yaml", "environment.yml"):
        shutil.copy(ROOT / name, dst / name)
    for name in ("workflow", "src", "config"):
        shutil.copytree(ROOT / name, dst / name, ignore=shutil.ignore_patterns("__pycache__"))
    return dst


def job_counts(stdout: str) -> dict:
    counts, table = {}, False
    for line in stdout.splitlines():
        parts = line.split()
        if parts[:2] == ["job", "count"]:
            table = True
        elif table and parts and parts[0] == "total":
            break
        elif table and len(parts) == 2 and parts[1].isdigit():
            counts[parts[0]] = int(parts[1])
    return counts


def copy_worktree(dst: Path):
    """The files git would commit (tracked and new, not ignored), as they are now."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout.split("\0")
    for rel in filter(None, listed):
        src = ROOT / rel
        if src.is_file():
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / rel)
