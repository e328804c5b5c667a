"""One page render's data: the reads the page makes (storage/reads.py), in one function Streamlit caches and bench/ times."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pymongo.database import Database

from reporting import bots, health
from storage import contract as c
from storage import reads
from storage.layout import Layout

Doc = dict[str, Any]

# Bounds on what one render may show.
PAGE_LIMIT = 5000  # pages listed in the raw table of one window (totals always cover every page)
POINT_HOURS = 6  # health charts cover at most this many hours before the newest batch
POINT_LIMIT = 2 * 60 * POINT_HOURS  # per-minute points of both queries
INVALID_LIMIT = 20_000
SAMPLE_LIMIT = 20
SAMPLE_RAW_CHARS = 300
MIN_BATCH_SPAN = timedelta(minutes=15)  # the invalid-rate KPI needs 15 minutes of batches
DEAD_LETTER_SPAN = timedelta(days=7)  # the job's default retention
BOT_LIMIT = 5000  # bot seconds read for the chart and the top bot users
DEAD_LETTER_LIMIT = 100


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
    layout: Layout | None = None
    newest_active: Doc | None = None  # the newest active-users window, with `updated_at`
    latest_active: Doc | None = None  # the latest complete one (reads.LATEST_RULE) and the one before it
    previous_active: Doc | None = None
    series: list[Doc] = field(default_factory=list)
    pages: reads.PageViews | None = None  # the page-views window ending with the latest active-users window
    sessions: reads.Sessions | None = None  # the same for user sessions
    health: reads.Health = field(default_factory=reads.Health)
    lag_history: list[Doc] = field(default_factory=list)  # the aggregates lag of the last minutes, when it is high
    invalid_range: tuple[datetime, datetime] | None = None
    invalid_events: list[Doc] = field(default_factory=list)
    invalid_samples: list[Doc] = field(default_factory=list)
    spark_ui: reads.SparkUi | None = None
    bot_range: tuple[datetime, datetime] | None = None  # the event times of the bot seconds read (as invalid events')
    bot_seconds: list[Doc] = field(default_factory=list)  # newest first, at most BOT_LIMIT
    without_bots: bots.WithoutBots | None = None  # the user-sessions window's figures without its bot users
    dead_letters: list[Doc] = field(default_factory=list)  # of the DEAD_LETTER_SPAN before now, newest first

    @property
    def empty(self) -> bool:
        """Nothing at all written yet: no window, no batch, no invalid event."""
        return self.newest_active is None and self.health.newest is None and not self.invalid_samples

    @property
    def range_end(self) -> datetime | None:
        """Where the charts' range ends: the latest complete active-users window's end."""
        return reads.utc(self.latest_active[c.WINDOW_END]) if self.latest_active else None


def _excerpt(event: Doc) -> Doc:
    raw = event.get(c.RAW) or ""
    return {**event, c.RAW: raw[:SAMPLE_RAW_CHARS] + "…"} if len(raw) > SAMPLE_RAW_CHARS else event


def _without_bots(db: Database, lay: Layout, sessions: reads.Sessions, end: datetime) -> bots.WithoutBots:
    """The user-sessions window's figures without its bot users (its users are read again only when it has some)."""
    found = reads.bot_users(db, sessions.window)
    if not found:
        users = sum(n for _, n in sessions.histogram)
        per_user = sum(k * n for k, n in sessions.histogram) / users if users else None
        return bots.WithoutBots(sessions.window, sessions.users, 0, per_user)
    window, users_of_window = reads.window_users(db, lay, end)
    return bots.without_bots(window, users_of_window, found)


def load_page_data(db: Database, request: PageRequest, now: datetime) -> PageData:
    """Read everything one render shows (equality lookups only, a few dozen)."""
    data = PageData(now=now, request=request, layout=reads.layout(db))
    recent = reads.recent_active_windows(db, now)
    data.newest_active = recent[0] if recent else None
    data.latest_active, data.previous_active = reads.latest_complete(recent, now)
    if data.latest_active is not None:
        # The line ends with the latest complete window and covers the chosen range of window starts before it;
        # the page and session figures describe the windows ending with it.
        last = reads.utc(data.latest_active[c.WINDOW_START])
        data.series = reads.active_users_series(db, last - request.time_range, last, known=recent)
        if data.layout is not None:
            data.pages = reads.page_views(db, data.layout, data.range_end, PAGE_LIMIT)
            data.sessions = reads.sessions(db, data.layout, data.range_end, request.top_users)
    data.health = reads.health(db, now, max(request.time_range, MIN_BATCH_SPAN), POINT_LIMIT)
    data.lag_history = reads.batch_lags(db, health.lag_history_points(data.health.newest_aggregates_batch,
                                                                      data.health.points))
    # Live data: the invalid events' range ends now. Historical (replayed) data: with the latest window, so it shows.
    end = now if data.range_end is None or now - data.range_end < request.time_range else data.range_end
    data.invalid_range = (end - request.time_range, end)
    data.invalid_events = reads.invalid_events(db, end - request.time_range, end, INVALID_LIMIT)
    data.invalid_samples = [_excerpt(e) for e in data.invalid_events[:SAMPLE_LIMIT]]
    data.bot_range = data.invalid_range
    data.bot_seconds = reads.bot_activity(db, end - request.time_range, end, BOT_LIMIT)
    if data.sessions is not None and data.layout is not None and data.range_end is not None:
        data.without_bots = _without_bots(db, data.layout, data.sessions, data.range_end)
    data.spark_ui = reads.spark_ui(db)
    data.dead_letters = reads.dead_letters(db, now - DEAD_LETTER_SPAN, now, DEAD_LETTER_LIMIT)
    return data
