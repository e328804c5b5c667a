"""Which windows one render picks, on live and on replayed (historical) data, against the real server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from reporting.loading import SAMPLE_RAW_CHARS, PageRequest, load_page_data
from storage import contract as c
from tests.reporting.documents import MIN, T0, active, batch, bot_second, insert, invalid, page, session

pytestmark = pytest.mark.integration

HOUR = PageRequest(timedelta(hours=1), top_pages=10, top_users=10)
NOW = datetime(2026, 3, 1, 12, 0, 30, tzinfo=UTC)
NOW_MIN = NOW.replace(second=0)


def test_live_data_uses_the_newest_window_that_has_ended(mongo_db):
    # Given 5-min windows starting 11:50..11:59 at 12:00:30: those starting after 11:55 are still open
    insert(mongo_db, c.ACTIVE_USERS, [active(NOW_MIN - i * MIN, 100 + i) for i in range(1, 11)])
    # When the page loads
    data = load_page_data(mongo_db, HOUR, NOW)
    # Then the KPI window is 11:55-12:00 (the newest ended), compared with 11:54, and the line stops there
    assert data.latest_active[c.WINDOW_START] == NOW_MIN - 5 * MIN
    assert data.previous_active[c.WINDOW_START] == NOW_MIN - 6 * MIN
    assert data.newest_active[c.WINDOW_START] == NOW_MIN - MIN
    assert data.range_end == NOW_MIN
    assert data.series[-1][c.WINDOW_START] == NOW_MIN - 5 * MIN


def test_when_every_window_is_still_open_the_newest_is_shown(mongo_db):
    # Given only windows that end after now (events stamped slightly in the future)
    insert(mongo_db, c.ACTIVE_USERS, [active(NOW_MIN - MIN, 5), active(NOW_MIN, 6)])
    data = load_page_data(mongo_db, HOUR, NOW)
    assert data.latest_active[c.WINDOW_START] == NOW_MIN
    assert data.previous_active[c.WINDOW_START] == NOW_MIN - MIN


def test_an_ended_window_behind_many_open_ones_is_still_found(mongo_db):
    # Given ten open 15-min windows (wide clock skew) in front of one that ended
    insert(mongo_db, c.ACTIVE_USERS, [active(NOW_MIN - 20 * MIN, 1, size=15 * MIN)]
           + [active(NOW_MIN + i * MIN, 2, size=15 * MIN) for i in range(-9, 1)])
    data = load_page_data(mongo_db, HOUR, NOW)
    assert data.latest_active[c.WINDOW_START] == NOW_MIN - 20 * MIN


def test_the_line_reaches_back_into_earlier_days(mongo_db):
    # Given one window per hour for three days, read at noon with a 2-day range
    insert(mongo_db, c.ACTIVE_USERS, [active(NOW_MIN - timedelta(hours=h), h) for h in range(1, 72)])
    data = load_page_data(mongo_db, PageRequest(timedelta(days=2), top_pages=10, top_users=10), NOW)
    # Then the line holds the 48 windows starting after two days before the latest one, oldest first
    assert data.latest_active[c.WINDOW_START] == NOW_MIN - timedelta(hours=1)
    assert [w[c.ACTIVE_USERS_COUNT] for w in data.series] == list(range(48, 0, -1))


def test_replayed_data_is_shown_up_to_its_own_newest_window(mongo_db):
    # Given windows of a January morning and an invalid event among them, read in March
    insert(mongo_db, c.ACTIVE_USERS, [active(T0 + i * MIN, i) for i in range(5)])
    insert(mongo_db, c.INVALID_EVENTS, [invalid(1, "bad_timestamp", T0 + 2 * MIN)])
    data = load_page_data(mongo_db, HOUR, NOW)
    # Then the range ends with the newest January window, so the invalid event is in it
    assert data.range_end == T0 + 9 * MIN
    assert data.invalid_range == (T0 + 9 * MIN - timedelta(hours=1), T0 + 9 * MIN)
    assert [e[c.REASON] for e in data.invalid_events] == ["bad_timestamp"]


def test_live_invalid_events_are_shown_up_to_now(mongo_db):
    insert(mongo_db, c.ACTIVE_USERS, [active(NOW_MIN - 6 * MIN, 1)])
    insert(mongo_db, c.INVALID_EVENTS, [invalid(1, "malformed_json", NOW - timedelta(seconds=10))])
    data = load_page_data(mongo_db, HOUR, NOW)
    assert data.invalid_range == (NOW - timedelta(hours=1), NOW)
    assert len(data.invalid_events) == 1


def test_page_and_session_figures_describe_the_windows_ending_with_the_latest_active_users_window(mongo_db):
    # Given active-users windows up to 10:01-10:06, and panes of pages and sessions inside and outside the windows
    # ending 10:06
    insert(mongo_db, c.ACTIVE_USERS, [active(T0, 2), active(T0 + MIN, 1)])
    insert(mongo_db, c.PAGE_VIEWS, [page(T0 - 10 * MIN, "/in", 2), page(T0 - 9 * MIN, "/old", 1),
                                    page(T0 + 5 * MIN, "/in", 1), page(T0 + 6 * MIN, "/later", 9)])
    insert(mongo_db, c.USER_SESSIONS, [session(T0 + MIN, "a", "s1", 3), session(T0 + 5 * MIN, "a", "s2", 4),
                                       session(T0, "b", "s1", 1)])
    # When the page loads
    data = load_page_data(mongo_db, HOUR, NOW)
    # Then pages are the 15-min window 09:51-10:06 and sessions the 5-min window 10:01-10:06
    assert data.pages.window == {c.WINDOW_START: T0 - 9 * MIN, c.WINDOW_END: T0 + 6 * MIN}
    assert data.pages.pages == [{c.PAGE_URL: "/in", c.VIEWS: 1}, {c.PAGE_URL: "/old", c.VIEWS: 1}]
    assert data.sessions.window == {c.WINDOW_START: T0 + MIN, c.WINDOW_END: T0 + 6 * MIN}
    assert data.sessions.histogram == [(2, 1)] and [u[c.USER_ID] for u in data.sessions.top_users] == ["a"]


def test_an_empty_database_is_empty(mongo_db):
    assert load_page_data(mongo_db, HOUR, NOW).empty


def test_batches_of_a_job_that_stopped_hours_ago_are_still_found(mongo_db):
    # Given batches of both queries that ended three hours before now, one every 10 minutes for an hour
    stopped = NOW - timedelta(hours=3)
    insert(mongo_db, c.PIPELINE_METRICS, [batch(query, stopped - i * 10 * MIN, i, 10, 1.0)
                                          for query in (c.AGGREGATES_QUERY, c.INVALID_EVENTS_QUERY) for i in range(7)])
    # When the page loads with a 15-minute range
    data = load_page_data(mongo_db, PageRequest(timedelta(minutes=15), top_pages=10, top_users=10), NOW)
    # Then the newest batch is the last one written, and the batches are the 15 minutes up to it, newest first
    assert data.health.newest[c.TIMESTAMP] == stopped
    assert data.health.newest_aggregates_batch[c.BATCH_ID] == 0
    assert [(b[c.QUERY], b[c.BATCH_ID]) for b in data.health.points] in (
        [(c.AGGREGATES_QUERY, 0), (c.INVALID_EVENTS_QUERY, 0), (c.AGGREGATES_QUERY, 1), (c.INVALID_EVENTS_QUERY, 1)],
        [(c.INVALID_EVENTS_QUERY, 0), (c.AGGREGATES_QUERY, 0), (c.INVALID_EVENTS_QUERY, 1), (c.AGGREGATES_QUERY, 1)])


def test_invalid_events_of_a_week_are_read_by_day_and_the_newest_are_the_samples(mongo_db):
    # Given one invalid event per day for ten days, the newest with a long raw text
    insert(mongo_db, c.INVALID_EVENTS, [invalid(d, "malformed_json", NOW - timedelta(days=d, hours=1), raw="x" * 1000)
                                        for d in range(10)])
    # When the page loads with a 7-day range
    data = load_page_data(mongo_db, PageRequest(timedelta(days=7), top_pages=10, top_users=10), NOW)
    # Then the seven events of the last seven days count, newest first, and the samples cut the raw text
    assert [e[c.OFFSET] for e in data.invalid_events] == list(range(7))
    assert data.invalid_samples[0][c.RAW] == "x" * SAMPLE_RAW_CHARS + "…"
    assert len(data.invalid_events[0][c.RAW]) == 1000


def test_bot_seconds_are_read_over_the_same_range_as_invalid_events(mongo_db):
    # Given live data: a window that ended at 11:59 and bot seconds 10 s and 2 hours ago
    insert(mongo_db, c.ACTIVE_USERS, [active(NOW_MIN - 6 * MIN, 1)])
    insert(mongo_db, c.BOT_ACTIVITY, [bot_second("b1", NOW_MIN - timedelta(hours=2), 50),
                                      bot_second("b2", NOW - timedelta(seconds=10), 30)])
    # When the page loads with a 1-hour range
    data = load_page_data(mongo_db, HOUR, NOW)
    # Then the bot seconds of the hour up to now are read (like invalid events of live data)
    assert data.bot_range == data.invalid_range == (NOW - timedelta(hours=1), NOW)
    assert [d[c.USER_ID] for d in data.bot_seconds] == ["b2"]
