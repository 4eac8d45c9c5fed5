"""The case viewer end to end in a real headless Chromium: `dlradiomics serve` in its own process, a user's
upload through the page, and the probability shown equal to `dlradiomics predict`'s.

Needs Debian's `chromium` (`.ci/run` installs it) and Playwright for Python, which drives that browser
(Playwright's own browser download is not used). Skips with the reason where either is missing.
Set CASE_VIEWER_SCREENSHOT=path.png to keep a screenshot of the answered page.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from PIL import Image

from dlradiomics.bundle import load_bundle
from dlradiomics.study.prediction import predict_manifest

from serve_fixtures import viewer_bundle, write_manifest  # noqa: F401  (fixture)

CHROMIUM = os.environ.get("DLRADIOMICS_CHROMIUM", "/usr/bin/chromium")
# What the machine notes ask of a headless Chromium on a closed network: no sandbox (root in CI), no GPU,
# and none of its background connections to Google's services.
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]
SERVER_START_SECONDS = 120

pytestmark = pytest.mark.slow


def _browser_or_skip():
    if not (Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)):
        pytest.skip(f"no Chromium at {CHROMIUM} (Debian package `chromium`; .ci/run installs it)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed")
    return sync_api.sync_playwright


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture()
def viewer_url(viewer_bundle, tmp_path):  # noqa: F811
    """`dlradiomics serve BUNDLE --port N` in its own process, as a user starts it."""
    port = _free_port()
    log = open(tmp_path / "serve.log", "w+", encoding="utf-8")
    server = subprocess.Popen(
        [sys.executable, "-c", "from dlradiomics.cli import app; app()", "serve", str(viewer_bundle.path),
         "--host", "127.0.0.1", "--port", str(port)], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_SECONDS
        while True:
            try:
                with urllib.request.urlopen(f"{url}/api/model", timeout=5):
                    break
            except (urllib.error.URLError, ConnectionError):
                if server.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    pytest.fail(f"dlradiomics serve did not start:\n{log.read()}")
                time.sleep(0.3)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def test_a_case_uploaded_in_the_browser_gets_the_predict_commands_probability(viewer_bundle, viewer_url, tmp_path):  # noqa: F811
    sync_playwright = _browser_or_skip()
    expected = predict_manifest(load_bundle(viewer_bundle.path),
                                write_manifest(tmp_path, viewer_bundle.image, viewer_bundle.mask), gradcam=False).iloc[0]

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            outside_requests = []
            page.on("request", lambda request: None if request.url.startswith((viewer_url, "data:"))
                    else outside_requests.append(request.url))
            page.goto(viewer_url)
            page.wait_for_selector("#predict-button:enabled")
            assert "US" in page.inner_text("#modality-inputs")

            # A bad upload first: the page says what is wrong and with which file.
            page.set_input_files("#US-image", {"name": "notes.txt", "mimeType": "text/plain", "buffer": b"not an image"})
            page.set_input_files("#US-mask", str(viewer_bundle.mask))
            page.click("#predict-button")
            page.wait_for_selector("#error:not([hidden])")
            assert "US image 'notes.txt': unknown image format .txt" in page.inner_text("#error")
            assert page.is_hidden("#result")

            page.set_input_files("#US-image", str(viewer_bundle.image))
            page.click("#predict-button")
            page.wait_for_selector("#result:not([hidden])", timeout=120_000)
            assert page.is_hidden("#error")

            shown = page.get_attribute("#probability", "data-probability")
            assert float(shown) == float(expected["probability"])
            assert page.inner_text("#probability") == f"{expected['probability']:.3f}"
            assert page.inner_text("#predicted-class") == ("malignant" if expected["predicted_class"] == 1 else "benign")
            assert page.locator("#parts tbody tr").count() == 1
            assert page.locator("#features .feature").count() >= 1
            assert page.locator("#previews img").count() == 1
            assert outside_requests == []  # the page fetched nothing but its own server

            screenshot = tmp_path / "case_viewer.png"
            page.screenshot(path=str(screenshot), full_page=True)
            with Image.open(screenshot) as picture:
                assert picture.width >= 1280
            if os.environ.get("CASE_VIEWER_SCREENSHOT"):
                shutil.copyfile(screenshot, os.environ["CASE_VIEWER_SCREENSHOT"])
        finally:
            browser.close()
