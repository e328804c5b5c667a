"""Every read the Streamlit report makes: equality lookups that fetch only what one chart draws.

Each function takes a pymongo `Database` and explicit arguments (no clock, no globals) and returns plain
dicts or tuples. Every filter is an equality, on `_id`, a window start or a time bucket (contract.DAY/HOUR),
because that is what a Mongo-wire server is sure to answer without reading the whole collection: MongoDB uses
the indexes of `storage.indexes.INDEXES`, FerretDB v1 pushes equalities (and only those) down to PostgreSQL.
Ranges are split into buckets by the caller; sums and averages are left to it too, over these small results,
because FerretDB v1 cannot `$sum` a field or `$avg` at all.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pymongo import DESCENDING
from pymongo.database import Database

from storage import contract as c

Doc = dict[str, Any]

# Names the job gives its two streaming queries in `pipeline_metrics.query`.
AGGREGATES_QUERY = c.AGGREGATES_QUERY
INVALID_EVENTS_QUERY = c.INVALID_EVENTS_QUERY

_BATCH_FIELDS = {
    c.ID: 0, c.QUERY: 1, c.BATCH_ID: 1, c.TIMESTAMP: 1, c.INPUT_ROWS: 1, c.INPUT_ROWS_PER_SECOND: 1,
    c.PROCESSED_ROWS_PER_SECOND: 1, c.BATCH_DURATION_MS: 1, c.WATERMARK: 1, c.STATE_ROWS: 1,
    c.DROPPED_BY_WATERMARK: 1, c.DUPLICATES_DROPPED: 1, c.VALID_ROWS: 1, c.INVALID_ROWS: 1,
}
_INVALID_FIELDS = {c.ID: 0, c.REASON: 1, c.DETAIL: 1, c.RAW: 1, c.RAW_TRUNCATED: 1, c.TOPIC: 1, c.PARTITION: 1,
                   c.OFFSET: 1, c.KAFKA_TIMESTAMP: 1}


def catalog_days(db: Database, collection: str, days: Iterable[str]) -> list[Doc]:
    """The window catalog documents of `collection` for these UTC days (one `_id` lookup each), oldest first."""
    found = (db[c.WINDOW_CATALOG].find_one({c.ID: c.catalog_id(collection, day)}) for day in sorted(set(days)))
    return [d for d in found if d is not None]


def newest_catalog_days(db: Database, collection: str, limit: int) -> list[Doc]:
    """The newest `limit` window catalog documents of `collection`, oldest first.

    For data that is not recent (a replay of last month): the catalog holds one document per day, so even
    reading every day of the collection stays small.
    """
    cursor = db[c.WINDOW_CATALOG].find({c.COLLECTION: collection}).sort(c.DAY, DESCENDING).limit(limit)
    return list(cursor)[::-1]


def page_views_in_window(db: Database, window_start: Any, limit: int) -> list[Doc]:
    """Pages of one page_views window, most viewed first: [{page_url, views}]."""
    cursor = (db[c.PAGE_VIEWS].find({c.WINDOW_START: window_start}, {c.ID: 0, c.PAGE_URL: 1, c.VIEWS: 1})
              .sort(c.VIEWS, DESCENDING).limit(limit))
    return list(cursor)


def window_users(db: Database, window_start: Any) -> list[Doc]:
    """Every user of one user_sessions window with their sessions and events: [{user_id, sessions, events}].

    One read serves both the sessions histogram and the top-users table (as many rows as the window has active
    users); on FerretDB v1 a server-side `$group` would decode the same documents a second time.
    """
    return list(db[c.USER_SESSIONS].find({c.WINDOW_START: window_start},
                                         {c.ID: 0, c.USER_ID: 1, c.SESSIONS: 1, c.EVENTS: 1}))


def minutes_in(db: Database, hour: str) -> list[Doc]:
    """pipeline_minutes documents (both queries) of one HOUR bucket, newest minute first."""
    return list(db[c.PIPELINE_MINUTES].find({c.HOUR: hour}).sort(c.MINUTE, DESCENDING))


def newest_minute(db: Database) -> Doc | None:
    """The newest pipeline_minutes document, found without buckets (a full read on FerretDB v1).

    Only for a job that has not written for hours: recent minutes are found by their hour bucket.
    """
    return db[c.PIPELINE_MINUTES].find_one({}, sort=[(c.MINUTE, DESCENDING)])


def batch(db: Database, batch_doc_id: str) -> Doc | None:
    """One pipeline_metrics document by its `_id` (contract.metrics_id)."""
    return db[c.PIPELINE_METRICS].find_one({c.ID: batch_doc_id}, _BATCH_FIELDS)


def invalid_events_in(db: Database, field: str, bucket: str) -> list[Doc]:
    """Invalid events whose Kafka timestamp falls in one time bucket, newest first (whole documents)."""
    return list(db[c.INVALID_EVENTS].find({field: bucket}, _INVALID_FIELDS).sort(c.KAFKA_TIMESTAMP, DESCENDING))
