"""Collected tables: the one number format, reading evaluation JSONs, and reading CSVs with errors
that name the file, the column and the row.  Each study's ``tables`` module owns its columns and
vocabulary; this module knows nothing of either study.
"""

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd


def num(x):
    """The number format of every collected table and summary: 6 significant digits (float32 noise
    is not information); None for a missing or NaN value (an empty CSV cell, JSON null)."""
    if x is None:
        return None
    x = float(x)
    return None if math.isnan(x) else float(f"{x:.6g}")


def read_evals(paths) -> list[dict]:
    """The evaluation JSONs an evaluate job wrote, in order; a bad one is named."""
    evals = []
    for p in paths:
        try:
            evals.append(json.loads(Path(p).read_text()))
        except (OSError, json.JSONDecodeError) as e:
            raise ValueError(f"cannot read evaluation {p} ({e}): rerun its evaluate job") from None
    return evals


def write_tables(rows: dict, columns: dict, out_dir) -> list[Path]:
    """Each table's rows ({table: [row dicts]}) as ``out_dir/<table>.csv``, with its columns."""
    from .files import save_csv

    return [save_csv(rows[t], columns[t], Path(out_dir) / f"{t}.csv") for t in columns]


def read_table(path, columns, text) -> pd.DataFrame:
    """A collected CSV with at least ``columns``.  The ``text`` columns stay strings ('none' is a
    value there, not a missing one); every other listed column must be numeric (an empty cell is
    NaN).  Errors name the file, and for a bad cell its column, row and value."""
    path = Path(path)
    expected = ", ".join(columns)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: file not found (expected a CSV with columns: {expected})")
    try:
        df = pd.read_csv(path, keep_default_na=False, na_values=["", "nan", "NaN", "NA"],
                         dtype={c: str for c in text})
    except pd.errors.EmptyDataError:
        raise ValueError(f"{path}: file is empty (expected a CSV with columns: {expected})") from None
    except pd.errors.ParserError as e:
        raise ValueError(f"{path}: not a readable CSV ({e})") from None
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(missing)} "
                         f"(expected columns: {expected}; found: {', '.join(map(str, df.columns))})")
    if df.empty:
        raise ValueError(f"{path}: the table has no rows (expected a CSV with columns: {expected})")
    for c in columns:
        if c in text:
            df[c] = df[c].astype(str)
            continue
        values = pd.to_numeric(df[c], errors="coerce")
        bad = values.isna() & df[c].notna()
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise ValueError(f"{path}: column {c}, row {row + 1} (line {row + 2}): "
                             f"{df[c].iloc[row]!r} is not a number")
        df[c] = values
    return df


def close(a, b):
    """Float equality for keys such as beta (values written with 6 significant digits)."""
    return np.isclose(a, b, rtol=1e-9, atol=0)


def per_seed(df, value, scale=1.0, key=lambda r: f"s{int(r.seed)}") -> dict:
    """{run key: mean of ``value`` * scale} (mean over duplicate rows of a run, e.g. noise levels)."""
    out = {}
    for r in df.itertuples(index=False):
        out.setdefault(key(r), []).append(float(getattr(r, value)) * scale)
    return {k: float(np.mean(v)) for k, v in out.items()}
