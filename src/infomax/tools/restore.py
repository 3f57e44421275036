"""After ``dvc pull``: check the pulled outputs against dvc.lock, then have Snakemake mark its jobs
as done, in DAG order, so that it trains nothing again.

Why this is needed: DVC stores contents, not file times (treeverse/dvc#8602).  A checkout writes
files in no particular order with fresh times, so a model can look older than its data and
Snakemake would retrain it.  A fresh clone has no ``.snakemake/`` metadata either, so Snakemake
could not notice a later change of a rule's params for the pulled files.

What it does, in this order, and stops with a list (changing nothing) at the first failure:
1. ``dvc status`` must find the workspace as ``dvc.lock`` recorded it: same code, config, params,
   commands and file contents.  A missing output is fine (Snakemake rebuilds it, and what
   depends on it); a modified one, a changed dependency or a changed command is not.
2. Every file of the Snakemake DAG that exists must lie inside an output of ``dvc.lock``
   (``snakemake --summary`` lists them), so nothing DVC did not check is marked as done; and
   every checkpoint and prepared data file among them must match the content digest it was
   written with (infomax.files), so a file damaged before it was pushed is not marked as done.
3. ``snakemake --touch --forceall``: Snakemake's own way to "pretend the rules were executed".
   It touches the outputs job after job in DAG order (inputs older than outputs) and records
   each job's metadata (params, code, inputs).  That record is true, because step 1 confirmed
   that code, config and files are those of the recorded run.
4. ``snakemake -n`` reports what is left to do (e.g. figures that were not pulled).
"""

import json
import subprocess
import sys
from pathlib import Path

import yaml


class RestoreError(RuntimeError):
    """The workspace does not match dvc.lock (or a tool failed); nothing was changed."""


def _run(cmd, cwd, what):
    try:
        r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    except FileNotFoundError as e:
        raise RestoreError(f"{what}: cannot run {cmd[0]} ({e})") from None
    if r.returncode != 0:
        raise RestoreError(f"{what} failed in {cwd} (exit {r.returncode}):\n{(r.stderr or r.stdout).strip()}")
    return r.stdout


# -----------------------------------------------------------------------------
# DVC: which files match dvc.lock

def locked_paths(repo) -> dict[str, dict[str, list[str]]]:
    """{stage: {"deps": [paths], "outs": [paths]}} from ``repo/dvc.lock`` (params are not paths)."""
    lock = Path(repo) / "dvc.lock"
    if not lock.is_file():
        raise RestoreError(f"{lock} does not exist: there is no recorded DVC run to restore "
                           "(commit dvc.lock after `dvc repro`, or check out a commit that has one)")
    stages = (yaml.safe_load(lock.read_text()) or {}).get("stages") or {}
    return {name: {kind: [d["path"] for d in st.get(kind, [])] for kind in ("deps", "outs")}
            for name, st in stages.items()}


def dvc_status(repo) -> dict:
    """``dvc status --json`` of the workspace: {stage: [changes]}; {} when it matches dvc.lock."""
    out = _run([sys.executable, "-m", "dvc", "status", "--json"], repo, "dvc status").strip()
    return json.loads(out) if out else {}


def verified_paths(status: dict, locked: dict) -> tuple[list[str], list[str]]:
    """(deps and outs of dvc.lock that the workspace matches, outs that are missing), or
    RestoreError listing every mismatch.

    ``status`` is ``dvc status --json``: per stage a list of ``"changed command"``-like strings and
    ``{"changed deps"|"changed outs": {path: state}}`` dicts (params: ``{file: {key: state}}``).
    A missing ("deleted") out is fine: Snakemake rebuilds it.  So is a missing dep that is the out
    of a stage (reported there).  Anything else means the files are not what dvc.lock describes.
    A stage without a recorded run is not checked, and none of its files counts as verified.
    """
    all_outs = {p for st in locked.values() for p in st["outs"]}
    problems, missing = [], set()
    for stage, changes in status.items():
        if stage not in locked:
            continue
        for change in changes:
            if not isinstance(change, dict):
                problems.append(f"stage {stage}: {change} (dvc.yaml differs from dvc.lock)")
                continue
            for kind, paths in change.items():
                for path, state in paths.items():
                    if state == "deleted" and (kind == "changed outs" or path in all_outs):
                        missing.add(path)
                        continue
                    if isinstance(state, dict):  # a params file: {key: state}
                        state = ", ".join(f"{k} {v}" for k, v in state.items())
                    what = {"changed deps": "dependency", "changed outs": "output"}.get(kind, kind)
                    problems.append(f"stage {stage}: {what} {path}: {state}")
    if problems:
        raise RestoreError("the workspace does not match dvc.lock, so nothing was changed:\n  "
                           + "\n  ".join(problems)
                           + "\n(`dvc pull` or `dvc checkout` restores the recorded files; after an intended "
                             "change, let `dvc repro` or snakemake rebuild instead)")
    paths = {p for st in locked.values() for p in st["deps"] + st["outs"]}
    return sorted(paths - missing), sorted(missing & all_outs)


# -----------------------------------------------------------------------------
# Snakemake: the files of the DAG, and marking its jobs as done

