"""Screenshot of a report's first screen in headless Chromium (Debian's `chromium`, driven by Playwright).

    python bench/report_screenshot.py RUN_FOLDER/report.html docs/images/report.png

The README shows the demo report's first screen from this script. It needs Debian's `chromium`
(`/usr/bin/chromium`, or DLRADIOMICS_CHROMIUM) and Playwright for Python (a dev dependency);
Playwright's own browser download is not used. The report is one self-contained file, so the page
is opened from disk and needs no server or network.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from playwright.sync_api import sync_playwright

CHROMIUM = os.environ.get("DLRADIOMICS_CHROMIUM", "/usr/bin/chromium")
# A headless Chromium on a closed network: no sandbox (root in CI), no GPU, none of its background
# connections to Google's services (the machine notes' flags; tests/test_serve_browser.py uses the same).
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]


def screenshot_first_screen(report: Path, out: Path, *, width: int = 1280, height: int = 900) -> Path:
    """Open `report` in headless Chromium and save what the first screen shows.

    Args:
        report: a report.html.
        out: the PNG to write.
        width: viewport width in CSS pixels.
        height: viewport height in CSS pixels (the first screen).

    Returns:
        The path written.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.goto(report.resolve().as_uri())
            page.wait_for_load_state("load")
            page.screenshot(path=str(out), full_page=False)
        finally:
            browser.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path, help="report.html of a run")
    parser.add_argument("out", type=Path, help="PNG to write")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=900)
    args = parser.parse_args()
    print(screenshot_first_screen(args.report, args.out, width=args.width, height=args.height))


if __name__ == "__main__":
    main()
