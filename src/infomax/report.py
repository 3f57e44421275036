"""The replication report: did the published claims replicate?  ``claims.json``, ``REPLICATION.md``
and ``REPLICATION.html``; and the experiment's ``summary.json``.

Built from the collected tables only (never a model), the published numbers of
``config/published.yaml`` and the experiment's settings.  Each study's ``claims`` module states
its claims and their comparisons; the statistics and verdict rules are ``infomax.stats``.  An
anchored claim (A4: "reaches about 1.13%") also checks our number against the published one, only
when the experiment matches the published protocol (data, epochs, model options); otherwise that
part is inconclusive and says why.
"""

import json
import math
from dataclasses import dataclass
from pathlib import Path

import yaml

from .files import atomic_write, save_json
from .stats import ABOVE, BELOW, CONTRADICTED, INCONCLUSIVE, NEGLIGIBLE, SUPPORTED, combine, fmt, mean_ci
from .studies import STUDIES

CLAIMS_OF = {s.NAME: s.claims_module() for s in STUDIES}
PUBLISHED_STUDIES = tuple(CLAIMS_OF)
CLAIMS = {cid: text for c in CLAIMS_OF.values() for cid, text in c.CLAIMS.items()}
STUDY_OF = {cid: study for study, c in CLAIMS_OF.items() for cid in c.CLAIMS}
METRIC_TEXT = {cid: text for c in CLAIMS_OF.values() for cid, text in c.METRIC_TEXT.items()}
RECONSTRUCTED = [line for c in CLAIMS_OF.values() for line in c.RECONSTRUCTED] + [
    "How each claim is measured (its metric, margin and test, stated in its section): the sources "
    "state the claims in words.",
]
STUDY_TITLES = {s.NAME: s.TITLE for s in STUDIES}


@dataclass
class ReportConfig:
    """The config's `report` block: the statistics every claim uses, and the margins the studies'
    claims read by name (``margin``).  No defaults here."""

    confidence: float
    min_seeds: int                  # fewer runs on a side: inconclusive
    anchor_tolerance: float         # anchors: ours / published within [1/(1+t), 1+t], or inside our CI
    negligible_fraction: float      # delta of a direction claim: this fraction of the beaten side's error
    margins: dict                   # every other key of the block: a claim's margin, by name

    @classmethod
    def of(cls, block: dict) -> "ReportConfig":
        base = {"confidence", "min_seeds", "anchor_tolerance", "negligible_fraction"}
        lacking = sorted(base - set(block))
        if lacking:
            raise ValueError("; ".join(f"report.{k}: missing" for k in lacking)
                             + " (the config's report block sets it; workflow/schemas/config.schema.yaml requires it)")
        return cls(**{k: block[k] for k in sorted(base)}, margins={k: v for k, v in block.items() if k not in base})

    def margin(self, name: str) -> float:
        if name not in self.margins:
            raise ValueError(f"report.{name}: missing (a claim's margin; the config's report block sets it)")
        return self.margins[name]

    def __post_init__(self):
        if not 0 < self.confidence < 1:
            raise ValueError(f"report.confidence = {self.confidence}: expected a probability in (0, 1)")
        if self.min_seeds < 2:
            raise ValueError(f"report.min_seeds = {self.min_seeds}: expected >= 2 (an interval needs 2 runs)")
        if self.anchor_tolerance <= 0:
            raise ValueError(f"report.anchor_tolerance = {self.anchor_tolerance}: expected > 0")
        if not 0 < self.negligible_fraction < 1:
            raise ValueError(f"report.negligible_fraction = {self.negligible_fraction}: expected a fraction in (0, 1) "
                             "of the beaten side's error")


# -----------------------------------------------------------------------------
# published anchors