def parse_summary(text: str) -> list[str]:
    """Output files listed by ``snakemake --summary`` (a TSV after some log lines).  Only the first
    column is used: the others come from metadata, which a fresh clone does not have."""
    lines = text.splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.startswith("output_file\t"))
    except StopIteration:
        raise RestoreError("snakemake --summary printed no table (expected a header starting with "
                           f"'output_file'); it said:\n{text[-2000:]}") from None
    return [line.split("\t", 1)[0] for line in lines[start + 1:] if line.strip()]


def dag_outputs(workdir, snakemake_args=()) -> list[str]:
    cmd = [sys.executable, "-m", "snakemake", "--summary", "--cores", "1", *snakemake_args]
    return parse_summary(_run(cmd, workdir, "snakemake --summary"))


def _inside(path: str, roots) -> bool:
    p = Path(path)
    return any(p == Path(r) or Path(r) in p.parents for r in roots)


def unverified_outputs(outputs, root, verified) -> list[str]:
    """The ``outputs`` (relative to ``root``) that exist but lie in no ``verified`` path."""
    return [o for o in outputs if (Path(root) / o).exists() and not _inside(o, verified)]


def damaged_torch_files(outputs, root) -> list[str]:
    """Each torch file (``*.pt``, in an output or inside a folder output) whose content digest does
    not match, with why: DVC checks that a file is what it pushed, not that it was right then."""
    from ..files import DamagedFile, load_torch, rebuild_command

    problems = []
    for o in outputs:
        path = Path(root) / o
        files = sorted(path.rglob("*.pt")) if path.is_dir() else [path] if path.suffix == ".pt" and path.exists() else []
        for f in files:
            try:
                load_torch(f, rebuild_command(o))
            except DamagedFile as e:
                problems.append(str(e))
    return problems


def touch_in_dag_order(workdir, snakemake_args=()):
    """``snakemake --touch --forceall``: touch every existing output, upstream first, and record
    each job's metadata as if it had just run.  Outputs that do not exist stay missing."""
    _run([sys.executable, "-m", "snakemake", "--touch", "--forceall", "--cores", "1", *snakemake_args],
         workdir, "snakemake --touch")


def pending_jobs(workdir, snakemake_args=()) -> dict[str, int]:
    """Job counts of ``snakemake -n`` by rule (empty: nothing to do)."""
    out = _run([sys.executable, "-m", "snakemake", "-n", "--cores", "1", *snakemake_args], workdir, "snakemake -n")
    counts, table = {}, False
    for line in out.splitlines():
        parts = line.split()
        if parts[:2] == ["job", "count"]:
            table = True
        elif table and parts[:1] == ["total"]:
            break
        elif table and len(parts) == 2 and parts[1].isdigit():
            counts[parts[0]] = int(parts[1])
    return counts


# -----------------------------------------------------------------------------
# the command

def selected_experiment(repo) -> str:
    """The experiment DVC runs: ``experiment`` in ``repo/params.yaml``."""
    params = Path(repo) / "params.yaml"
    if not params.is_file():
        raise RestoreError(f"{params} does not exist (expected the DVC params file with `experiment: NAME`)")
    name = (yaml.safe_load(params.read_text()) or {}).get("experiment")
    if not isinstance(name, str) or not name:
        raise RestoreError(f"{params}: expected a key `experiment: NAME` (e.g. experiment: smoke), found {name!r}")
    return name


def restore_mtimes(repo=".", experiment: str | None = None, snakemake_args=(), log=print) -> dict:
    """Steps 1-4 of the module docstring for ``experiment`` (default: the one in params.yaml,
    which dvc.lock was made for).  Returns {"experiment", "missing", "pending"}."""
    repo = Path(repo).resolve()
    experiment = experiment or selected_experiment(repo)
    verified, missing = verified_paths(dvc_status(repo), locked_paths(repo))
    log("dvc status: the workspace matches dvc.lock"
        + (f", except missing {', '.join(missing)} (snakemake rebuilds them)" if missing else ""))
    args = [*snakemake_args, "--config", f"experiment={experiment}"]
    outputs = dag_outputs(repo, args)
    outside = unverified_outputs(outputs, repo, verified)
    if outside:
        raise RestoreError(f"{len(outside)} Snakemake outputs of experiment {experiment} exist but no output "
                           "of dvc.lock covers them, so DVC cannot vouch for them and nothing was changed:\n  "
                           + "\n  ".join(outside[:10]) + ("\n  ..." if len(outside) > 10 else "")
                           + "\n(add their folder to a stage of dvc.yaml, or delete them so that snakemake "
                             "rebuilds them)")
    damaged = damaged_torch_files(outputs, repo)
    if damaged:
        raise RestoreError(f"{len(damaged)} checkpoint or data files are damaged or refused (never unpickled), so "
                           "nothing was changed:\n  "
                           + "\n  ".join(damaged))
    log("content digests: every checkpoint and prepared data file is as it was written")
    touch_in_dag_order(repo, args)
    log(f"snakemake --touch: outputs of experiment {experiment} marked as done, in DAG order")
    pending = pending_jobs(repo, args)
    if pending:
        log(f"`snakemake --cores all --config experiment={experiment}` will run: "
            + ", ".join(f"{n} {rule}" for rule, n in pending.items()))
    else:
        log(f"up to date: `snakemake --cores all --config experiment={experiment}` has nothing to do")
    return {"experiment": experiment, "missing": missing, "pending": pending}
