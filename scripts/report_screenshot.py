"""Regenerate docs/report_screenshot.png: `longrnn report --html` on the committed warm-up runs
(results/warmup-small, 11 configurations) opened in headless Chromium at 1280 px, the whole page.

    .venv/bin/python scripts/report_screenshot.py [RUNS] [PNG]

Needs Chromium (Debian's package) and playwright (extra dev); `make setup` installs both.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from longrnn.reporting.report import report

ROOT = Path(__file__).parents[1]


def main(runs: str = str(ROOT / "results" / "warmup-small"), png: str = str(ROOT / "docs" / "report_screenshot.png")):
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-headless-shell")
    if chromium is None:
        sys.exit("no Chromium: apt-get install chromium")
    with tempfile.TemporaryDirectory() as out:
        report([runs], out=out, html=True)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto((Path(out) / "report.html").as_uri())
            page.wait_for_load_state("load")
            page.screenshot(path=png, full_page=True)
            browser.close()
    print(f"written: {png}")


if __name__ == "__main__":
    main(*sys.argv[1:])
