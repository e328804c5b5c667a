"""Every read the Streamlit report makes: small, index-shaped queries that fetch only what one chart draws.

Each function takes a pymongo `Database` and explicit arguments (no clock, no globals) and returns plain
dicts or tuples. Every query is bounded: an equality on one window, a range on an indexed time field, or a
sort on an indexed field with a limit (see `storage.indexes.INDEXES`). Sums and averages are left to the
caller, over these small results, because FerretDB v1 cannot `$sum` a field or `$avg` at all.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.database import Database

from storage import contract as c

Doc = dict[str, Any]

# Names the job gives its two streaming queries in `pipeline_metrics.query`.
AGGREGATES_QUERY = c.AGGREGATES_QUERY
INVALID_EVENTS_QUERY = c.INVALID_EVENTS_QUERY

_WINDOW_FIELDS = {c.ID: 0, c.WINDOW_START: 1, c.WINDOW_END: 1, c.UPDATED_AT: 1}
_BATCH_FIELDS = {
    c.ID: 0, c.QUERY: 1, c.BATCH_ID: 1, c.TIMESTAMP: 1, c.INPUT_ROWS: 1, c.INPUT_ROWS_PER_SECOND: 1,
    c.PROCESSED_ROWS_PER_SECOND: 1, c.BATCH_DURATION_MS: 1, c.WATERMARK: 1, c.STATE_ROWS: 1,
    c.DROPPED_BY_WATERMARK: 1, c.DUPLICATES_DROPPED: 1, c.VALID_ROWS: 1, c.INVALID_ROWS: 1,
}


def newest_active_windows(db: Database, limit: int) -> list[Doc]:
    """The newest `limit` active_users windows, newest first (window bounds, count, last write)."""
    cursor = (db[c.ACTIVE_USERS].find({}, {**_WINDOW_FIELDS, c.ACTIVE_USERS_COUNT: 1})
              .sort(c.WINDOW_START, DESCENDING).limit(limit))
    return list(cursor)


def complete_active_windows(db: Database, not_after: datetime, limit: int) -> list[Doc]:
    """The newest `limit` active_users windows that ended at or before `not_after`, newest first."""
    cursor = (db[c.ACTIVE_USERS].find({c.WINDOW_END: {"$lte": not_after}}, {**_WINDOW_FIELDS, c.ACTIVE_USERS_COUNT: 1})
              .sort(c.WINDOW_START, DESCENDING).limit(limit))
    return list(cursor)


def active_users_series(db: Database, start_after: datetime, start_until: datetime, limit: int) -> list[Doc]:
    """active_users windows with `start_after < window_start <= start_until`, oldest first (what the line draws)."""
    cursor = (db[c.ACTIVE_USERS].find({c.WINDOW_START: {"$gt": start_after, "$lte": start_until}},
                                      {c.ID: 0, c.WINDOW_START: 1, c.WINDOW_END: 1, c.ACTIVE_USERS_COUNT: 1})
              .sort(c.WINDOW_START, ASCENDING).limit(limit))
    return list(cursor)


def latest_window(db: Database, collection: str, not_after: datetime | None = None) -> Doc | None:
    """Bounds of the newest window in a keyed aggregate collection (page_views, user_sessions).

    With `not_after`, only windows that ended at or before it count. Returns {window_start, window_end, updated_at}.
    """
    query = {} if not_after is None else {c.WINDOW_END: {"$lte": not_after}}
    return db[collection].find_one(query, _WINDOW_FIELDS, sort=[(c.WINDOW_START, DESCENDING)])


def page_views_in_window(db: Database, window_start: datetime, limit: int) -> list[Doc]:
    """Pages of one page_views window, most viewed first: [{page_url, views}]."""
    cursor = (db[c.PAGE_VIEWS].find({c.WINDOW_START: window_start}, {c.ID: 0, c.PAGE_URL: 1, c.VIEWS: 1})
              .sort(c.VIEWS, DESCENDING).limit(limit))
    return list(cursor)


def sessions_histogram(db: Database, window_start: datetime) -> list[tuple[int, int]]:
    """How many users had k sessions in one user_sessions window: [(k, users)], k ascending.

    Grouped on the server with `$sum: 1` (which FerretDB v1 supports), so only one row per distinct k travels.
    """
    pipeline = [
        {"$match": {c.WINDOW_START: window_start}},
        {"$group": {"_id": f"${c.SESSIONS}", "users": {"$sum": 1}}},
    ]
    rows = [(int(r["_id"]), int(r["users"])) for r in db[c.USER_SESSIONS].aggregate(pipeline) if r["_id"] is not None]
    return sorted(rows)


def top_users(db: Database, window_start: datetime, limit: int) -> list[Doc]:
    """The `limit` users with the most events in one user_sessions window.

    Returns [{user_id, events, sessions, window_start, window_end}] (the bounds tell the caller which window it got).
    """
    cursor = (db[c.USER_SESSIONS].find({c.WINDOW_START: window_start},
                                       {c.ID: 0, c.USER_ID: 1, c.EVENTS: 1, c.SESSIONS: 1, c.WINDOW_START: 1,
                                        c.WINDOW_END: 1})
              .sort(c.EVENTS, DESCENDING).limit(limit))
    return list(cursor)


def newest_batch(db: Database) -> Doc | None:
    """The newest pipeline_metrics document of any query."""
    return db[c.PIPELINE_METRICS].find_one({}, _BATCH_FIELDS, sort=[(c.TIMESTAMP, DESCENDING)])


def batches_between(db: Database, after: datetime, until: datetime, limit: int) -> list[Doc]:
    """pipeline_metrics documents with `after < timestamp <= until`, newest first, at most `limit`."""
    cursor = (db[c.PIPELINE_METRICS].find({c.TIMESTAMP: {"$gt": after, "$lte": until}}, _BATCH_FIELDS)
              .sort(c.TIMESTAMP, DESCENDING).limit(limit))
    return list(cursor)


def invalid_events_between(db: Database, after: datetime, until: datetime, limit: int) -> list[Doc]:
    """(reason, kafka_timestamp) of invalid events with `after < kafka_timestamp <= until`, newest first."""
    cursor = (db[c.INVALID_EVENTS].find({c.KAFKA_TIMESTAMP: {"$gt": after, "$lte": until}},
                                        {c.ID: 0, c.REASON: 1, c.KAFKA_TIMESTAMP: 1})
              .sort(c.KAFKA_TIMESTAMP, DESCENDING).limit(limit))
    return list(cursor)


def latest_invalid_events(db: Database, limit: int, raw_chars: int = 300) -> list[Doc]:
    """The newest invalid events (reason, detail, a raw excerpt of at most `raw_chars`, Kafka coordinates)."""
    fields = {c.ID: 0, c.REASON: 1, c.DETAIL: 1, c.RAW: 1, c.RAW_TRUNCATED: 1, c.TOPIC: 1, c.PARTITION: 1,
              c.OFFSET: 1, c.KAFKA_TIMESTAMP: 1}
    docs = list(db[c.INVALID_EVENTS].find({}, fields).sort(c.KAFKA_TIMESTAMP, DESCENDING).limit(limit))
    for d in docs:
        raw = d.get(c.RAW) or ""
        if len(raw) > raw_chars:
            d[c.RAW] = raw[:raw_chars] + "…"
    return docs
