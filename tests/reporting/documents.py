"""Known storage-contract documents for the report's tests (built through the contract, never retyped)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo.database import Database
from pymongo.errors import OperationFailure
from pyspark.sql import Row

from storage import contract as c
from storage import dead_letters
from storage.indexes import ensure_indexes
from storage.journal import fold_all
from storage.layout import Layout, Windows, write_layout
from storage.rollup import minute_point, rollup_merges
from storage.sink import upsert_operation
from streaming_job.documents import aggregate_documents

Doc = dict[str, Any]
MIN = timedelta(minutes=1)
# A fixed past morning: every window has ended, so "latest complete" is simply the newest window.
T0 = datetime(2026, 1, 15, 10, 0, tzinfo=UTC)
DEFAULT_LAYOUT = Layout(Windows(5 * MIN, MIN), Windows(15 * MIN, MIN), Windows(5 * MIN, MIN))
SESSION_ID = "session_id"


def active(start: datetime, users: int, size: timedelta = 5 * MIN, written: datetime | None = None) -> Doc:
    """An active-users window, as the read API returns it."""
    return {c.WINDOW_START: start, c.WINDOW_END: start + size, c.ACTIVE_USERS_COUNT: users,
            c.UPDATED_AT: written or start + size}


def page(pane: datetime, url: str, views: int) -> Doc:
    """Views of one page in one 1-minute pane."""
    return {c.PANE_START: pane, c.PAGE_URL: url, c.VIEWS: views}


def session(pane: datetime, user: str, session_id: str, events: int) -> Doc:
    """Events of one user in one session in one 1-minute pane."""
    return {c.PANE_START: pane, c.USER_ID: user, SESSION_ID: session_id, c.EVENTS: events}


def _naive(t: datetime) -> datetime:
    return t.astimezone(UTC).replace(tzinfo=None)


def _row(collection: str, d: Doc) -> Row:
    """The job's output row (streaming_job/windows.py) that stands for one of the values above."""
    if collection == c.ACTIVE_USERS:
        return Row(kind=collection, window_start=_naive(d[c.WINDOW_START]), window_end=_naive(d[c.WINDOW_END]), key="",
                   subkey="", events=0, users=d[c.ACTIVE_USERS_COUNT])
    pane = _naive(d[c.PANE_START])
    if collection == c.PAGE_VIEWS:
        return Row(kind=collection, window_start=pane, window_end=pane + MIN, key=d[c.PAGE_URL], subkey="",
                   events=d[c.VIEWS], users=0)
    return Row(kind=collection, window_start=pane, window_end=pane + MIN, key=d[c.USER_ID], subkey=d[SESSION_ID],
               events=d[c.EVENTS], users=0)


def insert(db: Database, collection: str, docs: list[Doc], layout: Layout = DEFAULT_LAYOUT) -> None:
    """Store values as the job leaves them: aggregates through the job's own bucket writes (with the layout
    document), batches with their per-minute sums, other documents as they are."""
    if not docs:
        return
    if collection in c.AGGREGATE_COLLECTIONS:
        write_layout(db, layout)
        written = max((d[c.UPDATED_AT] for d in docs if c.UPDATED_AT in d), default=T0)
        ops: dict[str, list] = {}
        for coll, m in aggregate_documents(0)(_row(collection, d) for d in docs):
            ops.setdefault(coll, []).append(upsert_operation(m, {c.UPDATED_AT: written}))
        for coll, coll_ops in ops.items():
            db[coll].bulk_write(coll_ops)
        fold_all(db)  # as the job does within seconds
        return
    db[collection].insert_many(docs)
    if collection == c.PIPELINE_METRICS:  # the job's listener sums each minute's batches as it stores them
        written = max(d[c.TIMESTAMP] for d in docs)
        db[c.PIPELINE_MINUTES].bulk_write([upsert_operation(m, {c.UPDATED_AT: written}) for _, m in rollup_merges(docs)])


def batch(query: str, at: datetime, batch_id: int, rows: int, rows_per_second: float, **extra: Any) -> Doc:
    doc = {c.ID: c.metrics_id(query, "run-1", batch_id), c.QUERY: query, c.RUN_ID: "run-1", c.BATCH_ID: batch_id,
           c.TIMESTAMP: at, c.INPUT_ROWS: rows, c.INPUT_ROWS_PER_SECOND: rows_per_second,
           c.PROCESSED_ROWS_PER_SECOND: rows_per_second * 2, c.BATCH_DURATION_MS: 250 + batch_id,
           c.WATERMARK: at - 10 * MIN, c.STATE_ROWS: 1000 + batch_id, c.DROPPED_BY_WATERMARK: 1,
           c.DUPLICATES_DROPPED: 0}
    return {**doc, **extra}


def invalid(offset: int, reason: str, at: datetime, detail: str = "", raw: str = "{}") -> Doc:
    return {c.ID: c.invalid_event_id("clickstream", 0, offset), c.REASON: reason, c.DETAIL: detail, c.RAW: raw,
            c.RAW_TRUNCATED: False, c.TOPIC: "clickstream", c.PARTITION: 0, c.OFFSET: offset, c.KAFKA_TIMESTAMP: at,
            c.STORED_AT: at + MIN, **c.time_buckets(at)}


