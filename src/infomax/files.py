"""Atomic file writes: a crash or an interrupt never leaves a half-written output behind.

Everything is written to a temporary file in the target's folder and renamed over the target
(os.replace is atomic on one file system).  Renaming also replaces a read-only file that DVC's
link cache may have left, instead of writing into it.
"""

import csv
import json
import os
import uuid
from pathlib import Path


def atomic_write(path, write, mode="wb") -> Path:
    """Call ``write(f)`` on a temp file next to ``path``, then rename it over ``path``.

    The temp file is opened normally (not mkstemp), so the result gets the usual umask
    permissions and stays readable by collaborators on a shared file system."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
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
