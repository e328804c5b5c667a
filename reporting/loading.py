"""One page render's data: every query the page makes, in one function that Streamlit caches and bench/ times."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pymongo.database import Database

from reporting import labels
from reporting.kpis import pick_latest_complete
from storage import contract as c
from storage import queries as q

Doc = dict[str, Any]

# Bounds on what one render may fetch.
NEWEST_WINDOWS = 8  # enough to step over the windows still open at `now` (5-min windows sliding 1 min: 5)
PAGE_LIMIT = 5000  # pages of one 15-min window; the page-views KPI says "≥" when it is hit
SERIES_LIMIT = 20_000  # 7 days of 1-min window starts is 10,080
BATCH_LIMIT = 5000
INVALID_LIMIT = 20_000
SAMPLE_LIMIT = 20
MIN_BATCH_SPAN = timedelta(minutes=15)  # the invalid-rate KPI needs 15 minutes of batches


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
    newest_batch: Doc | None = None
    batches: list[Doc] = field(default_factory=list)
    invalid_range: tuple[datetime, datetime] | None = None
    invalid_events: list[Doc] = field(default_factory=list)
    invalid_samples: list[Doc] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        """Nothing at all written yet: no window, no batch, no invalid event."""
        return self.newest_active is None and self.newest_batch is None and not self.invalid_samples


def _latest_keyed_window(db: Database, collection: str, now: datetime) -> Doc | None:
    return q.latest_window(db, collection, not_after=now) or q.latest_window(db, collection)


def _load_sessions(db: Database, data: PageData, request: PageRequest, now: datetime) -> None:
    """Fill the sessions histogram and top users from the active-users KPI's window, else from their own.

    The active-users window is used when user_sessions has it (same window spec: the two KPIs then describe the
    same minutes, and the "latest window" query is saved); otherwise user_sessions' own latest complete window.
    """
    if data.latest_active is not None:
        top = q.top_users(db, data.latest_active[c.WINDOW_START], request.top_users)
        if top and labels.as_utc(top[0][c.WINDOW_END]) <= now:
            data.sessions_window = {c.WINDOW_START: top[0][c.WINDOW_START], c.WINDOW_END: top[0][c.WINDOW_END]}
            data.top_users = top
            data.histogram = q.sessions_histogram(db, top[0][c.WINDOW_START])
            return
    data.sessions_window = _latest_keyed_window(db, c.USER_SESSIONS, now)
    if data.sessions_window:
        start = data.sessions_window[c.WINDOW_START]
        data.top_users = q.top_users(db, start, request.top_users)
        data.histogram = q.sessions_histogram(db, start)


def load_page_data(db: Database, request: PageRequest, now: datetime) -> PageData:
    """Run every query one render needs (about a dozen, each bounded) and return their results."""
    data = PageData(now=now, request=request)

    newest = q.newest_active_windows(db, NEWEST_WINDOWS)
    if newest:
        data.newest_active = newest[0]
        latest, previous = pick_latest_complete(newest, now)
        if latest is None:
            latest, previous = pick_latest_complete(q.complete_active_windows(db, now, 2), now)
        if latest is None:  # every window ends after now: use the newest (see kpis.LATEST_RULE)
            latest, previous = newest[0], (newest[1] if len(newest) > 1 else None)
        data.latest_active, data.previous_active = latest, previous
        # The line ends with the latest complete window and covers the chosen range of window starts before it.
        data.range_end = labels.as_utc(latest[c.WINDOW_END])
        last_start = labels.as_utc(latest[c.WINDOW_START])
        data.series = q.active_users_series(db, last_start - request.time_range, last_start, SERIES_LIMIT)

    data.pages_window = _latest_keyed_window(db, c.PAGE_VIEWS, now)
    if data.pages_window:
        data.pages = q.page_views_in_window(db, data.pages_window[c.WINDOW_START], PAGE_LIMIT)

    _load_sessions(db, data, request, now)

    data.newest_batch = q.newest_batch(db)
    if data.newest_batch:
        until = labels.as_utc(data.newest_batch[c.TIMESTAMP])
        span = max(request.time_range, MIN_BATCH_SPAN)
        data.batches = q.batches_between(db, until - span, until, BATCH_LIMIT)

    # Live data: the range ends now. Historical (replayed) data: it ends with the latest window, so it shows.
    end = now if data.range_end is None or now - data.range_end < request.time_range else data.range_end
    data.invalid_range = (end - request.time_range, end)
    data.invalid_events = q.invalid_events_between(db, end - request.time_range, end, INVALID_LIMIT)
    data.invalid_samples = q.latest_invalid_events(db, SAMPLE_LIMIT)
    return data
