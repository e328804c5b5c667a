"""Known storage-contract documents for the report's tests (built through the contract, never retyped)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo.database import Database

from storage import contract as c
from storage.catalog import catalog_merges
from storage.indexes import ensure_indexes
from storage.queries import AGGREGATES_QUERY, INVALID_EVENTS_QUERY
from storage.rollup import minute_point, rollup_merges
from storage.sink import upsert_operation

Doc = dict[str, Any]
MIN = timedelta(minutes=1)
# A fixed past morning: every window has ended, so "latest complete" is simply the newest window.
T0 = datetime(2026, 1, 15, 10, 0, tzinfo=UTC)


def active(start: datetime, users: int, size: timedelta = 5 * MIN, written: datetime | None = None) -> Doc:
    return {c.ID: c.window_id(start), c.WINDOW_START: start, c.WINDOW_END: start + size, c.ACTIVE_USERS_COUNT: users,
            c.UPDATED_AT: written or start + size}


def page(start: datetime, url: str, views: int, size: timedelta = 15 * MIN) -> Doc:
    return {c.ID: c.window_id(start, url), c.WINDOW_START: start, c.WINDOW_END: start + size, c.PAGE_URL: url,
            c.VIEWS: views, c.UPDATED_AT: start + size}


def session(start: datetime, user: str, sessions: int, events: int, size: timedelta = 5 * MIN) -> Doc:
    return {c.ID: c.window_id(start, user), c.WINDOW_START: start, c.WINDOW_END: start + size, c.USER_ID: user,
            c.SESSIONS: sessions, c.EVENTS: events, c.UPDATED_AT: start + size}


def batch(query: str, at: datetime, batch_id: int, rows: int, rows_per_second: float, **extra: Any) -> Doc:
    doc = {c.ID: c.metrics_id(query, "run-1", batch_id), c.QUERY: query, c.RUN_ID: "run-1", c.BATCH_ID: batch_id,
           c.TIMESTAMP: at, c.INPUT_ROWS: rows, c.INPUT_ROWS_PER_SECOND: rows_per_second,
           c.PROCESSED_ROWS_PER_SECOND: rows_per_second * 2, c.BATCH_DURATION_MS: 250 + batch_id,
           c.WATERMARK: at - 10 * MIN, c.STATE_ROWS: 1000 + batch_id, c.DROPPED_BY_WATERMARK: 1,
           c.DUPLICATES_DROPPED: 0, **c.time_buckets(at)}
    return {**doc, **extra}


def invalid(offset: int, reason: str, at: datetime, detail: str = "", raw: str = "{}") -> Doc:
    return {c.ID: c.invalid_event_id("clickstream", 0, offset), c.REASON: reason, c.DETAIL: detail, c.RAW: raw,
            c.RAW_TRUNCATED: False, c.TOPIC: "clickstream", c.PARTITION: 0, c.OFFSET: offset, c.KAFKA_TIMESTAMP: at,
            c.STORED_AT: at + MIN, **c.time_buckets(at)}


def insert(db: Database, collection: str, docs: list[Doc]) -> None:
    """Insert documents as the job would leave them: windows also recorded in the window catalog."""
    if not docs:
        return
    db[collection].insert_many(docs)
    written = max((d[c.UPDATED_AT] for d in docs if c.UPDATED_AT in d), default=None)
    merges = catalog_merges((collection, d) for d in docs)
    if collection == c.PIPELINE_METRICS:
        merges = rollup_merges(docs)  # the job's listener sums each minute's batches as it stores them
    for coll, merge in merges:
        db[coll].bulk_write([upsert_operation(merge, {c.UPDATED_AT: written})])


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
    - page_views: 15-min windows starting 09:55 and 09:56; the newest has /home 30, /products 20, /cart 5,
      /checkout 1 (56 views); the older one has /old 99 (must not show).
    - user_sessions: window 10:10 has u1..u5 with sessions 1,1,2,3,1 and events 5,9,4,20,1 (avg 8/5 = 1.60);
      window 10:09 has u9 with 100 events (must not show).
    - pipeline_metrics: two batches per query at 10:15:00 and 10:15:30; aggregates read 100 rows at 50/s and
      300 at 150/s (400 rows in 4 s: 100.0/s); invalid_events saw 2 of 100 and 6 of 300 invalid (2.0 %).
    - invalid_events: malformed_json at 10:12 (twice), missing_field at 10:14.
    """
    ensure_indexes(db, retention=None)
    counts = [30, 31, 33, 35, 34, 36, 37, 38, 39, 40, 42]
    insert(db, c.ACTIVE_USERS, [active(T0 + i * MIN, n) for i, n in enumerate(counts)])
    newest_pv = T0 - 4 * MIN
    insert(db, c.PAGE_VIEWS, [page(newest_pv - MIN, "/old", 99)]
           + [page(newest_pv, u, v) for u, v in (("/home", 30), ("/products", 20), ("/cart", 5), ("/checkout", 1))])
    w = T0 + 10 * MIN
    insert(db, c.USER_SESSIONS, [session(w - MIN, "u9", 1, 100)]
           + [session(w, f"u{i}", s, e) for i, (s, e) in enumerate(((1, 5), (1, 9), (2, 4), (3, 20), (1, 1)), 1)])
    t1, t2 = T0 + 15 * MIN, T0 + 15 * MIN + timedelta(seconds=30)
    insert(db, c.PIPELINE_METRICS, [
        batch(AGGREGATES_QUERY, t1, 1, 100, 50.0, **{c.VALID_ROWS: 98}),
        batch(AGGREGATES_QUERY, t2, 2, 300, 150.0, **{c.VALID_ROWS: 294}),
        batch(INVALID_EVENTS_QUERY, t1, 1, 100, 50.0, **{c.INVALID_ROWS: 2}),
        batch(INVALID_EVENTS_QUERY, t2, 2, 300, 150.0, **{c.INVALID_ROWS: 6}),
    ])
    insert(db, c.INVALID_EVENTS, [
        invalid(7, "malformed_json", T0 + 12 * MIN, "not JSON: Expecting value", "{not json"),
        invalid(8, "malformed_json", T0 + 12 * MIN + timedelta(seconds=5), "not JSON: Expecting value", "]["),
        invalid(9, "missing_field", T0 + 14 * MIN, "missing: page_url", '{"user_id": "u1", "event_type": "page_view"}'),
    ])