def dead_letter(collection: str, document_id: str, at: datetime, field: str | None = None,
                error: str = "ERROR: unsupported Unicode escape sequence (SQLSTATE 22P05)") -> Doc:
    """The dead letter the sink writes when the store refuses a document (or one `$set` entry) at `at`."""
    fields = {c.ID: document_id, "value": 1} if field is None else {field: 1}
    operation = c.REPLACE if field is None else c.MERGE
    return dead_letters.dead_letter(
        dead_letters.Rejected(collection, document_id, operation, fields, OperationFailure(error, 1), field), at)


def bot_second(user: str, second: datetime, events: int, partition: int = 0, first_offset: int = 0,
               written: datetime | None = None) -> Doc:
    """One user's second of bot activity, as the job stores it (storage/contract.py, bot_activity)."""
    return {c.ID: c.bot_activity_id(second, user), c.USER_ID: user, c.SECOND: second, c.EVENTS: events,
            c.FIRST: {c.PARTITION: partition, c.OFFSET: first_offset},
            c.LAST: {c.PARTITION: partition, c.OFFSET: first_offset + events - 1},
            **c.time_buckets(second), c.UPDATED_AT: written or second + MIN}


def points(batches: list[Doc]) -> list[Doc]:
    """The per-minute points the report draws for these batches, newest first (as the job would store them)."""
    docs: dict[str, Doc] = {}
    for _, merge in rollup_merges(batches):
        doc = docs.setdefault(merge.id, {c.ID: merge.id})
        for key, value in merge.fields.items():
            if key.startswith(f"{c.RUNS}."):
                doc.setdefault(c.RUNS, {})[key.split(".", 1)[1]] = value
            else:
                doc[key] = value
    return sorted((minute_point(d) for d in docs.values()), key=lambda p: p[c.TIMESTAMP], reverse=True)


def seed_known_site(db: Database) -> None:
    """The scenario the report's tests assert on (every figure below is derived by hand in the tests).

    - active_users: 5-min windows starting 10:00..10:10; newest (10:10) has 42 users, the one before 40.
    - page_views: the 15-min window ending 10:15 (panes 10:00..10:14) has /home 30, /products 20, /cart 5,
      /checkout 1 (56 views), spread over its panes; pane 09:59 has /old 99 (outside: must not show).
    - user_sessions: the 5-min window ending 10:15 (panes 10:10..10:14) has u1..u5 with sessions 1,1,2,3,1 and
      events 5,9,4,20,1 (avg 8/5 = 1.60); pane 10:09 has u9 with 100 events (outside: must not show).
    - pipeline_metrics: two batches per query at 10:15:00 and 10:15:30; aggregates read 100 rows at 50/s and
      300 at 150/s (400 rows in 4 s: 100.0/s); invalid_events saw 2 of 100 and 6 of 300 invalid (2.0 %).
    - invalid_events: malformed_json at 10:12 (twice), missing_field at 10:14.
    """
    ensure_indexes(db, retention=None)
    counts = [30, 31, 33, 35, 34, 36, 37, 38, 39, 40, 42]
    insert(db, c.ACTIVE_USERS, [active(T0 + i * MIN, n) for i, n in enumerate(counts)])
    insert(db, c.PAGE_VIEWS, [page(T0 - MIN, "/old", 99), page(T0, "/home", 10), page(T0 + 7 * MIN, "/home", 20),
                              page(T0 + 3 * MIN, "/products", 20), page(T0 + 14 * MIN, "/cart", 5),
                              page(T0 + 14 * MIN, "/checkout", 1)])
    w = T0 + 10 * MIN
    insert(db, c.USER_SESSIONS, [
        session(w - MIN, "u9", "s9", 100),
        session(w, "u1", "a", 5), session(w + MIN, "u2", "a", 4), session(w + 4 * MIN, "u2", "a", 5),
        session(w, "u3", "a", 2), session(w + 2 * MIN, "u3", "b", 2),
        session(w, "u4", "a", 10), session(w, "u4", "b", 5), session(w + 3 * MIN, "u4", "c", 5),
        session(w + 4 * MIN, "u5", "a", 1),
    ])
    t1, t2 = T0 + 15 * MIN, T0 + 15 * MIN + timedelta(seconds=30)
    insert(db, c.PIPELINE_METRICS, [
        batch(c.AGGREGATES_QUERY, t1, 1, 100, 50.0, **{c.VALID_ROWS: 98}),
        batch(c.AGGREGATES_QUERY, t2, 2, 300, 150.0, **{c.VALID_ROWS: 294}),
        batch(c.INVALID_EVENTS_QUERY, t1, 1, 100, 50.0, **{c.INVALID_ROWS: 2}),
        batch(c.INVALID_EVENTS_QUERY, t2, 2, 300, 150.0, **{c.INVALID_ROWS: 6}),
    ])
    insert(db, c.INVALID_EVENTS, [
        invalid(7, "malformed_json", T0 + 12 * MIN, "not JSON: Expecting value", "{not json"),
        invalid(8, "malformed_json", T0 + 12 * MIN + timedelta(seconds=5), "not JSON: Expecting value", "]["),
        invalid(9, "missing_field", T0 + 14 * MIN, "missing: page_url", '{"user_id": "u1", "event_type": "page_view"}'),
    ])
