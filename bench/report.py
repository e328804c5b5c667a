"""Benchmark: how long one render of the report takes against a week of windows for 10k users (prints JSON).

Starts its own Mongo-wire server (devstack: mongod when installed, else FerretDB v1 over PostgreSQL) on a free port
in a temporary folder, seeds it, then times the report's data-loading path (`reporting.loading.load_page_data`,
every query one render makes), the pure KPI/figure building, and whole AppTest runs of the page.

Seeded through the job's own bucket writes (streaming_job/documents.py), all windows sliding by 1 minute, the newest
ending around now:
- active_users: one 5-min window per minute for --days days (10,080 for 7 days), in one document per day;
- page_views: one 1-minute pane per minute for --days days, each with all --pages pages;
- user_sessions: the newest --session-panes 1-minute panes, each with that minute's active users drawn from --users
  users (1-3 sessions each);
- pipeline_metrics: one batch per query every 10 s for the last --metrics-hours hours, with pipeline_minutes;
- invalid_events: one per minute for --days days.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import random
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/report.py` puts bench/ first, not the repository
    sys.path.insert(0, str(ROOT))

from pymongo import monitoring  # noqa: E402
from pymongo.database import Database  # noqa: E402

from devstack.mongo import MongoServer  # noqa: E402
from devstack.stack import free_port  # noqa: E402
from storage import contract as c  # noqa: E402
from storage.client import connect  # noqa: E402
from storage.indexes import ensure_indexes  # noqa: E402
from tests.reporting.documents import active, insert, page, session  # noqa: E402

log = logging.getLogger("bench.report")
MIN = timedelta(minutes=1)
CHUNK = 10_000


class QueryTimer(monitoring.CommandListener):
    """Collects each command's server round trip, keyed by 'command collection'."""

    def __init__(self) -> None:
        self.pending: dict[int, str] = {}
        self.times: dict[str, list[float]] = defaultdict(list)

    def reset(self) -> None:
        self.times = defaultdict(list)

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        cmd = event.command
        target = cmd.get(event.command_name) if event.command_name != "getMore" else cmd.get("collection")
        self.pending[event.request_id] = f"{event.command_name} {target}"

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        key = self.pending.pop(event.request_id, None)
        if key and not key.startswith(("insert", "createIndexes", "ping", "hello", "isMaster", "endSessions")):
            self.times[key].append(event.duration_micros / 1e6)

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        self.pending.pop(event.request_id, None)


def _activity(ws: datetime, users: int) -> int:
    """Active users of a 5-min window: a daily wave between 5 % and 20 % of all users."""
    day = (ws.hour * 60 + ws.minute) / 1440
    return int(users * (0.125 + 0.075 * math.sin(2 * math.pi * (day - 0.25))))