def load_published(path) -> dict:
    """``config/published.yaml``, checked: every anchor names its study, value, unit and source."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: published numbers file not found (expected config/published.yaml)")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise ValueError(f"{path}: not valid YAML ({e})") from None
    if not isinstance(data, dict) or not {"protocols", "anchors"} <= set(data):
        raise ValueError(f"{path}: expected top-level keys 'protocols' and 'anchors'")
    for study in PUBLISHED_STUDIES:
        if study not in data["protocols"]:
            raise ValueError(f"{path}: protocols.{study}: missing")
    need = {"study", "claims", "what", "value", "unit", "source", "match"}
    for aid, a in data["anchors"].items():
        lacking = sorted(need - set(a or {}))
        if lacking:
            raise ValueError(f"{path}: anchors.{aid}: missing {', '.join(lacking)}")
        if a["study"] not in PUBLISHED_STUDIES:
            raise ValueError(f"{path}: anchors.{aid}.study: {a['study']!r}, expected one of {PUBLISHED_STUDIES}")
        if a["unit"] not in ("percent", "bits"):
            raise ValueError(f"{path}: anchors.{aid}.unit: {a['unit']!r}, expected 'percent' or 'bits'")
        if not isinstance(a["value"], (int, float)):
            raise ValueError(f"{path}: anchors.{aid}.value: {a['value']!r} is not a number")
    return data


def _not_comparable(protocol: dict, facts: dict) -> list[str]:
    """Why our run is not the published protocol (empty: comparable)."""
    reasons = []
    for key, want in protocol.items():
        if key == "source":
            continue
        have = facts.get(key)
        if key == "epochs" or key.endswith("_epochs"):             # a minimum: more epochs is no deviation
            if have is None or have < want:
                reasons.append(f"{have} of the published {want} epochs" + ("" if key == "epochs" else f" ({key})"))
        elif have != want:
            reasons.append(f"{key} {have} (published: {want})")
    return reasons


def anchor_values(anchor, tables: dict) -> dict:
    """Our values (display units, {seed: value}) for an anchor's ``match``; {} if we have none.
    ``tables``: study name -> its tables (its claims module's ``read_tables``)."""
    match = anchor["match"]
    if match is None:
        return {}
    scale = 100.0 if anchor["unit"] == "percent" else 1.0
    return CLAIMS_OF[anchor["study"]].anchor_values(match, tables[anchor["study"]], scale)


def anchors(published: dict, facts: dict, tables: dict, rc: ReportConfig) -> list[dict]:
    out = []
    for aid, a in published["anchors"].items():
        protocol = {**published["protocols"][a["study"]], **(a.get("protocol") or {})}
        study_facts = facts.get(a["study"], {})
        ours = mean_ci(anchor_values(a, tables), rc.confidence)
        if a["match"] is None:
            reasons = ["this pipeline does not train this model"]
        elif ours["n"] == 0:
            reasons = ["no matching run in this experiment"]
        else:
            reasons = _not_comparable(protocol, study_facts)
        same_data = study_facts.get("dataset") == protocol.get("dataset")
        ratio = ours["mean"] / a["value"] if same_data and ours["n"] and a["value"] else math.nan
        entry = {"id": aid, "study": a["study"], "claims": list(a["claims"]), "what": a["what"],
                 "published": a["value"], "unit": "%" if a["unit"] == "percent" else "bits", "source": a["source"],
                 "ours": ours, "ratio": ratio, "comparable": not reasons, "not_comparable_because": reasons,
                 "primary": bool(a.get("primary", False))}
        out.append(entry)
    return out


def anchor_check(entry: dict, rc: ReportConfig) -> dict:
    """A claim's "reaches about <published>" part: decided only on a comparable experiment."""
    name = f"{entry['what']} reaches about {fmt(entry['published'])}{entry['unit']} ({entry['source']})"
    base = {"name": name, "votes": True, "anchor": entry["id"], "sides": [], "test": ""}
    if not entry["comparable"]:
        return {**base, "verdict": INCONCLUSIVE,
                "reason": "not comparable with the published protocol: " + "; ".join(entry["not_comparable_because"]),
                "test": "none: the published number is only checked on the published protocol"}
    lo, hi = entry["ours"]["ci"]
    ratio, tol = entry["ratio"], rc.anchor_tolerance
    if entry["ours"]["n"] < rc.min_seeds:        # the rule every verdict follows: min_seeds runs
        return {**base, "verdict": INCONCLUSIVE, "test": "none: too few runs",
                "reason": f"{entry['ours']['n']} run(s); at least {rc.min_seeds} are needed (ours "
                          f"{fmt(entry['ours']['mean'])} vs published {fmt(entry['published'])}, ratio {ratio:.3g})"}
    inside = math.isfinite(lo) and lo <= entry["published"] <= hi
    near = 1 / (1 + tol) <= ratio <= 1 + tol
    test = f"published value inside our {rc.confidence:.0%} interval, or ours / published within [{1 / (1 + tol):.3g}, {1 + tol:.3g}]"
    if inside or near:
        return {**base, "verdict": SUPPORTED, "test": test,
                "reason": f"ours {fmt(entry['ours']['mean'])} vs published {fmt(entry['published'])} (ratio {ratio:.3g})"}
    return {**base, "verdict": CONTRADICTED, "test": test,
            "reason": f"ours {fmt(entry['ours']['mean'])} vs published {fmt(entry['published'])} (ratio {ratio:.3g})"}


# -----------------------------------------------------------------------------
# the report

def _sanitize(x):
    """JSON without NaN: NaN / inf -> null (strict JSON readers reject NaN)."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: _sanitize(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_sanitize(v) for v in x]
    return x


def run_studies(settings: dict, tables_paths: dict) -> list[str]:
    """The studies the experiment ran (``settings['studies']``, report order), checked against
    the tables given: each of them, and no other, must have its tables."""
    names = settings["studies"]
    unknown = [s for s in names if s not in CLAIMS_OF]
    if unknown or not names:
        raise ValueError(f"settings.studies: {names!r}, expected one or more of {list(CLAIMS_OF)}")
    if set(tables_paths) != set(names):
        raise ValueError(f"tables given for {sorted(tables_paths) or 'no study'}, but the experiment runs "
                         f"{', '.join(names)}: expected the tables of exactly those studies")
    return [s for s in CLAIMS_OF if s in names]


def precision_used(paths: dict) -> list[str]:
    """The training precisions a study's runs used, from the ``precision`` column of its tables
    (``paths``: table name -> CSV); each model's checkpoint holds the precision that ran, so a
    config's ``auto`` reads here as what each machine chose.  Empty: no table has the column."""
    import pandas as pd

    used = set()
    for path in paths.values():
        df = pd.read_csv(path, usecols=lambda c: c == "precision", dtype=str, keep_default_na=False)
        used |= {v for v in df.get("precision", []) if v}
    return sorted(used)


def build_claims(settings: dict, tables_paths: dict, published_path) -> dict:
    """Everything of claims.json: settings (from the workflow), table paths, the published file.
    Only the studies the experiment ran (``run_studies``) have claims, anchors and deviations."""
    rc = ReportConfig.of(settings["report"])
    published = load_published(published_path)
    studies = run_studies(settings, tables_paths)
    tables = {study: CLAIMS_OF[study].read_tables(tables_paths[study], settings["options"][study]) for study in studies}
    # the precision asked for (the config's, maybe "auto") and the precision(s) the runs used
    settings = {**settings, "facts": {s: {**f, **({"precision_used": precision_used(tables_paths[s])}
                                                   if s in studies else {})}
                                      for s, f in settings["facts"].items()}}
    parts = {cid: comps for study in studies for cid, comps in CLAIMS_OF[study].claims(tables[study], rc).items()}
    mine = {**published, "anchors": {k: a for k, a in published["anchors"].items() if a["study"] in studies}}
    anchor_list = anchors(mine, settings["facts"], tables, rc)
    by_claim = {}
    for a in anchor_list:
        for c in a["claims"]:
            by_claim.setdefault(c, []).append(a)
    claims = []
    for cid, statement in CLAIMS.items():
        if STUDY_OF[cid] not in studies:
            continue
        comps = list(parts[cid])
        comps += [anchor_check(a, rc) for a in by_claim.get(cid, []) if a["primary"]]
        verdict, reason = combine(comps)
        claims.append({"id": cid, "statement": statement, "study": STUDY_OF[cid],
                       "metric": METRIC_TEXT[cid].format_map(tables[STUDY_OF[cid]]),   # {samples}, {beta}, ...
                       "verdict": verdict, "reason": reason, "comparisons": comps,
                       "anchors": [a["id"] for a in by_claim.get(cid, [])]})
    return _sanitize({
        "experiment": settings["experiment"], "studies": studies, "confidence": rc.confidence, "min_seeds": rc.min_seeds,
        "negligible_fraction": rc.negligible_fraction,
        "margins": {**rc.margins, "anchor_tolerance": rc.anchor_tolerance},
        "facts": settings["facts"], "protocols": published["protocols"],
        "claims": claims, "anchors": anchor_list, "reconstructed": RECONSTRUCTED,
        "deviations": deviations(settings["facts"], published["protocols"], studies),
    })


def deviations(facts: dict, protocols: dict, studies=PUBLISHED_STUDIES) -> dict:
    """Per study run, how this experiment differs from the published protocol (empty: it does not)."""
    return {study: _not_comparable(protocols[study], facts.get(study, {})) for study in studies}


# -----------------------------------------------------------------------------
# markdown

def _show(x, unit):
    """Accuracies and errors in % with 2 decimals; bits and nats with 3 significant digits."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    return f"{x:.2f}" if unit == "%" else f"{x:.3g}"


def _ci_text(s, unit):
    if not s.get("n"):
        return "no runs"
    lo, hi = s["ci"]
    if lo is None or hi is None:
        return f"{_show(s['mean'], unit)} {unit} (n={s['n']}, no interval)"
    return f"{_show(s['mean'], unit)} {unit} [{_show(lo, unit)}, {_show(hi, unit)}] (n={s['n']})"


def _difference_label(p):
    a, b = p["sides"][0]["label"], p["sides"][1]["label"]
    if p.get("higher_is_better", True):
        return f"{a} minus {b}"
    return f"{b} minus {a} (lower is better: positive favours {a})"


VERDICT_MARK = {SUPPORTED: "**supported**", CONTRADICTED: "**contradicted**", NEGLIGIBLE: "**negligible**",
                INCONCLUSIVE: "inconclusive"}


PRECISION_TEXT = {"float32": "float32",
                  "bfloat16": "bfloat16 autocast (matmuls and convolutions; weights, optimiser state and losses in float32)"}


def precision_text(facts: dict) -> str:
    """A study's training precision in words: what its runs used (``precision_used``, from the
    tables), and what the config asked for when that was ``auto`` or differs."""
    asked, used = facts.get("precision"), facts.get("precision_used") or []
    if not used:
        return PRECISION_TEXT.get(asked, asked) if asked else ""
    text = " and ".join(PRECISION_TEXT.get(p, p) for p in used)
    if asked == "auto":
        return f"{text} (precision auto: bfloat16 where the device computes it natively, else float32)"
    if used != [asked]:
        return f"{text} (asked for: {asked})"
    return text


def render_markdown(claims: dict, figures: list[dict], forest: dict | None = None) -> str:
    """REPLICATION.md from claims.json's content and the figures ({name, caption, rule, path});
    ``forest`` ({path, caption}): the forest plot of the verdicts, shown at the top."""
    conf = f"{claims['confidence']:.0%}"
    lines = [f"# Replication report: experiment `{claims['experiment']}`", "",
             "Generated by the `replication` rule (`infomax replication`, src/infomax/report.py) from the "
             "collected tables and `config/published.yaml`; do not edit by hand. The same content as data: "
             "`claims.json`; as one web page with the figures embedded: `REPLICATION.html`.", "",
             f"Intervals are {conf} Student-t intervals over seeds (paired across seeds when both sides ran the "
             f"same seeds). A verdict needs at least {claims['min_seeds']} runs per side; otherwise it is "
             "inconclusive. A direction claim (\"X beats Y\", margin 0) whose metric is an accuracy or an error has a "
             f"smallest effect of interest δ = {fmt(claims['negligible_fraction'])} × the error of the side it says is "
             "beaten (`report.negligible_fraction`, fixed in the config before the run): a difference whose whole "
             "interval lies inside ±δ is **negligible**, decided but not supported. A claim is contradicted if any "
             "of its voting comparisons is, supported if all are, negligible if all are negligible or supported. "
             "An open comparison projects how many seeds per side would decide it at its observed spread.", ""]
    ran = claims["studies"]
    if len(ran) < len(STUDY_TITLES):
        left = [STUDY_TITLES[s] for s in STUDY_TITLES if s not in ran]
        lines += ["This experiment runs " + " and ".join(STUDY_TITLES[s] for s in ran) + " only: the claims of "
                  + " and ".join(left) + " are not part of this report.", ""]
    facts = claims.get("facts", {})
    precision = {study: precision_text(facts.get(study, {})) for study in STUDY_TITLES if study in ran}   # in report order
    if any(precision.values()):
        lines += ["Training precision: " + "; ".join(
            f"{STUDY_TITLES[study]} {p}" for study, p in precision.items() if p) + ". Evaluation runs in float32.", ""]
    dev = claims["deviations"]
    if any(dev.values()):
        lines += ["**This experiment is not the published protocol**, so published numbers are shown for "
                  "orientation and cannot decide a verdict:", ""]
        for study, reasons in dev.items():
            if reasons:
                lines.append(f"- {STUDY_TITLES[study]}: " + "; ".join(reasons) + ".")
        lines.append("")
    if forest:
        lines += [f"![{forest['caption']}]({forest['path']})", "", f"*{forest['caption']}*", ""]
    lines += ["## Verdicts", "", "| claim | statement | verdict | why |", "|---|---|---|---|"]
    for c in claims["claims"]:
        lines.append(f"| {c['id']} | {c['statement']} | {VERDICT_MARK[c['verdict']]} | {c['reason']} |")
    lines.append("")
    for c in claims["claims"]:
        lines += [f"## {c['id']}: {c['statement']}", "", f"Verdict: {VERDICT_MARK[c['verdict']]} ({c['reason']}).", "",
                  f"Metric: {c['metric']}.", ""]
        for p in c["comparisons"]:
            vote = "" if p.get("votes", True) else " (additional: does not vote)"
            lines.append(f"- **{p['name']}**{vote}: {VERDICT_MARK[p['verdict']]}, {p['reason']}.")
            unit = p.get("unit", "")
            for s in p.get("sides", []):
                per_seed = ", ".join(f"{k}: {_show(v, unit)}" for k, v in s["values"].items())
                lines.append(f"  - {s['label']}: {_ci_text(s, unit)}" + (f"; runs {per_seed}" if per_seed else ""))
            if p.get("difference"):
                d = p["difference"]
                lines.append(f"  - difference, {_difference_label(p)}: {_ci_text(d, unit)}; "
                             f"claimed: {p['hypothesis']}")
                if p.get("delta_rule"):
                    lines.append(f"  - smallest effect of interest: {p['delta_rule']}")
                if p["verdict"] == INCONCLUSIVE:
                    h = p.get("detectable")
                    proj = (p.get("projection") or {}).get("text")
                    lines.append(f"  - how close it came: observed {_show(d['mean'], unit)} {unit}; the smallest "
                                 "difference this experiment could detect: "
                                 + (f"±{_show(h, unit)} {unit} (the interval's half-width)" if h is not None
                                    else "none (no interval: too few runs)") + (f"; {proj}" if proj else ""))
            if p.get("test"):
                lines.append(f"  - test: {p['test']}" + (f"; {p['note']}" if p.get("note") else ""))
        anchored = [a for a in claims["anchors"] if c["id"] in a["claims"]]
        if anchored:
            lines += ["", "Published anchors for this claim: " + ", ".join(f"`{a['id']}`" for a in anchored)
                      + " (table below).", ""]
        lines.append("")
    lines += ["## Published anchors", "",
              "Every number of `config/published.yaml`, next to ours (mean and interval over seeds). The ratio "
              "is ours / published, given when the data set matches; a number is comparable only when the "
              "experiment follows the published protocol.", "",
              "| anchor | what | published | ours | ratio | comparable | source |", "|---|---|---|---|---|---|---|"]
    for a in claims["anchors"]:
        comp = "yes" if a["comparable"] else "no: " + "; ".join(a["not_comparable_because"])
        lines.append(f"| `{a['id']}` | {a['what']} | {a['published']:g} {a['unit']} | "
                     f"{_ci_text(a['ours'], a['unit'])} | {fmt(a['ratio'])} | {comp} | {a['source']} |")
    lines += ["", "## What is reconstructed", "",
              "The sources do not fix these parts; this project did (docs/PROTOCOL.md):", ""]
    lines += [f"- {r}" for r in claims["reconstructed"]]
    lines += ["", "## Figures", ""]
    for f in figures:
        lines += [f"![{f['caption']}]({f['path']})", "",
                  f"*{f['caption']}* Made by rule `{f['rule']}` ({f['rule_file']}).", ""]
    return "\n".join(lines)


def read_caption(captions_dir, name) -> str:
    """The one-line caption of figure ``name`` (workflow/report/<name>.rst, shared with
    ``snakemake --report``)."""
    path = Path(captions_dir) / f"{name}.rst"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: caption of figure {name!r} not found (expected one line of text)")
    text = " ".join(path.read_text().split())
    if not text:
        raise ValueError(f"{path}: empty caption of figure {name!r}")
    return text


HTML_STYLE = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;line-height:1.45}
table{border-collapse:collapse;font-size:.9em}td,th{border:1px solid #ccc;padding:.25em .5em;vertical-align:top}
img{max-width:100%}code{background:#f3f3f3;padding:0 .2em}"""


