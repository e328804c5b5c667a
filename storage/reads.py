"""The read API: what the report (and alerts, tests, benchmarks) ask of stored data, in the terms they show.

Callers ask for the active-users series, the latest complete window, the top pages or the users of a window, the
health minutes or the invalid events of a range, and get plain dicts keyed by contract field names (aware UTC
datetimes) without knowing how documents are shaped: buckets by day, panes sharded by hash (storage/contract.py).

Every filter is an equality: on an `_id`, a pane start or a time bucket. MongoDB serves those from the indexes of
`storage.indexes.INDEXES`; FerretDB v1 pushes equalities (and only those) down to PostgreSQL and decodes the whole
collection for anything else (a range or a sort took seconds on a week of data). Sums, unions and ranking happen
here, over the few documents read.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import DESCENDING
from pymongo.database import Database

from storage import contract as c
from storage.journal import pane_values
from storage.layout import Layout, Windows, public_url, read_layout
from storage.rollup import minute_point

Doc = dict[str, Any]

LATEST_RULE = (
    "The latest complete window is the newest one whose end is at or before now (UTC); when every stored "
    "window ends after now (clock skew, future-stamped events), the newest stored window is used instead. "
    "Replayed, historical data therefore shows its own newest window."
)

_BATCH_FIELDS = {
    c.ID: 0, c.QUERY: 1, c.BATCH_ID: 1, c.TIMESTAMP: 1, c.INPUT_ROWS: 1, c.INPUT_ROWS_PER_SECOND: 1,
    c.PROCESSED_ROWS_PER_SECOND: 1, c.BATCH_DURATION_MS: 1, c.WATERMARK: 1, c.STATE_ROWS: 1,
    c.DROPPED_BY_WATERMARK: 1, c.DUPLICATES_DROPPED: 1, c.VALID_ROWS: 1, c.INVALID_ROWS: 1,
    c.OFFSETS_BEHIND_LATEST: 1, c.AVG_OFFSETS_BEHIND_LATEST: 1, c.MAX_OFFSETS_BEHIND_LATEST: 1,
}
HOURLY_UP_TO = timedelta(days=2)  # events of longer ranges are read a day bucket at a time
_INVALID_FIELDS = {c.ID: 0, c.REASON: 1, c.DETAIL: 1, c.RAW: 1, c.RAW_TRUNCATED: 1, c.TOPIC: 1, c.PARTITION: 1,
                   c.OFFSET: 1, c.KAFKA_TIMESTAMP: 1}


def utc(ts: datetime) -> datetime:
    """An aware UTC instant (pymongo returns naive UTC datetimes unless the client is tz-aware)."""
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def layout(db: Database) -> Layout | None:
    """The windows the job computes (None before a job ran against this database)."""
    return read_layout(db)


# --- active users --------------------------------------------------------------------------------------------------


def active_windows(docs: Iterable[Doc]) -> list[Doc]:
    """The windows held in active_users day documents, newest first: {window_start, window_end, active_users,
    updated_at} (`updated_at`: the day document's last write, as close as storage gets to the window's)."""
    out = []
    for doc in docs:
        size = timedelta(seconds=int(doc[c.WINDOW_SECONDS]))
        for key, users in (doc.get(c.ACTIVE_USERS_COUNT) or {}).items():
            start = c.window_start_of(doc[c.DAY], key)
            out.append({c.WINDOW_START: start, c.WINDOW_END: start + size, c.ACTIVE_USERS_COUNT: int(users),
                        c.UPDATED_AT: doc.get(c.UPDATED_AT)})
    return sorted(out, key=lambda w: w[c.WINDOW_START], reverse=True)


def _active_days(db: Database, days: Iterable[str]) -> list[Doc]:
    found = (db[c.ACTIVE_USERS].find_one({c.ID: day}) for day in sorted(set(days)))
    return [d for d in found if d is not None]


def recent_active_windows(db: Database, now: datetime) -> list[Doc]:
    """Active-users windows of today and yesterday (UTC), newest first; of the newest two stored days when both are
    empty, so a job stopped days ago, or replayed data of last month, is still found (one small document per day)."""
    docs = _active_days(db, [c.day_bucket(now - timedelta(days=1)), c.day_bucket(now)])
    if not docs:
        docs = list(db[c.ACTIVE_USERS].find({}).sort(c.DAY, DESCENDING).limit(2))
    return active_windows(docs)


def active_users_series(db: Database, first_start: datetime, last_start: datetime,
                        known: Iterable[Doc] = ()) -> list[Doc]:
    """Active-users windows starting in `(first_start, last_start]`, oldest first. Days already read (`known`
    windows, e.g. from `recent_active_windows`) are not read again."""
    known = list(known)
    loaded = {c.day_bucket(w[c.WINDOW_START]) for w in known}
    missing = [d for d in c.buckets_between(c.DAY, first_start, last_start) if d not in loaded]
    windows = known + active_windows(_active_days(db, missing))
    return sorted((w for w in windows if first_start < w[c.WINDOW_START] <= last_start), key=lambda w: w[c.WINDOW_START])


def latest_complete(windows: list[Doc], now: datetime) -> tuple[Doc | None, Doc | None]:
    """From windows sorted newest first: the latest complete one and the one stored just before it (LATEST_RULE)."""
    for i, w in enumerate(windows):
        if utc(w[c.WINDOW_END]) <= now:
            return w, (windows[i + 1] if i + 1 < len(windows) else None)
    if windows:
        return windows[0], (windows[1] if len(windows) > 1 else None)
    return None, None


def newest_aggregate(db: Database, now: datetime) -> Doc | None:
    """The newest stored active-users window (every valid event is in one), with `updated_at`; None when none."""
    windows = recent_active_windows(db, now)
    return windows[0] if windows else None


# --- panes: page views and user sessions ---------------------------------------------------------------------------


def _window(windows: Windows, end: datetime) -> Doc:
    start, stop = windows.ending_by(utc(end))
    return {c.WINDOW_START: start, c.WINDOW_END: stop}


def _pane_values(db: Database, collection: str, values_field: str, windows: Windows, start: datetime) -> Counter:
    """The values of every pane of the window starting at `start`, summed by key (equality reads per pane: its shards,
    and its journal where it has one)."""
    total: Counter = Counter()
    for pane in windows.panes(start):
        total.update(pane_values(db, collection, values_field, pane))
    return total


@dataclass(frozen=True)
class PageViews:
    """The page views of one window: its bounds, its pages (most viewed first), and totals over all of them."""

    window: Doc
    pages: list[Doc] = field(default_factory=list)  # [{page_url, views}], at most the limit asked for
    total_views: int = 0
    distinct_pages: int = 0


def page_views(db: Database, lay: Layout, end: datetime, limit: int) -> PageViews:
    """Views per page in the page-views window ending at (or last before) `end`, most viewed first, then by URL."""
    window = _window(lay.page_views, end)
    views = _pane_values(db, c.PAGE_VIEWS, c.VIEWS, lay.page_views, window[c.WINDOW_START])
    ranked = sorted(((c.unescape_key(k), n) for k, n in views.items()), key=lambda p: (-p[1], p[0]))
    return PageViews(window, [{c.PAGE_URL: url, c.VIEWS: n} for url, n in ranked[:limit]], sum(views.values()),
                     len(ranked))


@dataclass(frozen=True)
class Sessions:
    """The users of one user-sessions window: sessions-per-user histogram and the top users."""

    window: Doc
    histogram: list[tuple[int, int]] = field(default_factory=list)  # (sessions, users), by sessions
    top_users: list[Doc] = field(default_factory=list)  # [{user_id, events, sessions}]
    users: int = 0


def window_users(db: Database, lay: Layout, end: datetime) -> tuple[Doc, list[Doc]]:
    """The user-sessions window ending at (or last before) `end`, and each of its users: {user_id, sessions, events}.

    A user's sessions are the distinct session ids of the window's panes, their events the sum.
    """
    window = _window(lay.user_sessions, end)
    pairs = _pane_values(db, c.USER_SESSIONS, c.EVENTS, lay.user_sessions, window[c.WINDOW_START])
    users: dict[str, list] = {}
    for key, events in pairs.items():
        user, session = c.split_session_key(key)
        entry = users.setdefault(user, [0, set()])
        entry[0] += events
        entry[1].add(session)
    return window, [{c.USER_ID: u, c.SESSIONS: len(s), c.EVENTS: n} for u, (n, s) in users.items()]


def _rank(user: Doc) -> tuple[int, int, str]:
    """Top users order: most events, then most sessions, then user id (stable across renders)."""
    return -int(user[c.EVENTS]), -int(user[c.SESSIONS]), str(user[c.USER_ID])


def sessions(db: Database, lay: Layout, end: datetime, top: int) -> Sessions:
    """Sessions-per-user histogram and the `top` users (by events, then sessions) of the window ending by `end`."""
    window, users = window_users(db, lay, end)
    histogram = sorted(Counter(int(u[c.SESSIONS]) for u in users).items())
    return Sessions(window, histogram, sorted(users, key=_rank)[:top], len(users))


# --- pipeline health -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Health:
    """Per-minute points of both queries' batches (storage.rollup.minute_point), newest first, and the newest batch."""

    points: list[Doc] = field(default_factory=list)
    newest: Doc | None = None  # the newest point of either query (its last batch's time)
    newest_aggregates_batch: Doc | None = None  # the aggregates query's newest batch, whole (pipeline_metrics)


