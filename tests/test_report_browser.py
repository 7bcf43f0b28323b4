"""Reports in a real browser: headless Chromium (Debian's `chromium`, driven through Playwright's CDP client)
loads a report of a real smoke run from file:// and from a local static server, and a report with planted
HTML/script in the model output. `.ci/run` and `make test` install Chromium; without it these tests fail
and say how to install it (they are never skipped)."""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import threading
from pathlib import Path

import pytest
from test_report import _plant
from test_report_support import PAYLOADS, quality_dir, smoke_dir, smoke_site  # noqa: F401

from dgbench.report.pages import write_report

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} not found: install it with `apt-get install -y chromium` (as root; `make test` and "
                    ".ci/run do this)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("playwright is not installed: pip install -e '.[test]'")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield b
        b.close()


def visit(browser, url: str, screenshot: Path | None = None) -> dict:
    """Load url; collect console errors, uncaught exceptions, every request and each image's naturalWidth."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors, requests = [], []
    page.on("console", lambda m: errors.append(m.text) if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: requests.append(r.url))
    page.goto(url, wait_until="load")
    images = page.evaluate("[...document.images].map(i => [i.getAttribute('src'), i.complete, i.naturalWidth])")
    out = {"errors": errors, "requests": requests, "images": images,
           "xss": page.evaluate("window.__xss === undefined ? null : window.__xss"),
           "scripts": page.evaluate("document.scripts.length"),
           "text": page.evaluate("document.body.innerText"),
           "h1": page.evaluate("document.querySelectorAll('h1').length")}
    if screenshot:
        page.screenshot(path=str(screenshot), full_page=True)
    page.close()
    return out


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_smoke_report_loads_in_chromium_from_file_and_from_a_static_server(browser, smoke_site, tmp_path):
    site = smoke_site
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    try:
        for url, allowed, shot in ((site.resolve().as_uri() + "/index.html", "file://", tmp_path / "report.png"),
                                   (base + "index.html", base, None)):
            seen = visit(browser, url, shot)
            assert seen["errors"] == [], seen["errors"]
            assert len(seen["images"]) >= 4
            assert all(complete and width > 0 for _, complete, width in seen["images"]), seen["images"]
            assert seen["requests"] and all(r.startswith(allowed) for r in seen["requests"]), seen["requests"]
            assert "At a glance" in seen["text"] and "Metric definitions" in seen["text"]
    finally:
        server.shutdown()
    assert (tmp_path / "report.png").read_bytes()[:4] == b"\x89PNG"
    keep = os.environ.get("DGBENCH_SCREENSHOT_DIR")
    if keep:  # for a person to look at: DGBENCH_SCREENSHOT_DIR=/tmp/shots pytest tests/test_report_browser.py
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(tmp_path / "report.png", Path(keep) / "smoke-report.png")


def test_planted_html_and_script_show_as_text_and_never_run(browser, quality_dir, tmp_path):
    write_report([_plant(quality_dir, tmp_path / "run")], tmp_path / "site")
    seen = visit(browser, (tmp_path / "site").resolve().as_uri() + "/index.html")
    assert seen["xss"] is None, "a planted script or onerror handler ran"
    assert seen["scripts"] == 0 and seen["h1"] == 1
    assert all(src.startswith("figures/") for src, _, _ in seen["images"]), seen["images"]
    for payload in PAYLOADS:
        assert payload in seen["text"]
    assert all(r.startswith("file://") for r in seen["requests"]), seen["requests"]