def _web_png(path, width=1000) -> bytes:
    """The figure at most ``width`` pixels wide, 256 colours: about 50 kB instead of 100-750 kB.
    Browsers refuse data URLs over 2 MB, and `snakemake --report` shows an HTML result as one."""
    import io

    from PIL import Image

    with Image.open(path) as im:
        im = im.convert("RGB")
        if im.width > width:
            im = im.resize((width, round(im.height * width / im.width)), Image.LANCZOS)
        buf = io.BytesIO()
        im.quantize(colors=256).save(buf, "PNG", optimize=True)
    return buf.getvalue()


def render_html(markdown: str, figure_files: dict) -> str:
    """REPLICATION.md as one self-contained HTML page: the figures are embedded (data URIs), so
    the page works anywhere, also inside `snakemake --report`.  ``figure_files``: markdown image
    path -> file."""
    import base64
    import html as html_lib

    from markdown_it import MarkdownIt

    for rel, path in figure_files.items():
        data = base64.b64encode(_web_png(path)).decode()
        markdown = markdown.replace(f"]({rel})", f"](data:image/png;base64,{data})")
    body = MarkdownIt("commonmark").enable("table").render(markdown)
    title = html_lib.escape(markdown.splitlines()[0].lstrip("# "))
    return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title>"
            f"<style>{HTML_STYLE}</style></head><body>\n{body}</body></html>\n")