def _minutes_in(db: Database, hour: str) -> list[Doc]:
    return [minute_point(d) for d in db[c.PIPELINE_MINUTES].find({c.HOUR: hour})]


def health(db: Database, now: datetime, span: timedelta, limit: int) -> Health:
    """The points of the `span` before the newest batch (at most `limit`), read an hour bucket at a time."""
    read: dict[str, list[Doc]] = {}
    for hour in (c.hour_bucket(now), c.hour_bucket(now - timedelta(hours=1))):
        read[hour] = _minutes_in(db, hour)
        if read[hour]:
            break
    else:  # the job has not written for an hour or more: find its newest minute the slow way (a full read)
        newest_doc = db[c.PIPELINE_MINUTES].find_one({}, sort=[(c.MINUTE, DESCENDING)])
        if newest_doc is None:
            return Health()
        hour = c.hour_bucket(newest_doc[c.MINUTE])
        read[hour] = _minutes_in(db, hour)
    newest = max((p for docs in read.values() for p in docs), key=lambda p: utc(p[c.TIMESTAMP]))
    until = utc(newest[c.TIMESTAMP])
    after = until - span
    points: list[Doc] = []
    for hour in c.buckets_between(c.HOUR, after, until):
        docs = read[hour] if hour in read else _minutes_in(db, hour)
        points += [p for p in docs if after < utc(p[c.TIMESTAMP]) <= until]
        if len(points) >= limit:
            break
    points = sorted(points, key=lambda p: utc(p[c.TIMESTAMP]), reverse=True)[:limit]
    newest_agg = next((p for p in points if p[c.QUERY] == c.AGGREGATES_QUERY), None)
    batch = None
    if newest_agg is not None:
        batch = db[c.PIPELINE_METRICS].find_one(
            {c.ID: c.metrics_id(c.AGGREGATES_QUERY, newest_agg[c.RUN_ID], newest_agg[c.BATCH_ID])}, _BATCH_FIELDS)
    return Health(points, newest, batch)


