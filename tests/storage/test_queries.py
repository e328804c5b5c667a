"""The report's read queries, on the real Mongo-wire server: each returns exactly what its chart draws."""

from __future__ import annotations

from datetime import timedelta

import pytest

from storage import contract as c
from storage import queries as q
from storage.indexes import INDEXES
from tests.reporting.documents import MIN, T0, active, batch, insert, page, seed_known_site

integration = pytest.mark.integration


@pytest.fixture
def known_db(mongo_db):
    seed_known_site(mongo_db)
    return mongo_db


@integration
def test_catalog_days_are_found_by_id_and_missing_days_are_skipped(known_db):
    # Given active_users windows starting 10:00..10:10 on 2026-01-15 only
    # When that day, the day before and the day after are asked for
    got = q.catalog_days(known_db, c.ACTIVE_USERS, ["2026-01-16", "2026-01-15", "2026-01-14"])
    # Then only the 15th comes back, listing its eleven windows with their counts
    assert [d[c.DAY] for d in got] == ["2026-01-15"]
    assert got[0][c.WINDOWS]["101000"] == 42 and len(got[0][c.WINDOWS]) == 11
    assert got[0][c.WINDOW_SECONDS] == 300


@integration
def test_newest_catalog_days_are_the_latest_days_of_one_collection_oldest_first(mongo_db):
    # Given page_views windows on three days and an active_users window on a later day
    insert(mongo_db, c.PAGE_VIEWS, [page(T0 + timedelta(days=d), "/a", 1) for d in (0, 1, 2)])
    insert(mongo_db, c.ACTIVE_USERS, [active(T0 + timedelta(days=5), 1)])
    # When the newest two page_views days are asked for
    got = q.newest_catalog_days(mongo_db, c.PAGE_VIEWS, 2)
    # Then they are the 16th and the 17th of that collection, oldest first
    assert [d[c.DAY] for d in got] == ["2026-01-16", "2026-01-17"]


@integration
def test_page_views_of_one_window_come_most_viewed_first(known_db):
    # When the pages of the newest page_views window are asked for, at most three
    got = q.page_views_in_window(known_db, T0 - 4 * MIN, 3)
    # Then the three most viewed pages of that window come back, not the older window's /old
    assert got == [{c.PAGE_URL: "/home", c.VIEWS: 30}, {c.PAGE_URL: "/products", c.VIEWS: 20},
                   {c.PAGE_URL: "/cart", c.VIEWS: 5}]


@integration
def test_window_users_are_every_user_of_one_window_only(known_db):
    # Given window 10:10 with u1..u5, and u9 in window 10:09
    # When the users of window 10:10 are asked for
    got = q.window_users(known_db, T0 + 10 * MIN)
    # Then the five come back with their sessions and events only
    assert sorted((u[c.USER_ID], u[c.SESSIONS], u[c.EVENTS]) for u in got) == [
        ("u1", 1, 5), ("u2", 1, 9), ("u3", 2, 4), ("u4", 3, 20), ("u5", 1, 1)]
    assert all(set(u) == {c.USER_ID, c.SESSIONS, c.EVENTS} for u in got)


@integration
def test_minutes_of_one_hour_bucket_come_newest_first_with_their_batches_summed(known_db):
    # Given batches at 10:15:00 and 10:15:30 for both queries, and one an hour later
    insert(known_db, c.PIPELINE_METRICS, [batch(q.AGGREGATES_QUERY, T0 + 75 * MIN, 3, 1, 1.0)])
    # When the 10 o'clock hour bucket is read
    got = q.minutes_in(known_db, "2026-01-15T10")
    # Then it holds minute 10:15 of each query, each summing its two batches; the newest minute of all is 11:15
    assert sorted((d[c.QUERY], d[c.MINUTE]) for d in got) == [(q.AGGREGATES_QUERY, T0 + 15 * MIN),
                                                              (q.INVALID_EVENTS_QUERY, T0 + 15 * MIN)]
    assert [r[c.BATCHES] for d in got for r in d[c.RUNS].values()] == [2, 2]
    assert q.newest_minute(known_db)[c.MINUTE] == T0 + 75 * MIN


@integration
def test_one_batch_is_found_by_its_id(known_db):
    got = q.batch(known_db, c.metrics_id(q.AGGREGATES_QUERY, "run-1", 2))
    assert (got[c.BATCH_ID], got[c.INPUT_ROWS]) == (2, 300) and c.ID not in got
    assert q.batch(known_db, "nope") is None


@integration
def test_invalid_events_of_one_bucket_come_whole_and_newest_first(known_db):
    # When the invalid events of the day bucket 2026-01-15 are read
    got = q.invalid_events_in(known_db, c.DAY, "2026-01-15")
    # Then all three come back newest first, with reason, detail, raw text and Kafka coordinates
    assert [e[c.OFFSET] for e in got] == [9, 8, 7]
    assert got[0][c.REASON] == "missing_field" and got[0][c.RAW].startswith('{"user_id"')
    assert q.invalid_events_in(known_db, c.HOUR, "2026-01-15T11") == []


@integration
def test_queries_on_an_empty_database_return_nothing(mongo_db):
    # Given a database the job has not written to
    # Then every query answers empty instead of failing
    assert q.catalog_days(mongo_db, c.ACTIVE_USERS, ["2026-01-15"]) == []
    assert q.newest_catalog_days(mongo_db, c.USER_SESSIONS, 2) == []
    assert q.page_views_in_window(mongo_db, T0, 5) == []
    assert q.window_users(mongo_db, T0) == []
    assert q.minutes_in(mongo_db, "2026-01-15T10") == []
    assert q.newest_minute(mongo_db) is None
    assert q.invalid_events_in(mongo_db, c.HOUR, "2026-01-15T10") == []


@pytest.mark.parametrize(("collection", "fields"), [
    (c.ACTIVE_USERS, [c.WINDOW_START]),
    (c.PAGE_VIEWS, [c.WINDOW_START]),
    (c.PAGE_VIEWS, [c.WINDOW_START, c.VIEWS]),
    (c.USER_SESSIONS, [c.WINDOW_START]),
    (c.PIPELINE_METRICS, [c.TIMESTAMP]),
    (c.PIPELINE_MINUTES, [c.HOUR, c.MINUTE]),
    (c.PIPELINE_MINUTES, [c.MINUTE]),
    (c.INVALID_EVENTS, [c.HOUR, c.KAFKA_TIMESTAMP]),
    (c.INVALID_EVENTS, [c.DAY, c.KAFKA_TIMESTAMP]),
    (c.WINDOW_CATALOG, [c.COLLECTION, c.DAY]),
])
def test_every_query_shape_is_served_by_a_declared_index(collection, fields):
    # Each query filters on the first field (equality or range) and sorts on the last: an index must start so
    prefixes = [[k for k, _ in keys[:len(fields)]] for coll, keys, _ in INDEXES if coll == collection]
    assert fields in prefixes