def seed(db: Database, now: datetime, ns: argparse.Namespace) -> dict[str, int]:
    """Write the documents described in the module docstring; return how many per collection."""
    rng = random.Random(42)  # reproducible fake data
    ensure_indexes(db, retention=None)
    last = now.replace(second=0, microsecond=0) - MIN
    starts = [last - i * MIN for i in range(ns.days * 1440)][::-1]
    written = now - timedelta(seconds=3)
    counts: dict[str, int] = {}

    def chunked(collection: str, docs: list[dict[str, Any]]) -> None:
        for i in range(0, len(docs), CHUNK):
            insert(db, collection, docs[i:i + CHUNK])
        counts[collection] = counts.get(collection, 0) + len(docs)

    chunked(c.ACTIVE_USERS, [active(ws, _activity(ws, ns.users), written=min(ws + 5 * MIN, written)) for ws in starts])
    pages = [f"/page/{i}" for i in range(ns.pages)]
    chunked(c.PAGE_VIEWS, [page(ws, url, max(1, _activity(ws, ns.users) // (5 * (rank + 1))))
                           for ws in starts for rank, url in enumerate(pages)])
    for ws in starts[-ns.session_panes:]:
        chunked(c.USER_SESSIONS, [session(ws, f"u{u}", f"s{u}-{k}", rng.randint(1, 15))
                                  for u in rng.sample(range(ns.users), _activity(ws, ns.users))
                                  for k in range(rng.choice((1, 1, 1, 2, 2, 3)))])
    batches = []
    for i in range(ns.metrics_hours * 360):
        at = now - timedelta(seconds=10 * i)
        for query, extra in ((c.AGGREGATES_QUERY, c.VALID_ROWS), (c.INVALID_EVENTS_QUERY, c.INVALID_ROWS)):
            rows = rng.randint(800, 1200)
            batches.append({c.ID: c.metrics_id(query, "bench", i), c.QUERY: query, c.RUN_ID: "bench", c.BATCH_ID: i,
                            c.TIMESTAMP: at, c.INPUT_ROWS: rows, c.INPUT_ROWS_PER_SECOND: rows / 10,
                            c.PROCESSED_ROWS_PER_SECOND: rows / 2, c.BATCH_DURATION_MS: rng.randint(300, 900),
                            c.WATERMARK: at - 10 * MIN, c.STATE_ROWS: 50_000, c.DROPPED_BY_WATERMARK: 0,
                            c.DUPLICATES_DROPPED: 0, extra: rows // 100 if extra == c.INVALID_ROWS else rows})
    chunked(c.PIPELINE_METRICS, batches)
    chunked(c.INVALID_EVENTS, [
        {c.ID: c.invalid_event_id("clickstream", 0, i), c.REASON: c.INVALID_REASONS[i % len(c.INVALID_REASONS)],
         c.DETAIL: "bench", c.RAW: "{" * (i % 50), c.RAW_TRUNCATED: False, c.TOPIC: "clickstream", c.PARTITION: 0,
         c.OFFSET: i, c.KAFKA_TIMESTAMP: ws + timedelta(seconds=17), c.STORED_AT: ws + MIN,
         **c.time_buckets(ws + timedelta(seconds=17))}
        for i, ws in enumerate(starts)])
    return {k: v for k, v in counts.items()} | {f"{coll}_documents": db[coll].estimated_document_count()
                                                for coll in c.AGGREGATE_COLLECTIONS}


def _stats(values: list[float]) -> dict[str, float]:
    return {"median_s": round(statistics.median(values), 4), "min_s": round(min(values), 4),
            "max_s": round(max(values), 4), "runs": len(values)}


def time_loading(db: Database, timer: QueryTimer, now: datetime, time_range: timedelta, repeat: int) -> dict[str, Any]:
    """Time `load_page_data` (all queries of one render) `repeat` times, plus the page's pure building."""
    from reporting import charts, health, kpis
    from reporting.loading import PageRequest, load_page_data

    request = PageRequest(time_range, top_pages=10, top_users=10)
    runs, per_query = [], []
    data = None
    for _ in range(repeat):
        timer.reset()
        started = time.perf_counter()
        data = load_page_data(db, request, now)
        runs.append(time.perf_counter() - started)
        per_query.append({k: sum(v) for k, v in timer.times.items()})
    assert data is not None
    started = time.perf_counter()
    points = data.health.points
    newest = data.health.newest[c.TIMESTAMP] if data.health.newest else None
    kpis.active_users(data.latest_active, data.previous_active)
    kpis.page_views(data.pages)
    kpis.sessions_per_user(data.sessions)
    kpis.events_per_second(points, newest)
    kpis.invalid_rate(points, newest)
    health.batch_figures(data.health.newest_aggregates_batch, points)
    charts.active_users_line(data.series)
    charts.top_pages_bar(data.pages.pages if data.pages else [], 10)
    charts.sessions_histogram(data.sessions.histogram if data.sessions else [])
    charts.throughput_lines(points)
    charts.batch_duration_lines(points)
    size = charts.bucket_size(time_range)
    charts.invalid_by_reason(charts.invalid_counts(data.invalid_events, size), size)
    build = time.perf_counter() - started
    median_run = per_query[runs.index(statistics.median_low(runs))]
    return {
        "load": _stats(runs),
        "queries_per_render": sum(len(v) for v in timer.times.values()),
        "per_query_s": {k: round(v, 4) for k, v in sorted(median_run.items(), key=lambda kv: -kv[1])},
        "fetched": {"series_points": len(data.series), "pages": data.pages.distinct_pages if data.pages else 0,
                    "window_users": data.sessions.users if data.sessions else 0, "minute_points": len(points),
                    "invalid_events": len(data.invalid_events), "invalid_samples": len(data.invalid_samples)},
        "build_kpis_and_figures_s": round(build, 4),
    }


def time_apptest(uri: str, database: str, repeat: int) -> dict[str, Any]:
    """Whole renders of the page through AppTest, each with an empty data cache.

    The first run also pays for importing Streamlit, plotly and the page (once per server process); the later
    ones are what a browser refresh costs when the data has changed (`st.cache_data` cleared before each).
    """
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from reporting.page import APP_PATH

    os.environ["CLICKPULSE_MONGO_URI"], os.environ["CLICKPULSE_DATABASE"] = uri, database
    runs = []
    for _ in range(repeat + 1):
        st.cache_data.clear()
        started = time.perf_counter()
        at = AppTest.from_file(APP_PATH, default_timeout=900).run()
        runs.append(time.perf_counter() - started)
        if at.exception or (at.error and not at.metric):
            raise RuntimeError(f"the page failed: {[e.value for e in at.exception] or [e.value for e in at.error]}")
    return {"first_run_s": round(runs[0], 4), "cold_cache_runs": _stats(runs[1:])}


def main_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python bench/report.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--days", type=int, default=7, help="days of 1-minute windows (default %(default)s)")
    p.add_argument("--users", type=int, default=10_000, help="distinct users (default %(default)s)")
    p.add_argument("--pages", type=int, default=20, help="distinct pages (default %(default)s)")
    p.add_argument("--session-panes", type=int, default=60,
                   help="newest 1-minute panes that get user_sessions values (default %(default)s)")
    p.add_argument("--metrics-hours", type=int, default=24, help="hours of batch metrics (default %(default)s)")
    p.add_argument("--repeat", type=int, default=3, help="timed renders per measurement (default %(default)s)")
    p.add_argument("--no-apptest", action="store_true", help="skip the AppTest renders")
    return p


def run_cli(args: list[str] | None = None) -> int:
    ns = main_parser().parse_args(args)
    if min(ns.days, ns.users, ns.pages, ns.session_panes, ns.metrics_hours, ns.repeat) < 1:
        main_parser().error("every count must be at least 1")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("streamlit").setLevel(logging.ERROR)
    timer = QueryTimer()
    monitoring.register(timer)
    with tempfile.TemporaryDirectory(prefix="clickpulse-bench-") as tmp:
        server = MongoServer(Path(tmp) / "mongo", free_port(), free_port())
        server.start()
        client = connect(server.uri, "clickpulse-bench", timeout_ms=600_000)
        try:
            db = client["bench"]
            now = datetime.now(UTC)
            log.info("seeding %s (%s) ...", server.uri, server.flavour)
            started = time.perf_counter()
            counts = seed(db, now, ns)
            seeded_s = time.perf_counter() - started
            log.info("seeded %s in %.1f s; timing renders", counts, seeded_s)
            now = datetime.now(UTC)
            result: dict[str, Any] = {
                "server": server.flavour,
                "seeded": {**counts, "seconds": round(seeded_s, 1), "days": ns.days, "users": ns.users,
                           "pages": ns.pages, "session_panes": ns.session_panes, "metrics_hours": ns.metrics_hours},
                "render_1h_range": time_loading(db, timer, now, timedelta(hours=1), ns.repeat),
                "render_7d_range": time_loading(db, timer, now, timedelta(days=7), ns.repeat),
            }
            if not ns.no_apptest:
                result["apptest_1h_range"] = time_apptest(server.uri, "bench", ns.repeat)
            page_s = (result["apptest_1h_range"]["cold_cache_runs"]["median_s"] if "apptest_1h_range" in result
                      else result["render_1h_range"]["load"]["median_s"])
            result["under_1s"] = page_s < 1.0
        finally:
            client.close()
            server.stop()
            if server.postgres is not None:
                server.postgres.remove()
    sys.stdout.write(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli())