def batch_end_offsets(db: Database, batch_doc_id: str) -> list[Doc] | None:
    """Where one batch left its query in Kafka ([{topic, partition, offset}], contract.END_OFFSETS), by `_id`.

    None when the batch is not stored or was written before the job recorded offsets.
    """
    doc = db[c.PIPELINE_METRICS].find_one({c.ID: batch_doc_id}, {c.ID: 0, c.END_OFFSETS: 1})
    return None if doc is None or c.END_OFFSETS not in doc else list(doc[c.END_OFFSETS])


# --- bot activity --------------------------------------------------------------------------------------------------

_BOT_FIELDS = {c.ID: 0, c.USER_ID: 1, c.SECOND: 1, c.EVENTS: 1, c.FIRST: 1, c.LAST: 1}


def bot_activity(db: Database, after: datetime, until: datetime, limit: int) -> list[Doc]:
    """Seconds of bot activity in `(after, until]`, newest first, at most `limit`: [{user_id, second, events, first,
    last}] (read an hour bucket at a time)."""
    bucket = c.HOUR if until - after <= HOURLY_UP_TO else c.DAY
    found: list[Doc] = []
    for b in c.buckets_between(bucket, after, until):
        found += [d for d in db[c.BOT_ACTIVITY].find({bucket: b}, _BOT_FIELDS) if after < utc(d[c.SECOND]) <= until]
        if len(found) >= limit:
            break
    return sorted(found, key=lambda d: (utc(d[c.SECOND]), d[c.USER_ID]), reverse=True)[:limit]


