"""Atomic file writes: a crash or an interrupt never leaves a half-written output behind.

Everything is written to a temporary file in the target's folder and renamed over the target
(os.replace is atomic on one file system).  Renaming also replaces a read-only file that DVC's
link cache may have left, instead of writing into it.
"""

import csv
import json
import os
import tempfile
from pathlib import Path


def _atomic(path, write, mode="wb"):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def save_torch(obj, path) -> Path:
    import torch

    return _atomic(path, lambda f: torch.save(obj, f))


def save_json(obj, path) -> Path:
    return _atomic(path, lambda f: json.dump(obj, f, indent=1, allow_nan=True), mode="w")


def save_csv(rows: list[dict], columns: list[str], path) -> Path:
    """rows: dicts with at least ``columns`` as keys (extra keys are an error)."""
    def write(f):
        w = csv.DictWriter(f, fieldnames=columns, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)

    return _atomic(path, write, mode="w")
