"""One page render's data: every query the page makes, in one function that Streamlit caches and bench/ times."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pymongo.database import Database

from reporting import labels
from reporting.kpis import pick_latest_complete
from storage import contract as c
from storage import queries as q
from storage.catalog import catalog_windows
from storage.rollup import minute_point

Doc = dict[str, Any]

# Bounds on what one render may fetch.
PAGE_LIMIT = 5000  # pages of one 15-min window; the page-views KPI says "≥" when it is hit
POINT_HOURS = 6  # health charts cover at most this many hours before the newest batch
POINT_LIMIT = 2 * 60 * POINT_HOURS  # per-minute points of both queries
INVALID_LIMIT = 20_000
SAMPLE_LIMIT = 20
SAMPLE_RAW_CHARS = 300
MIN_BATCH_SPAN = timedelta(minutes=15)  # the invalid-rate KPI needs 15 minutes of batches
HOURLY_UP_TO = timedelta(days=2)  # invalid events of longer ranges are read a day bucket at a time

@dataclass(frozen=True)
class PageRequest:
    """What the sidebar asks for."""

    time_range: timedelta
    top_pages: int
    top_users: int

    def __post_init__(self) -> None:
        if self.time_range <= timedelta(0):
            raise ValueError("time range must be positive")
        if not (1 <= self.top_pages <= 100 and 1 <= self.top_users <= 100):
            raise ValueError("top-N must be 1..100")


@dataclass
class PageData:
    """Everything one render draws (small, picklable: Streamlit caches it)."""

    now: datetime
    request: PageRequest
    newest_active: Doc | None = None
    latest_active: Doc | None = None
    previous_active: Doc | None = None
    range_end: datetime | None = None
    series: list[Doc] = field(default_factory=list)
    pages_window: Doc | None = None
    pages: list[Doc] = field(default_factory=list)
    sessions_window: Doc | None = None
    histogram: list[tuple[int, int]] = field(default_factory=list)
    top_users: list[Doc] = field(default_factory=list)
    newest_batch: Doc | None = None  # the newest minute point of either query (its last batch's time)
    newest_aggregates_batch: Doc | None = None  # the aggregates query's newest batch, whole
    batches: list[Doc] = field(default_factory=list)  # per-minute points (storage.rollup.minute_point), newest first
    invalid_range: tuple[datetime, datetime] | None = None
    invalid_events: list[Doc] = field(default_factory=list)
    invalid_samples: list[Doc] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        """Nothing at all written yet: no window, no batch, no invalid event."""
        return self.newest_active is None and self.newest_batch is None and not self.invalid_samples


def _recent_windows(db: Database, collection: str, now: datetime, value_field: str | None = None) -> list[Doc]:
    """Windows of today's and yesterday's catalog (UTC), newest first; of the newest stored days when both are empty."""
    docs = q.catalog_days(db, collection, [c.day_bucket(now - timedelta(days=1)), c.day_bucket(now)])
    return catalog_windows(docs or q.newest_catalog_days(db, collection, 2), value_field)


def _latest(windows: list[Doc], now: datetime) -> tuple[Doc | None, Doc | None]:
    """The latest complete window and the one before it; the newest two when none has ended (kpis.LATEST_RULE)."""
    latest, previous = pick_latest_complete(windows, now)
    if latest is None and windows:
        latest, previous = windows[0], (windows[1] if len(windows) > 1 else None)
    return latest, previous


def _bounds(w: Doc) -> Doc:
    return {c.WINDOW_START: w[c.WINDOW_START], c.WINDOW_END: w[c.WINDOW_END]}


def _load_active(db: Database, data: PageData, request: PageRequest, now: datetime) -> None:
    """The active-users KPI windows and the line: the catalog of active_users is the series itself."""
    recent = _recent_windows(db, c.ACTIVE_USERS, now, c.ACTIVE_USERS_COUNT)
    if not recent:
        return
    data.newest_active = recent[0]
    data.latest_active, data.previous_active = _latest(recent, now)
    latest = data.latest_active
    # The line ends with the latest complete window and covers the chosen range of window starts before it.
    data.range_end = labels.as_utc(latest[c.WINDOW_END])
    last_start = labels.as_utc(latest[c.WINDOW_START])
    first_start = last_start - request.time_range
    loaded = {c.day_bucket(w[c.WINDOW_START]) for w in recent}
    missing = [d for d in c.buckets_between(c.DAY, first_start, last_start) if d not in loaded]
    windows = recent + catalog_windows(q.catalog_days(db, c.ACTIVE_USERS, missing), c.ACTIVE_USERS_COUNT)
    data.series = sorted((w for w in windows if first_start < w[c.WINDOW_START] <= last_start),
                         key=lambda w: w[c.WINDOW_START])


def _load_pages(db: Database, data: PageData, now: datetime) -> None:
    latest, _ = _latest(_recent_windows(db, c.PAGE_VIEWS, now), now)
    if latest is not None:
        data.pages_window = _bounds(latest)
        data.pages = q.page_views_in_window(db, latest[c.WINDOW_START], PAGE_LIMIT)


def _rank(user: Doc) -> tuple[int, int, str]:
    """Top users order: most events, then most sessions, then user id (stable across renders)."""
    return -int(user[c.EVENTS]), -int(user[c.SESSIONS]), str(user[c.USER_ID])


def _load_sessions(db: Database, data: PageData, request: PageRequest, now: datetime) -> None:
    """Fill the sessions histogram and top users from the active-users KPI's window, else from their own.

    The active-users window is used when user_sessions has it and it has ended (same window spec: the two KPIs
    then describe the same minutes); otherwise user_sessions' own latest complete window.
    """
    windows = _recent_windows(db, c.USER_SESSIONS, now)
    same = [w for w in windows if data.latest_active is not None
            and w[c.WINDOW_START] == labels.as_utc(data.latest_active[c.WINDOW_START]) and w[c.WINDOW_END] <= now]
    chosen = same[0] if same else _latest(windows, now)[0]
    if chosen is not None:
        data.sessions_window = _bounds(chosen)
        users = q.window_users(db, chosen[c.WINDOW_START])
        data.histogram = sorted(Counter(int(u[c.SESSIONS]) for u in users).items())
        data.top_users = sorted(users, key=_rank)[:request.top_users]


def _load_batches(db: Database, data: PageData, request: PageRequest, now: datetime) -> None:
    """Per-minute points of both queries' batches over the range before the newest, an hour bucket at a time."""
    read: dict[str, list[Doc]] = {}
    for hour in (c.hour_bucket(now), c.hour_bucket(now - timedelta(hours=1))):
        read[hour] = [minute_point(d) for d in q.minutes_in(db, hour)]
        if read[hour]:
            break
    else:  # the job has not written for an hour or more: find its newest minute the slow way
        newest = q.newest_minute(db)
        if newest is None:
            return
        hour = c.hour_bucket(newest[c.MINUTE])
        read[hour] = [minute_point(d) for d in q.minutes_in(db, hour)]
    data.newest_batch = max((p for docs in read.values() for p in docs), key=lambda p: labels.as_utc(p[c.TIMESTAMP]))
    until = labels.as_utc(data.newest_batch[c.TIMESTAMP])
    after = until - max(request.time_range, MIN_BATCH_SPAN)
    points: list[Doc] = []
    for hour in c.buckets_between(c.HOUR, after, until):
        docs = read[hour] if hour in read else [minute_point(d) for d in q.minutes_in(db, hour)]
        points += [p for p in docs if after < labels.as_utc(p[c.TIMESTAMP]) <= until]
        if len(points) >= POINT_LIMIT:
            break
    data.batches = sorted(points, key=lambda p: labels.as_utc(p[c.TIMESTAMP]), reverse=True)[:POINT_LIMIT]
    newest_agg = next((p for p in data.batches if p[c.QUERY] == c.AGGREGATES_QUERY), None)
    if newest_agg is not None:
        data.newest_aggregates_batch = q.batch(db, c.metrics_id(c.AGGREGATES_QUERY, newest_agg[c.RUN_ID],
                                                                newest_agg[c.BATCH_ID]))