def bot_users(db: Database, window: Doc) -> set[str]:
    """Users who were bots in at least one second of the window (for figures that leave bot users out)."""
    start, end = utc(window[c.WINDOW_START]), utc(window[c.WINDOW_END])
    return {d[c.USER_ID] for d in bot_activity(db, start - timedelta(microseconds=1), end - timedelta(microseconds=1),
                                                 limit=10**9)}


# --- invalid events ------------------------------------------------------------------------------------------------

def invalid_events(db: Database, after: datetime, until: datetime, limit: int) -> list[Doc]:
    """Invalid events whose Kafka timestamp is in `(after, until]`, newest first, at most `limit` (whole documents)."""
    bucket = c.HOUR if until - after <= HOURLY_UP_TO else c.DAY
    events: list[Doc] = []
    for b in c.buckets_between(bucket, after, until):
        found = db[c.INVALID_EVENTS].find({bucket: b}, _INVALID_FIELDS)
        events += [e for e in found if after < utc(e[c.KAFKA_TIMESTAMP]) <= until]
        if len(events) >= limit:
            break
    return sorted(events, key=lambda e: utc(e[c.KAFKA_TIMESTAMP]), reverse=True)[:limit]


# --- the report's further reads -------------------------------------------------------------------------------------

_LAG_FIELDS = {c.ID: 0, c.TIMESTAMP: 1, c.OFFSETS_BEHIND_LATEST: 1, c.AVG_OFFSETS_BEHIND_LATEST: 1,
               c.MAX_OFFSETS_BEHIND_LATEST: 1}


def batch_lags(db: Database, points: Iterable[Doc]) -> list[Doc]:
    """The Kafka lag that the last batch of each of these per-minute points (from `health`) reported, in their order:
    [{timestamp, offsets_behind_latest, avg_/max_offsets_behind_latest}] (one `_id` read each; a batch stored without
    lag figures comes without them, one not stored is left out)."""
    found = []
    for p in points:
        doc = db[c.PIPELINE_METRICS].find_one({c.ID: c.metrics_id(p[c.QUERY], p[c.RUN_ID], p[c.BATCH_ID])}, _LAG_FIELDS)
        if doc is not None:
            found.append(doc)
    return found


@dataclass(frozen=True)
class SparkUi:
    """Where the job's Spark UI answers (as the job reported at its start), and when the job reported it."""

    url: str
    reported_at: datetime


def spark_ui(db: Database) -> SparkUi | None:
    """The Spark UI of the job that started last; None before a job reported one (or when its UI is off)."""
    doc = db[c.PIPELINE_LAYOUT].find_one({c.ID: c.LAYOUT_ID}, {c.ID: 0, c.SPARK_UI: 1, c.UPDATED_AT: 1})
    url = public_url(str(doc.get(c.SPARK_UI) or "")) if doc else None
    return None if url is None else SparkUi(url, utc(doc[c.UPDATED_AT]))


_DEAD_LETTER_FIELDS = {c.ID: 0, c.TARGET_COLLECTION: 1, c.DOCUMENT_ID: 1, c.FIELD: 1, c.OPERATION: 1, c.ERROR: 1,
                       c.ERROR_CODE: 1, c.FAILED_AT: 1}


def dead_letters(db: Database, after: datetime, until: datetime, limit: int) -> list[Doc]:
    """What the job set aside because the store refused it, failed in `(after, until]`, newest first, at most `limit`:
    [{collection, document_id, field, operation, error, error_code, failed_at}] (not the excerpt)."""
    bucket = c.HOUR if until - after <= HOURLY_UP_TO else c.DAY
    found: list[Doc] = []
    for b in c.buckets_between(bucket, after, until):
        found += [d for d in db[c.DEAD_LETTERS].find({bucket: b}, _DEAD_LETTER_FIELDS)
                  if after < utc(d[c.FAILED_AT]) <= until]
        if len(found) >= limit:
            break
    return sorted(found, key=lambda d: (utc(d[c.FAILED_AT]), d[c.TARGET_COLLECTION], d[c.DOCUMENT_ID]),
                  reverse=True)[:limit]
