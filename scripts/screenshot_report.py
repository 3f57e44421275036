"""Open a `snakemake --report` page in headless Chromium, show every result, and screenshot each.

    python scripts/screenshot_report.py results/quick/report.html [--out results/quick/report_screenshots]

It clicks through the report as a reader would: each category in the sidebar, then the eye icon of
each file, waits for the preview, checks that the figure actually rendered (an <img> with its
natural size, not a broken image), and saves one PNG per file plus the start page.  It fails,
naming the file, if a figure does not render.  Look at the screenshots: this is a visual check.

Needs `pip install playwright` and a Chromium (`apt install chromium`, or `playwright install
chromium`); neither is a dependency of the project, so CI does not run it (the smoke workflow test
checks the HTML's content instead).
"""

import argparse
import shutil
import sys
from pathlib import Path


def find_chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None   # let playwright use its own download, if installed


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("report", help="the HTML file written by `snakemake --report`")
    ap.add_argument("--out", help="folder for the screenshots (default: <report folder>/report_screenshots)")
    ap.add_argument("--categories", nargs="+",
                    help="the sidebar's categories (default: each study's TITLE, then 'Replication report')")
    a = ap.parse_args(argv)
    if not a.categories:        # the rules' categories: each study's figures under its title (figure_outputs)
        from infomax.studies import STUDIES
        a.categories = [s.TITLE for s in STUDIES] + ["Replication report"]
    report = Path(a.report).resolve()
    if not report.is_file():
        sys.exit(f"{report}: not found (write it with `snakemake --report {a.report}`)")
    out = Path(a.out) if a.out else report.parent / "report_screenshots"
    out.mkdir(parents=True, exist_ok=True)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sys.exit("needs playwright: pip install playwright (and a Chromium: apt install chromium)")

    problems, shots = [], []
    with sync_playwright() as p:
        exe = find_chromium()
        browser = p.chromium.launch(executable_path=exe, args=["--no-sandbox"]) if exe else p.chromium.launch()
        page = browser.new_page(viewport={"width": 1600, "height": 1100})
        page.goto(report.as_uri())
        page.wait_for_timeout(1500)
        page.screenshot(path=out / "00_start.png")
        shots.append(out / "00_start.png")
        for category in a.categories:
            page.goto(report.as_uri())
            page.wait_for_timeout(1000)
            page.get_by_role("link", name=category, exact=True).click()
            page.wait_for_timeout(800)
            rows = page.locator("tr", has=page.locator("a[iconname=eye]"))
            names = [rows.nth(i).locator("td").first.inner_text().strip() for i in range(rows.count())]
            if not names:
                problems.append(f"category {category!r}: no files")
            for name in names:
                page.locator("tr", has_text=name).locator("a[iconname=eye]").click()
                page.wait_for_timeout(1500)
                if name.endswith(".png"):
                    sizes = page.eval_on_selector_all(
                        "img", "els => els.map(e => [e.naturalWidth, e.naturalHeight])")
                    if not any(w > 200 and h > 200 for w, h in sizes):
                        problems.append(f"{name}: no rendered figure in the preview (images: {sizes})")
                shot = out / f"{len(shots):02d}_{Path(name).name}.png"
                page.screenshot(path=shot)
                shots.append(shot)
                page.keyboard.press("Escape")
        browser.close()
    print("\n".join(f"wrote {s}" for s in shots))
    if problems:
        sys.exit("report problems:\n  " + "\n  ".join(problems))
    return 0


if __name__ == "__main__":
    sys.exit(main())
