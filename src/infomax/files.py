"""Atomic file writes: a crash or an interrupt never leaves a half-written output behind.

Everything is written to a temporary file in the target's folder and renamed over the target
(os.replace is atomic on one file system).  Renaming also replaces a read-only file that DVC's
link cache may have left, instead of writing into it.
"""

import csv
import json
import os
import re
import uuid
from pathlib import Path


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True                 # this process's own temp (or a reused pid): never an orphan of it
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True                 # exists (another user's), or cannot tell: keep it
    return True


def remove_orphans(path) -> list[Path]:
    """Remove the temp files an earlier, killed attempt left next to ``path`` (``.<name>.<pid>.<hex>.tmp``,
    the names ``atomic_write`` uses) whose process is no longer running; return them.  ``path``
    itself, other outputs' temps and a running process's temp are never touched."""
    path = Path(path)
    pattern = re.compile(rf"^\.{re.escape(path.name)}\.(\d+)\.[0-9a-f]+\.tmp$")
    removed = []
    try:
        entries = list(path.parent.iterdir())
    except FileNotFoundError:
        return removed
    for p in entries:
        m = pattern.match(p.name)
        if m and not _pid_alive(int(m.group(1))):
            p.unlink(missing_ok=True)
            removed.append(p)
    return removed


def atomic_write(path, write, mode="wb") -> Path:
    """Call ``write(f)`` on a temp file next to ``path``, then rename it over ``path``.

    The temp file is opened normally (not mkstemp), so the result gets the usual umask
    permissions and stays readable by collaborators on a shared file system."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_orphans(path)            # an earlier attempt killed mid-write left these
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, mode) as f:
            write(f)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def save_torch(obj, path) -> Path:
    import torch

    return atomic_write(path, lambda f: torch.save(obj, f))


def save_json(obj, path) -> Path:
    return atomic_write(path, lambda f: json.dump(obj, f, indent=1, allow_nan=True), mode="w")


def save_csv(rows: list[dict], columns: list[str], path) -> Path:
    """rows: dicts with at least ``columns`` as keys (extra keys are an error)."""
    def write(f):
        w = csv.DictWriter(f, fieldnames=columns, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)

    return atomic_write(path, write, mode="w")


def link_or_copy(src, dest) -> str:
    """Make ``dest`` the file ``src``: a hard link (a copy where the file system has none), then
    stamp ``dest`` with the current time.  The stamp matters to Snakemake, which dates a folder
    output by its own timestamp file: a link keeps its target's older time and would look stale.
    Returns what was done, in words (for the job's log)."""
    src, dest = Path(src), Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if os.path.lexists(dest):
        dest.unlink()
    try:
        os.link(src, dest)
        done = f"linked {dest} -> {src}"
    except OSError as e:
        import shutil

        shutil.copy2(src, dest)
        done = f"copied {src} to {dest} (no hard link: {e})"
    os.utime(dest)
    return done
