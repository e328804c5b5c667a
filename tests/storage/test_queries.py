"""The report's read queries, on the real Mongo-wire server: each returns exactly what its chart draws."""

from __future__ import annotations

from datetime import timedelta

import pytest

from storage import contract as c
from storage import queries as q
from storage.indexes import INDEXES
from tests.reporting.documents import MIN, T0, insert, invalid, seed_known_site

integration = pytest.mark.integration


@pytest.fixture
def known_db(mongo_db):
    seed_known_site(mongo_db)
    return mongo_db


@integration
def test_newest_active_windows_come_newest_first_and_limited(known_db):
    # Given eleven active_users windows starting 10:00..10:10
    # When the newest three are asked for
    got = q.newest_active_windows(known_db, 3)
    # Then they are 10:10, 10:09, 10:08 with their counts, and no document id
    assert [d[c.WINDOW_START] for d in got] == [T0 + 10 * MIN, T0 + 9 * MIN, T0 + 8 * MIN]
    assert [d[c.ACTIVE_USERS_COUNT] for d in got] == [42, 40, 39]
    assert all(c.ID not in d for d in got)


@integration
def test_complete_active_windows_skip_windows_that_end_after_the_cutoff(known_db):
    # Given windows of 5 minutes; the one starting 10:06 ends at 10:11
    # When only windows ended by 10:11 are asked for
    got = q.complete_active_windows(known_db, T0 + 11 * MIN, 2)
    # Then the newest two of those start at 10:06 and 10:05
    assert [d[c.WINDOW_START] for d in got] == [T0 + 6 * MIN, T0 + 5 * MIN]


@integration
def test_active_users_series_covers_a_half_open_range_of_starts_oldest_first(known_db):
    # When windows starting after 10:02 and up to 10:05 are asked for
    got = q.active_users_series(known_db, T0 + 2 * MIN, T0 + 5 * MIN, 100)
    # Then 10:03, 10:04 and 10:05 come back in order, with only the fields the line draws
    assert [d[c.WINDOW_START] for d in got] == [T0 + 3 * MIN, T0 + 4 * MIN, T0 + 5 * MIN]
    assert set(got[0]) == {c.WINDOW_START, c.WINDOW_END, c.ACTIVE_USERS_COUNT}


@integration
def test_latest_window_of_a_keyed_collection_honours_not_after(known_db):
    # Given page_views windows starting 09:55 (ends 10:10) and 09:56 (ends 10:11)
    # When the latest window is asked for with and without a cutoff of 10:10
    newest = q.latest_window(known_db, c.PAGE_VIEWS)
    ended = q.latest_window(known_db, c.PAGE_VIEWS, not_after=T0 + 10 * MIN)
    # Then the cutoff excludes the window still open at 10:10
    assert newest[c.WINDOW_START] == T0 - 4 * MIN
    assert ended[c.WINDOW_START] == T0 - 5 * MIN
    assert q.latest_window(known_db, c.PAGE_VIEWS, not_after=T0 - 10 * MIN) is None


@integration
def test_page_views_of_one_window_come_most_viewed_first(known_db):
    # When the pages of the newest page_views window are asked for, at most three
    got = q.page_views_in_window(known_db, T0 - 4 * MIN, 3)
    # Then the three most viewed pages of that window come back, not the older window's /old
    assert got == [{c.PAGE_URL: "/home", c.VIEWS: 30}, {c.PAGE_URL: "/products", c.VIEWS: 20},
                   {c.PAGE_URL: "/cart", c.VIEWS: 5}]


@integration
def test_sessions_histogram_counts_users_per_session_count_on_the_server(known_db):
    # Given window 10:10 where users had 1, 1, 2, 3 and 1 sessions (and u9 in 10:09 had 1)
    # When the histogram of that window is asked for
    got = q.sessions_histogram(known_db, T0 + 10 * MIN)
    # Then three users had one session, one had two, one had three
    assert got == [(1, 3), (2, 1), (3, 1)]