def _load_invalid(db: Database, data: PageData, request: PageRequest, now: datetime) -> None:
    """Invalid events of the range, a time bucket at a time (newest first); the newest few are the samples."""
    # Live data: the range ends now. Historical (replayed) data: it ends with the latest window, so it shows.
    end = now if data.range_end is None or now - data.range_end < request.time_range else data.range_end
    after = end - request.time_range
    data.invalid_range = (after, end)
    field = c.HOUR if request.time_range <= HOURLY_UP_TO else c.DAY
    events: list[Doc] = []
    for bucket in c.buckets_between(field, after, end):
        events += [e for e in q.invalid_events_in(db, field, bucket)
                   if after < labels.as_utc(e[c.KAFKA_TIMESTAMP]) <= end]
        if len(events) >= INVALID_LIMIT:
            break
    data.invalid_events = sorted(events, key=lambda e: labels.as_utc(e[c.KAFKA_TIMESTAMP]), reverse=True)[:INVALID_LIMIT]
    data.invalid_samples = [_excerpt(e) for e in data.invalid_events[:SAMPLE_LIMIT]]


def _excerpt(event: Doc) -> Doc:
    raw = event.get(c.RAW) or ""
    return {**event, c.RAW: raw[:SAMPLE_RAW_CHARS] + "…"} if len(raw) > SAMPLE_RAW_CHARS else event


def load_page_data(db: Database, request: PageRequest, now: datetime) -> PageData:
    """Run every query one render needs (equality lookups only, about a dozen) and return their results."""
    data = PageData(now=now, request=request)
    _load_active(db, data, request, now)
    _load_pages(db, data, now)
    _load_sessions(db, data, request, now)
    _load_batches(db, data, request, now)
    _load_invalid(db, data, request, now)
    return data
