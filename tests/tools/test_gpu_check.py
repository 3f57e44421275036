"""scripts/gpu_check.sh: what can be checked without a GPU (its syntax, the no-CUDA exit, its parsing modes)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from infomax.files import save_torch

pytestmark = pytest.mark.slow     # runs the GPU check script

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "gpu_check.sh"


def run(*args, env=None, timeout=120):
    e = {**os.environ, "PYTHON": sys.executable, **(env or {})}
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, env=e, timeout=timeout)


def test_syntax():
    r = subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_help():
    r = run("--help")
    assert r.returncode == 0, r.stderr
    assert "gpu_check.sh" in r.stdout and "GPU_CHECK_DIR" in r.stdout


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA: the script would run everything")
def test_no_cuda_exits_2_and_runs_nothing(tmp_path):
    scratch = tmp_path / "chk"
    r = run(env={"GPU_CHECK_DIR": str(scratch)})
    out = r.stdout + r.stderr
    assert r.returncode == 2, out
    assert "torch sees no CUDA" in out
    assert sorted(p.name for p in (scratch / "logs").iterdir()) == ["gpu.log"]   # no pytest/smoke/quick/bench log
    assert not (scratch / "results").exists() and not (scratch / ".snakemake").exists()
    assert not (scratch / "gpu_check_summary.txt").exists()


def test_refuses_non_empty_scratch(tmp_path):
    (tmp_path / "old.txt").write_text("stale")
    r = run(env={"GPU_CHECK_DIR": str(tmp_path)})
    assert r.returncode == 64
    assert "not empty" in r.stderr
    assert not (tmp_path / "logs").exists()


def test_unknown_option():
    assert run("--no-such-flag").returncode == 64


def claims_json(path, verdicts):
    """A claims.json with the structure the replication rule writes (the keys the script reads)."""
    claims = [{"id": cid, "statement": f"claim {cid} holds.", "study": "vib_vim" if cid[0] == "A" else "dim_infobal",
               "metric": "m", "verdict": v, "reason": "r", "comparisons": [], "anchors": []}
              for cid, v in verdicts.items()]
    path.write_text(json.dumps({"experiment": "smoke", "confidence": 0.95, "min_seeds": 2, "margins": {},
                                "facts": {}, "protocols": {}, "claims": claims, "anchors": [],
                                "reconstructed": [], "deviations": [], "figures": []}))
    return path


def test_summarize_claims(tmp_path):
    p = claims_json(tmp_path / "claims.json", {"A1": "inconclusive", "A2": "refuted", "B3": "supported"})
    r = run("--summarize-claims", str(p))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split()[:3] == ["smoke", "A1", "inconclusive"]
    assert lines[1].split()[:3] == ["smoke", "A2", "refuted"]
    assert lines[2].split()[:3] == ["smoke", "B3", "supported"]
    assert "3 claims: 1 inconclusive, 1 refuted, 1 supported" in lines[3]


def test_summarize_claims_missing_or_broken(tmp_path):
    r = run("--summarize-claims", str(tmp_path / "nope.json"))
    assert r.returncode == 1 and "no verdicts" in r.stdout
    (tmp_path / "bad.json").write_text("{}")
    r = run("--summarize-claims", str(tmp_path / "bad.json"))
    assert r.returncode == 1 and "no verdicts" in r.stdout


def checkpoints(results, devices_a, devices_b):
    for sub, devs in (("vib_vim", devices_a), ("dim_infobal", devices_b)):
        d = results / sub / "models"
        d.mkdir(parents=True)
        for i, dev in enumerate(devs):
            save_torch({"format": "x", "device": dev, "state_dict": {}}, d / f"m{i}_s0.pt")
    return results


def test_summarize_devices(tmp_path):
    res = checkpoints(tmp_path / "results" / "quick", ["cuda", "cuda"], ["cuda:0"])
    (res / "vib_vim" / "models" / "k2").mkdir()
    save_torch({"device": "cuda"}, res / "vib_vim" / "models" / "k2" / "vib_b1e-3_s0.pt")
    r = run("--summarize-devices", str(res), "--expect-cuda")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Study A (vib_vim): 3 checkpoint(s), devices: cuda x3" in r.stdout
    assert "Study B (dim_infobal): 1 checkpoint(s), devices: cuda:0 x1" in r.stdout


def test_summarize_devices_flags_cpu_and_missing(tmp_path):
    res = checkpoints(tmp_path / "results" / "smoke", ["cuda", "cpu"], [])
    r = run("--summarize-devices", str(res))                      # reported, not checked
    assert r.returncode == 0, r.stdout + r.stderr
    assert "devices: cpu x1, cuda x1" in r.stdout
    r = run("--summarize-devices", str(res), "--expect-cuda")     # checked: a CPU one, and no study B
    assert r.returncode == 1
    assert "not on CUDA: vib_vim/models/m1_s0.pt" in r.stdout
    assert "Study B (dim_infobal): expected every checkpoint on CUDA; no checkpoints found" in r.stdout


class Runs:
    """An object whose pickle calls a function: loading a checkpoint that holds one runs it."""

    def __reduce__(self):
        return (print, ("this ran while the checkpoint was read",))


def test_summarize_devices_reads_weights_only(tmp_path):
    """A checkpoint that would run code while it is read (a pickled callable), one without the
    pipeline's digest and a truncated one are reported unreadable, not unpickled."""
    res = checkpoints(tmp_path / "results" / "quick", ["cuda"], ["cuda"])
    d = res / "vib_vim" / "models"
    torch.save({"device": "cuda", "x": Runs()}, d / "evil_s0.pt")
    torch.save({"device": "cuda"}, d / "nodigest_s0.pt")
    (d / "cut_s0.pt").write_bytes((d / "m0_s0.pt").read_bytes()[:100])
    r = run("--summarize-devices", str(res), "--expect-cuda")
    assert "this ran" not in r.stdout + r.stderr
    assert "(unreadable: RefusedFile) x1" in r.stdout
    assert "(unreadable: DamagedFile) x2" in r.stdout
    assert "cuda x1" in r.stdout
    assert r.returncode == 1
