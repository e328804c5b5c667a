"""The read API on the real Mongo-wire server: each read returns exactly what its chart or KPI shows."""

from __future__ import annotations

from datetime import timedelta

import pytest

from storage import contract as c
from storage import reads
from storage.indexes import INDEXES
from tests.reporting.documents import DEFAULT_LAYOUT, MIN, T0, active, batch, insert, page, seed_known_site, session

integration = pytest.mark.integration
LATER = T0 + timedelta(hours=2)


@pytest.fixture
def known_db(mongo_db):
    seed_known_site(mongo_db)
    return mongo_db


@integration
def test_recent_active_windows_are_today_and_yesterday_newest_first(known_db):
    # Given windows starting 10:00..10:10 on 2026-01-15, read on the 16th
    # When the recent windows are asked for
    got = reads.recent_active_windows(known_db, T0 + timedelta(days=1))
    # Then the eleven come back newest first with their distinct users and bounds
    assert [w[c.ACTIVE_USERS_COUNT] for w in got][:2] == [42, 40] and len(got) == 11
    assert (got[0][c.WINDOW_START], got[0][c.WINDOW_END]) == (T0 + 10 * MIN, T0 + 15 * MIN)


@integration
def test_windows_of_a_job_stopped_days_ago_are_still_found(mongo_db):
    # Given windows on three days long ago
    insert(mongo_db, c.ACTIVE_USERS, [active(T0 + timedelta(days=d), d + 1) for d in (0, 1, 2)])
    # When the recent windows are asked for a month later
    got = reads.recent_active_windows(mongo_db, T0 + timedelta(days=30))
    # Then the newest two stored days answer
    assert [w[c.ACTIVE_USERS_COUNT] for w in got] == [3, 2]


@integration
def test_the_series_reads_only_the_days_it_needs_and_keeps_the_range(mongo_db):
    # Given one window per hour for three days
    insert(mongo_db, c.ACTIVE_USERS, [active(T0 - timedelta(hours=h), h) for h in range(72)])
    # When the 24 hours before the newest are asked for
    got = reads.active_users_series(mongo_db, T0 - timedelta(hours=24), T0)
    # Then the windows after the start up to the end come back, oldest first
    assert [w[c.ACTIVE_USERS_COUNT] for w in got] == list(range(23, -1, -1))


@integration
def test_page_views_of_a_window_are_its_panes_summed_most_viewed_first(known_db):
    # When the page-views window ending 10:15 is asked for, at most three pages
    got = reads.page_views(known_db, DEFAULT_LAYOUT, T0 + 15 * MIN, 3)
    # Then its panes 10:00..10:14 are summed (/home 10 + 20), the older pane's /old left out, totals over all pages
    assert got.window == {c.WINDOW_START: T0, c.WINDOW_END: T0 + 15 * MIN}
    assert got.pages == [{c.PAGE_URL: "/home", c.VIEWS: 30}, {c.PAGE_URL: "/products", c.VIEWS: 20},
                         {c.PAGE_URL: "/cart", c.VIEWS: 5}]
    assert (got.total_views, got.distinct_pages) == (56, 4)


@integration
def test_a_window_ends_at_the_last_slide_boundary_before_the_instant_asked_for(known_db):
    # When the window ending by 10:15:59 is asked for
    got = reads.page_views(known_db, DEFAULT_LAYOUT, T0 + 15 * MIN + timedelta(seconds=59), 10)
    # Then it is the one ending 10:15
    assert got.window[c.WINDOW_END] == T0 + 15 * MIN


@integration
def test_users_of_a_window_have_their_distinct_sessions_and_summed_events(known_db):
    # When the users of the sessions window ending 10:15 are asked for
    window, users = reads.window_users(known_db, DEFAULT_LAYOUT, T0 + 15 * MIN)
    # Then u1..u5 come back with distinct sessions over the window's panes and their events; u9 (pane 10:09) not
    assert window == {c.WINDOW_START: T0 + 10 * MIN, c.WINDOW_END: T0 + 15 * MIN}
    assert sorted((u[c.USER_ID], u[c.SESSIONS], u[c.EVENTS]) for u in users) == [
        ("u1", 1, 5), ("u2", 1, 9), ("u3", 2, 4), ("u4", 3, 20), ("u5", 1, 1)]


@integration
def test_sessions_give_the_histogram_and_top_users_by_events_then_sessions(known_db):
    got = reads.sessions(known_db, DEFAULT_LAYOUT, T0 + 15 * MIN, top=2)
    assert got.histogram == [(1, 3), (2, 1), (3, 1)] and got.users == 5
    assert [u[c.USER_ID] for u in got.top_users] == ["u4", "u2"]


