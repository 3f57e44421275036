"""Where a run's time went: the job-seconds of each rule, from the benchmark files every rule
writes (results/<experiment>/benchmarks/**.tsv, Snakemake's `benchmark:` directive; column `s`
is the job's wall time).  Prints a markdown table (jobs, job-seconds, median and longest job per
rule group) and the total; with a second results folder, each group's change as well.

    python scripts/job_seconds.py results/quick [OTHER_RUN/results/quick]

Groups: each study's training and evaluation (benchmarks/<study>/<train|evaluate>/), and
everything else (data, collect, figures, summary, replication) as "other".
"""

import argparse
import csv
import statistics
import sys
from pathlib import Path


def job_seconds(results: Path) -> dict[str, list[float]]:
    """{group: [wall seconds of each job]} of one run."""
    bench = results / "benchmarks"
    if not bench.is_dir():
        raise FileNotFoundError(f"{bench}: no benchmark folder (expected results/<experiment>/benchmarks/ of a run)")
    out: dict[str, list[float]] = {}
    for f in sorted(bench.rglob("*.tsv")):
        parts = f.relative_to(bench).parts
        group = f"{parts[0]} {parts[1]}" if len(parts) == 3 else "other"
        with open(f, newline="") as fh:
            rows = list(csv.DictReader(fh, delimiter="\t"))
        if not rows or "s" not in rows[-1]:
            raise ValueError(f"{f}: not a Snakemake benchmark file (expected a column 's')")
        out.setdefault(group, []).append(float(rows[-1]["s"]))
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("results", type=Path, help="results/<experiment> of a run")
    p.add_argument("before", type=Path, nargs="?", help="the same of an earlier run, to compare with")
    a = p.parse_args(argv)
    now = job_seconds(a.results)
    old = job_seconds(a.before) if a.before else {}
    groups = sorted(set(now) | set(old), key=lambda g: (g == "other", g))
    head = "| jobs | count | job-seconds | median job (s) | longest job (s) |"
    print(head + (" before: count, job-seconds | change |" if old else ""))
    print("|---" * (5 + (2 if old else 0)) + "|")
    for g in groups:
        s, b = now.get(g, []), old.get(g, [])
        line = (f"| {g} | {len(s)} | {sum(s):,.0f} | {statistics.median(s) if s else 0:.1f} | {max(s, default=0):.1f} |")
        if old:
            change = f"{sum(s) / sum(b):.2f}x" if sum(b) else "new"
            line += f" {len(b)}, {sum(b):,.0f} | {change} |"
        print(line)
    total = sum(map(sum, now.values()))
    print(f"\ntotal: {sum(map(len, now.values()))} jobs, {total:,.0f} job-seconds"
          + (f" (before: {sum(map(sum, old.values())):,.0f})" if old else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
