"""The report served by `python -m reporting` and loaded in Debian's headless Chromium (through Playwright)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from devstack.stack import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts"  # gitignored
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update"]


def chromium() -> str:
    """Debian's Chromium; a clear failure when it is missing (skipped only with CLICKPULSE_SKIP_BROWSER=1)."""
    if os.environ.get("CLICKPULSE_SKIP_BROWSER") == "1":
        pytest.skip("CLICKPULSE_SKIP_BROWSER=1")
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.fail(f"no Chromium at {CHROMIUM}: run `make browser` (apt-get install chromium) "
                    "or set CLICKPULSE_SKIP_BROWSER=1 to skip this test")
    return CHROMIUM if Path(CHROMIUM).exists() else str(shutil.which("chromium"))


def wait_healthy(url: str, proc: subprocess.Popen, log: Path, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the report exited with {proc.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:  # noqa: S310 - loopback URL
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.25)
    pytest.fail(f"the report did not answer on {url} within {timeout:.0f}s:\n{log.read_text(errors='replace')[-3000:]}")


def stop(proc: subprocess.Popen) -> None:
    """Stop the report's whole process group: TERM, then KILL."""
    if proc.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
        os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def test_the_report_shows_the_kpis_in_a_real_browser(known_db, mongo_uri, tmp_path):
    # Given the known site, and the report served by `python -m reporting` on a free port
    executable = chromium()
    from playwright.sync_api import expect, sync_playwright

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "report.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "reporting", "--port", str(port), "--mongo-uri", mongo_uri,
             "--database", known_db.name],
            cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )
    try:
        wait_healthy(url, proc, log)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1600, "height": 1000})
                # When the page is loaded
                page.goto(url, wait_until="domcontentloaded")
                # Then the KPI row shows the seeded figures, each with the window it covers
                metrics = page.get_by_test_id("stMetric")
                expect(metrics.filter(has_text="Active users")).to_contain_text("42", timeout=60_000)
                expect(metrics.filter(has_text="Page views")).to_contain_text("56")
                expect(metrics.filter(has_text="Sessions per active user")).to_contain_text("1.60")
                expect(metrics.filter(has_text="Events/s ingested")).to_contain_text("100.0")
                expect(metrics.filter(has_text="Invalid-event rate")).to_contain_text("2.0%")
                expect(page.get_by_text("5-min window 2026-01-15 10:10–10:15 UTC").first).to_be_visible()
                # and the charts and tables are drawn (waited for before the screenshot)
                expect(page.locator(".js-plotly-plot")).to_have_count(6, timeout=60_000)
                grids = page.locator("table[role=grid]")  # the accessible twin of each canvas-drawn table
                expect(grids.filter(has_text="u4")).to_contain_text("20")  # top user by events
                expect(grids.filter(has_text="missing_field")).to_contain_text("missing: page_url")
                # Streamlit scrolls inside its own container, so a tall viewport is what shows the whole page
                page.set_viewport_size({"width": 1600, "height": 3400})
                expect(page.locator(".js-plotly-plot")).to_have_count(6)
                expect(grids).to_have_count(2)
                ARTIFACTS.mkdir(exist_ok=True)
                page.screenshot(path=str(ARTIFACTS / "report.png"))
            finally:
                browser.close()
    finally:
        stop(proc)
    assert (ARTIFACTS / "report.png").stat().st_size > 10_000
