"""The report served by `python -m reporting` and loaded in Debian's headless Chromium (through Playwright)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.stack import free_port
from tests.reporting.documents import seed_known_site

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


@pytest.fixture(scope="module")
def site_db(mongo_client):
    """The known site (tests/reporting/documents.py) in a database of this module's own."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    seed_known_site(mongo_client[name])
    try:
        yield mongo_client[name]
    finally:
        mongo_client.drop_database(name)


@pytest.fixture(scope="module")
def served(site_db, mongo_uri, tmp_path_factory) -> Iterator[str]:
    """The report served by `python -m reporting` on a free port, reading the known site: its URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path_factory.mktemp("report") / "report.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "reporting", "--port", str(port), "--mongo-uri", mongo_uri,
             "--database", site_db.name],
            cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )
    try:
        wait_healthy(url, proc, log)
        yield url
    finally:
        stop(proc)


@pytest.fixture(scope="module")
def browser():
    """Debian's headless Chromium, driven by Playwright, for the whole module."""
    executable = chromium()
    from playwright.sync_api import sync_playwright

    pw = sync_playwright().start()
    try:
        launched = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()
    finally:
        pw.stop()


@pytest.fixture
def page(browser):
    tab = browser.new_page(viewport={"width": 1600, "height": 1000})
    try:
        yield tab
    finally:
        tab.close()


def test_the_report_shows_the_kpis_in_a_real_browser(served, page):
    from playwright.sync_api import expect

    # Given the known site, served by `python -m reporting`
    # When the page is loaded
    page.goto(served, wait_until="domcontentloaded")
    # Then the KPI row shows the seeded figures, each with the window it covers
    metrics = page.get_by_test_id("stMetric")
    expect(metrics.filter(has_text="Active users").first).to_contain_text("42", timeout=60_000)
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
    assert (ARTIFACTS / "report.png").stat().st_size > 10_000


def test_sidebar_choices_survive_auto_refreshes_and_a_reload(served, page):
    from playwright.sync_api import expect

    # Given the page, with the time range set to 6 hours and auto-refresh to every 2 seconds
    page.goto(served, wait_until="domcontentloaded")
    sidebar = page.get_by_test_id("stSidebar")
    time_range = sidebar.get_by_role("combobox", name="Time range")
    expect(time_range).to_have_value("1 hour", timeout=60_000)
    time_range.click()
    page.get_by_role("option", name="6 hours").click()
    expect(time_range).to_have_value("6 hours")
    every = sidebar.get_by_test_id("stSlider").filter(has_text="Refresh every").get_by_role("slider")
    every.focus()
    every.press("Home")  # the slider's lowest value: 2 s
    expect(every).to_have_value("2")
    expect(page).to_have_url(f"{served}/?every=2&range=6h", timeout=30_000)
    # When the page refreshes itself twice (each rerun stamps a newer "Data as of", rounded to 2 s)
    stamp = page.get_by_text("All times are UTC. Data as of")
    for _ in range(2):
        before = stamp.inner_text()
        expect(stamp).not_to_have_text(before, timeout=30_000)
    # Then both choices are still there
    expect(time_range).to_have_value("6 hours")
    expect(every).to_have_value("2")
    # And after a reload (a new Streamlit session) too, with the charts covering the chosen range
    page.reload(wait_until="domcontentloaded")
    expect(time_range).to_have_value("6 hours", timeout=60_000)
    expect(every).to_have_value("2")
    expect(page.get_by_text("aggregates batches per minute, the last 6 h").first).to_be_visible()