VERDICT_COLORS = {SUPPORTED: "#1a9641", CONTRADICTED: "#d7191c", NEGLIGIBLE: "#2b6cb0", INCONCLUSIVE: "0.55"}
DELTA_BAND = "#9ecae1"            # the +-delta band of a direction claim (light blue: negligible's colour)


FOREST_CLIP = 6.0                 # the forest plot's x range: +-this many half-widths from the margin


def forest_rows(claims: dict) -> list[dict]:
    """The voting comparisons that have a difference: one row each for the forest plot.

    Each row is also oriented so that larger favours the claim ("at most m" claims are mirrored:
    the difference and the margin change sign) and scaled by the interval's half-width (the
    detectable difference): ``z`` = (oriented difference - oriented margin) / half-width, so the
    interval is [z - 1, z + 1], the claim's margin is at 0 and the verdict reads off the picture
    (supported: the interval lies right of 0; contradicted: left of it).  ``zero`` is where no
    difference at all lies on that scale; ``band`` is delta on that scale (a direction claim's
    +-delta around its line at 0: the row is negligible when its interval lies inside it), None
    without a delta.  Rows without an interval have z = None."""
    rows = []
    for c in claims["claims"]:
        for p in c["comparisons"]:
            if p.get("votes", True) and p.get("difference") and p["difference"].get("mean") is not None:
                d = p["difference"]
                sign = -1.0 if p.get("direction", ABOVE) == BELOW else 1.0
                half = p.get("detectable")
                z = zero = band = None
                delta = p.get("delta")
                if half is not None and half > 0:
                    z = sign * (d["mean"] - p["margin"]) / half
                    zero = sign * (0.0 - p["margin"]) / half
                    band = delta / half if delta is not None else None
                rows.append({"label": f"{c['id']}: {p['name']}", "study": c.get("study", ""), "unit": p["unit"],
                             "mean": d["mean"], "ci": d["ci"], "margin": p["margin"],
                             "direction": p.get("direction", ABOVE), "verdict": p["verdict"],
                             "half": half, "z": z, "zero": zero, "n": d.get("n"), "delta": delta, "band": band})
    return rows