@integration
def test_top_users_are_the_most_active_of_one_window_only(known_db):
    # When the top two users of window 10:10 are asked for
    got = q.top_users(known_db, T0 + 10 * MIN, 2)
    # Then u4 (20 events) and u2 (9) come back with their window, and u9 of the window before does not
    assert [(u[c.USER_ID], u[c.EVENTS], u[c.SESSIONS]) for u in got] == [("u4", 20, 3), ("u2", 9, 1)]
    assert got[0][c.WINDOW_START] == T0 + 10 * MIN and got[0][c.WINDOW_END] == T0 + 15 * MIN


@integration
def test_batches_come_newest_first_within_a_half_open_time_range(known_db):
    # Given batches at 10:15:00 and 10:15:30 for both queries
    newest = q.newest_batch(known_db)
    got = q.batches_between(known_db, T0 + 15 * MIN, T0 + 16 * MIN, 10)
    # Then the newest is at 10:15:30 and the range (10:15, 10:16] holds only the two 10:15:30 batches
    assert newest[c.TIMESTAMP] == T0 + 15 * MIN + timedelta(seconds=30)
    assert sorted(b[c.QUERY] for b in got) == [q.AGGREGATES_QUERY, q.INVALID_EVENTS_QUERY]
    assert {b[c.BATCH_ID] for b in got} == {2}


@integration
def test_invalid_events_in_a_range_carry_only_reason_and_time(known_db):
    # When invalid events of (10:12, 10:15] are asked for
    got = q.invalid_events_between(known_db, T0 + 12 * MIN, T0 + 15 * MIN, 10)
    # Then the one at exactly 10:12 is out, the other two are in, newest first
    assert got == [{c.REASON: "missing_field", c.KAFKA_TIMESTAMP: T0 + 14 * MIN},
                   {c.REASON: "malformed_json", c.KAFKA_TIMESTAMP: T0 + 12 * MIN + timedelta(seconds=5)}]


@integration
def test_latest_invalid_events_cut_the_raw_text_to_an_excerpt(mongo_db):
    # Given an invalid event whose raw text is 1000 characters long
    insert(mongo_db, c.INVALID_EVENTS, [invalid(1, "too_large", T0, "1000 bytes", "x" * 1000),
                                        invalid(2, "malformed_json", T0 + MIN, "not JSON", "{")])
    # When the latest one sample is asked for with a 10-character excerpt
    got = q.latest_invalid_events(mongo_db, 2, raw_chars=10)
    # Then the newest comes first and long raw text ends with an ellipsis after 10 characters
    assert [e[c.REASON] for e in got] == ["malformed_json", "too_large"]
    assert got[1][c.RAW] == "x" * 10 + "…" and got[0][c.RAW] == "{"
    assert got[1][c.DETAIL] == "1000 bytes" and got[1][c.OFFSET] == 1


@integration
def test_queries_on_an_empty_database_return_nothing(mongo_db):
    # Given a database the job has not written to
    # Then every query answers empty instead of failing
    assert q.newest_active_windows(mongo_db, 5) == []
    assert q.latest_window(mongo_db, c.USER_SESSIONS) is None
    assert q.sessions_histogram(mongo_db, T0) == []
    assert q.newest_batch(mongo_db) is None
    assert q.latest_invalid_events(mongo_db, 5) == []


@pytest.mark.parametrize(("collection", "fields"), [
    (c.ACTIVE_USERS, [c.WINDOW_START]),
    (c.PAGE_VIEWS, [c.WINDOW_START]),
    (c.PAGE_VIEWS, [c.WINDOW_START, c.VIEWS]),
    (c.USER_SESSIONS, [c.WINDOW_START]),
    (c.USER_SESSIONS, [c.WINDOW_START, c.EVENTS]),
    (c.PIPELINE_METRICS, [c.TIMESTAMP]),
    (c.INVALID_EVENTS, [c.KAFKA_TIMESTAMP]),
])
def test_every_query_shape_is_served_by_a_declared_index(collection, fields):
    # Each query filters on the first field (equality or range) and sorts on the last: an index must start so
    prefixes = [[k for k, _ in keys[:len(fields)]] for coll, keys, _ in INDEXES if coll == collection]
    assert fields in prefixes
