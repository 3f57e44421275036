"""Compare two results folders of one experiment, cell by cell: the proof a refactor changed no
science.  Every collected CSV (<study>/*.csv, plots/*.csv) must hold the same cells, and
claims.json / summary.json the same numbers and verdicts.  Timings (train_seconds) are skipped;
strings other than verdicts (labels, notes) are listed but do not fail the comparison.

    python scripts/compare_results.py OLD/results/quick NEW/results/quick --rename infobal=dim_infobal
    python scripts/compare_results.py OLD NEW --rename-column err_12=err_avg --rename-column val_err_12=val_err_avg

--rename maps the old side's study folders and JSON keys; --rename-column its CSV columns and JSON
keys (a column renamed, as err_12 became err_avg in issue 32).
"""

import argparse
import csv
import json
import math
import sys
from pathlib import Path

TIMINGS = {"train_seconds"}
DECISIONS = {"verdict", "id", "experiment"}


def same_number(a, b) -> bool:
    return (a is None and b is None) or (a is not None and b is not None and (a == b or (
        isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b))))


def csv_rows(path, columns=None):
    """The rows of a CSV as dicts; ``columns``: old name -> new name, applied to the header."""
    columns = columns or {}
    with open(path, newline="") as f:
        return [{columns.get(k, k): v for k, v in row.items()} for row in csv.DictReader(f)]


def compare_csv(old, new, out, columns=None):
    """Cells of ``old`` (its columns renamed by ``columns``) against ``new``; returns the count."""
    a, b = csv_rows(old, columns), csv_rows(new)
    if len(a) != len(b):
        out.append(f"{new}: {len(b)} rows, {old} has {len(a)}")
        return 0
    cells = 0
    for i, (ra, rb) in enumerate(zip(a, b)):
        if set(ra) != set(rb):
            out.append(f"{new}: columns {sorted(rb)} vs {sorted(ra)}")
            return cells
        for c in ra:
            if c in TIMINGS:
                continue
            cells += 1
            if ra[c] != rb[c]:
                out.append(f"{new}: row {i + 1}, column {c}: {rb[c]!r} (old {ra[c]!r})")
    return cells


def walk(a, b, path, out, notes, renames):
    """Numbers and decisions must match; other strings are noted."""
    if isinstance(a, dict) and isinstance(b, dict):
        keys_a = {renames.get(k, k): k for k in a}
        for k in sorted(set(keys_a) | set(b)):
            if k in TIMINGS:
                continue
            if k not in b or k not in keys_a:
                out.append(f"{path}.{k}: only in {'old' if k not in b else 'new'}")
                continue
            walk(a[keys_a[k]], b[k], f"{path}.{k}", out, notes, renames)
        return 0
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            out.append(f"{path}: {len(b)} items (old {len(a)})")
            return 0
        for i, (x, y) in enumerate(zip(a, b)):
            walk(x, y, f"{path}[{i}]", out, notes, renames)
        return 0
    if isinstance(a, (int, float)) or isinstance(b, (int, float)) or a is None or b is None:
        if not same_number(a, b):
            out.append(f"{path}: {b!r} (old {a!r})")
    elif a != b:
        key = path.rsplit(".", 1)[-1]
        (out if key in DECISIONS else notes).append(f"{path}: {b!r} (old {a!r})")
    return 0


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("old")
    p.add_argument("new")
    p.add_argument("--rename", action="append", default=[], help="OLD=NEW: a study folder / key renamed")
    p.add_argument("--rename-column", action="append", default=[], metavar="OLD=NEW",
                   help="a column renamed: the old side's CSV column and JSON key OLD reads as NEW (repeatable)")
    a = p.parse_args(argv)
    renames, columns = {}, {}
    for flag, given, into in (("--rename", a.rename, renames), ("--rename-column", a.rename_column, columns)):
        for r in given:
            old_name, sep, new_name = r.partition("=")
            if not sep or not old_name or not new_name:
                p.error(f"{flag} {r!r}: expected OLD=NEW")
            into[old_name] = new_name
    old, new = Path(a.old), Path(a.new)
    out, notes, cells, files = [], [], 0, 0
    for f in sorted(old.glob("*/*.csv")):                  # <study>/*.csv and plots/*.csv, each once
        rel = f.relative_to(old)
        target = new / renames.get(rel.parts[0], rel.parts[0]) / Path(*rel.parts[1:])
        if rel.parts[0] in ("logs", "benchmarks"):
            continue
        if not target.exists():
            out.append(f"{target}: missing")
            continue
        cells += compare_csv(f, target, out, columns)
        files += 1
    for name in ("claims.json", "summary.json"):
        ja, jb = json.loads((old / name).read_text()), json.loads((new / name).read_text())
        walk(ja, jb, name, out, notes, {**renames, **columns})
        files += 1
    for n in notes[:40]:
        print("note (label or text):", n)
    if len(notes) > 40:
        print(f"note: {len(notes) - 40} more text differences")
    for o in out:
        print("DIFFERENT:", o)
    print(f"{files} files, {cells} CSV cells compared (timings skipped): "
          + ("identical numbers and verdicts" if not out else f"{len(out)} differences"))
    return 1 if out else 0


if __name__ == "__main__":
    sys.exit(main())