def _forest_text(r) -> str:
    """The row's numbers in its own unit: difference [interval] and the claim's condition."""
    unit = r["unit"]
    cond = ("> " if r["direction"] == ABOVE else "\u2264 ") + fmt(r["margin"])
    if r.get("delta") is not None:
        cond += f", \u03b4 = {r['delta']:.2g}"
    lo, hi = r["ci"]
    if r["z"] is None:
        return f"{r['mean']:+.2f} {unit}, no interval ({r['n']} run(s)); claim {cond}"
    return f"{r['mean']:+.2f} [{lo:+.2f}, {hi:+.2f}] {unit}; claim {cond}"


def forest_figure(claims: dict, stem) -> list[Path]:
    """The verdicts at a glance: one row per voting comparison, one panel per study.

    Every row is drawn on its own scale (``forest_rows``): x is the distance of the difference from
    the claim's margin in half-widths of its interval, oriented so that right favours the claim,
    "at most" claims included.  So the margin is the line at 0, every interval spans 2 units, a
    row is supported when its interval lies right of 0 and contradicted when left; a grey tick
    marks where no difference would lie.  The row's own numbers (difference, interval, unit, the
    claim's condition) stand beside it.  Rows beyond the range end in an arrow at its edge.  A
    direction claim's row has its +-delta band around the line (``band``): a negligible row's
    interval lies inside it."""
    import textwrap

    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    from .figures import plt, save_figure

    rows = forest_rows(claims)
    studies = list(dict.fromkeys(r["study"] for r in rows)) or [""]
    counts = [max(1, sum(r["study"] == s for r in rows)) for s in studies]
    labels = {r["label"]: "\n".join(textwrap.wrap(r["label"], 56)) for r in rows}
    longest = max((len(line) for text in labels.values() for line in text.splitlines()), default=10)
    lab = min(1.25, max(0.3, 0.0235 * longest))         # the label column, as wide as its longest line
    height = 0.36 * sum(counts) + 0.35 * len(studies) + 1.2
    fig, axes = plt.subplots(len(studies), 3, figsize=(3.2 * (lab + 1.85), height), squeeze=False,
                             constrained_layout=True, sharex="col",
                             gridspec_kw={"height_ratios": counts, "width_ratios": [lab, 1.0, 0.85]})
    clip = FOREST_CLIP
    for (lax, ax, tax), study in zip(axes, studies):
        mine = [r for r in rows if r["study"] == study]
        for i, r in enumerate(mine):
            color = VERDICT_COLORS[r["verdict"]]
            if r.get("band") is not None:
                b = min(r["band"], clip + 0.3)
                ax.fill_between([-b, b], i - 0.38, i + 0.38, color=DELTA_BAND, alpha=0.55, lw=0, zorder=0)
            if r["z"] is not None:
                z = r["z"]
                lo, hi = max(z - 1, -clip), min(z + 1, clip)
                if lo < hi:
                    ax.plot([lo, hi], [i, i], color=color, lw=2.4, solid_capstyle="butt")
                inside = -clip <= z <= clip          # beyond the range: an arrow at the edge, pointing on
                x, marker = (z, "o") if inside else (math.copysign(clip, z), ">" if z > 0 else "<")
                ax.plot([x], [i], marker, color=color, ms=6 if inside else 8, gid=f"row:{r['label']}")
                if -clip <= r["zero"] <= clip and r["margin"] != 0:
                    ax.plot([r["zero"]] * 2, [i - 0.3, i + 0.3], color="0.45", lw=1.2)
            lax.text(1.0, i, labels[r["label"]], va="center", ha="right", fontsize=7.5)
            tax.text(0.0, i, _forest_text(r), va="center", ha="left", fontsize=7.5, color=color)
        for a in (lax, ax, tax):
            a.set_ylim(len(mine) - 0.5, -0.5)
        for a in (lax, tax):
            a.set_xlim(0, 1)
            a.axis("off")
        ax.set_yticks([])
        ax.axvline(0, color="k", lw=1.2, zorder=0)
        for x in (-1, 1):
            ax.axvline(x, color="0.85", lw=0.8, ls=":", zorder=0)
        ax.set_xlim(-clip - 0.3, clip + 0.3)
        ax.grid(True, axis="x", alpha=0.25)
        ax.set_title(STUDY_TITLES.get(study, study), fontsize=9)
    axes[-1][1].set_xlabel("difference minus the claim's margin,\nin half-widths of its interval "
                           "(right favours the claim)", fontsize=8)
    handles = [Line2D([], [], color=c, lw=2.4, marker="o", label=v) for v, c in VERDICT_COLORS.items()]
    handles += [Line2D([], [], color="k", lw=1.2, label="the claim's margin"),
                Line2D([], [], color="0.45", lw=1.2, label="no difference")]
    if any(r.get("band") is not None for r in rows):
        fraction = claims.get("negligible_fraction")
        handles.append(Patch(color=DELTA_BAND, alpha=0.55, label=f"\u00b1\u03b4: too small to matter\n("
                             + (f"{fmt(fraction)} \u00d7 " if fraction is not None else "a fraction of ")
                             + "the beaten side's error)"))
    fig.legend(handles=handles, loc="outside lower center", ncols=min(3, len(handles)), fontsize=8, frameon=False)
    fig.suptitle(f"Verdicts of experiment `{claims['experiment']}`: each voting comparison against its margin, "
                 f"{claims['confidence']:.0%} intervals over seeds", fontsize=10)
    return save_figure(fig, stem)