@integration
def test_keys_with_dots_dollars_and_bars_come_back_as_they_were(mongo_db):
    # Given a page URL and a user and session id that are not valid field names as they are
    insert(mongo_db, c.PAGE_VIEWS, [page(T0, "/a.b?$c=1|2", 3)])
    insert(mongo_db, c.USER_SESSIONS, [session(T0, "$user.1", "s|1.x", 2)])
    # When the windows holding them are read
    pages = reads.page_views(mongo_db, DEFAULT_LAYOUT, T0 + MIN, 10)
    _, users = reads.window_users(mongo_db, DEFAULT_LAYOUT, T0 + MIN)
    # Then the keys are the original text
    assert pages.pages == [{c.PAGE_URL: "/a.b?$c=1|2", c.VIEWS: 3}]
    assert users == [{c.USER_ID: "$user.1", c.SESSIONS: 1, c.EVENTS: 2}]


@integration
def test_health_is_the_minutes_before_the_newest_batch_and_that_batch_whole(known_db):
    # Given batches at 10:15:00 and 10:15:30 for both queries, and one an hour later
    insert(known_db, c.PIPELINE_METRICS, [batch(c.AGGREGATES_QUERY, T0 + 75 * MIN, 3, 1, 1.0)])
    # When 15 minutes of health are read two hours later (the job stopped an hour ago)
    got = reads.health(known_db, LATER, timedelta(minutes=15), limit=100)
    # Then only the newest minute is in range, and the newest aggregates batch comes whole
    assert [(p[c.QUERY], p[c.MINUTE]) for p in got.points] == [(c.AGGREGATES_QUERY, T0 + 75 * MIN)]
    assert got.newest[c.TIMESTAMP] == T0 + 75 * MIN
    assert (got.newest_aggregates_batch[c.BATCH_ID], got.newest_aggregates_batch[c.INPUT_ROWS]) == (3, 1)


@integration
def test_invalid_events_of_a_range_come_whole_and_newest_first(known_db):
    # When the invalid events of 10:00..10:13 are read
    got = reads.invalid_events(known_db, T0, T0 + 13 * MIN, limit=10)
    # Then the two malformed ones come back newest first, with raw text and Kafka coordinates
    assert [e[c.OFFSET] for e in got] == [8, 7]
    assert got[0][c.RAW] == "][" and c.ID not in got[0]


@integration
def test_reads_on_an_empty_database_return_nothing(mongo_db):
    # Given a database the job has not written to, Then every read answers empty instead of failing
    assert reads.layout(mongo_db) is None
    assert reads.recent_active_windows(mongo_db, T0) == []
    assert reads.newest_aggregate(mongo_db, T0) is None
    assert reads.page_views(mongo_db, DEFAULT_LAYOUT, T0, 5).pages == []
    assert reads.window_users(mongo_db, DEFAULT_LAYOUT, T0)[1] == []
    assert reads.health(mongo_db, T0, timedelta(hours=1), 10) == reads.Health()
    assert reads.invalid_events(mongo_db, T0 - timedelta(hours=1), T0, 10) == []


def test_latest_complete_window_is_the_newest_that_ended_by_now():
    # Given windows starting 10:00..10:04 (5 min long), newest first, and now = 10:07:30
    windows = [active(T0 + i * MIN, 10 + i) for i in range(4, -1, -1)]
    # When the latest complete window is picked
    latest, previous = reads.latest_complete(windows, T0 + 7 * MIN + timedelta(seconds=30))
    # Then it is the one ending 10:07 (start 10:02), and the one stored before it starts 10:01
    assert latest[c.WINDOW_START] == T0 + 2 * MIN
    assert previous[c.WINDOW_START] == T0 + MIN


def test_when_every_window_is_still_open_the_newest_is_the_latest():
    windows = [active(T0 + i * MIN, 1) for i in range(2, -1, -1)]
    latest, previous = reads.latest_complete(windows, T0 + 4 * MIN)
    assert (latest[c.WINDOW_START], previous[c.WINDOW_START]) == (T0 + 2 * MIN, T0 + MIN)


@pytest.mark.parametrize(("collection", "fields"), [
    (c.ACTIVE_USERS, [c.DAY]),
    (c.PAGE_VIEWS, [c.PANE_START]),
    (c.USER_SESSIONS, [c.PANE_START]),
    (c.PIPELINE_MINUTES, [c.HOUR, c.MINUTE]),
    (c.PIPELINE_MINUTES, [c.MINUTE]),
    (c.INVALID_EVENTS, [c.HOUR, c.KAFKA_TIMESTAMP]),
    (c.INVALID_EVENTS, [c.DAY, c.KAFKA_TIMESTAMP]),
    (c.BOT_ACTIVITY, [c.HOUR, c.SECOND]),
    (c.BOT_ACTIVITY, [c.DAY, c.SECOND]),
    (c.DEAD_LETTERS, [c.HOUR, c.FAILED_AT]),
    (c.DEAD_LETTERS, [c.DAY, c.FAILED_AT]),
])
def test_every_read_shape_is_served_by_a_declared_index(collection, fields):
    # Each read filters on the first field (equality) and sorts on the last: an index must start so
    prefixes = [[k for k, _ in keys[:len(fields)]] for coll, keys, _ in INDEXES if coll == collection]
    assert fields in prefixes