def write_report(settings: dict, tables: dict, published, captions_dir, claims_out, markdown_out,
                 html_out=None, forest_out=None) -> dict:
    """Write claims.json and REPLICATION.md (and, given ``html_out``, the same as a self-contained
    HTML page; given ``forest_out``, the forest plot of the verdicts as PNG and PDF, shown at the
    top of the report); figure paths in the markdown are relative to it."""
    claims = build_claims(settings, tables, published)
    md_dir = Path(markdown_out).parent
    figures = []
    for f in settings.get("figures", []):
        path = Path(f["path"])
        if not path.is_file():
            raise FileNotFoundError(f"{path}: figure not found (made by rule {f['rule']}; rerun it)")
        rel = path.resolve().relative_to(md_dir.resolve()) if path.resolve().is_relative_to(md_dir.resolve()) else path
        figures.append({"name": f["name"], "rule": f["rule"], "rule_file": f["rule_file"], "path": rel.as_posix(),
                        "caption": read_caption(captions_dir, f["name"])})
    claims["figures"] = figures
    forest = None
    if forest_out is not None:
        forest_out = Path(forest_out)
        forest_figure(claims, forest_out.with_suffix(""))
        rel = (forest_out.resolve().relative_to(md_dir.resolve()) if forest_out.resolve().is_relative_to(md_dir.resolve())
               else forest_out)
        forest = {"path": rel.as_posix(), "caption": read_caption(captions_dir, "forest")}
    save_json(claims, claims_out)
    markdown = render_markdown(claims, figures, forest) + "\n"
    atomic_write(markdown_out, lambda fh: fh.write(markdown), mode="w")
    if html_out is not None:
        files = {f["path"]: p["path"] for f, p in zip(figures, settings.get("figures", []))}
        if forest:
            files[forest["path"]] = forest_out
        page = render_html(markdown, files)
        atomic_write(html_out, lambda fh: fh.write(page), mode="w")
    json.loads(Path(claims_out).read_text())   # strict JSON (no NaN): fail here, not in a reader
    return claims


def write_summary(out_path, plots_dir, tables: dict) -> Path:
    """``summary.json`` (DVC metrics) with one section per study run (``tables``: study -> {table:
    CSV path}), and the plot tables the studies write into ``plots_dir``."""
    return save_json({s.NAME: s.summarize(tables[s.NAME], plots_dir) for s in STUDIES if s.NAME in tables}, out_path)
