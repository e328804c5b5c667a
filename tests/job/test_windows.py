"""Dedup, active-users windows and the panes of sessions and page views, on tiny static frames with hand-computed results."""

from __future__ import annotations

from datetime import datetime, timedelta

from chispa import assert_df_equality

from streaming_job.pipeline import run_steps
from streaming_job.settings import WindowSpec
from streaming_job.windows import (
    ACTIVE_USERS,
    BOT_ACTIVITY,
    MAX_LISTED_WINDOWS,
    PAGE_VIEWS,
    USER_SESSIONS,
    aggregate,
    deduplicate,
    kafka_position,
    over_bot_limit,
    window_rows,
    with_watermark,
    with_window_start,
)

FIVE = WindowSpec(timedelta(minutes=5), timedelta(minutes=1))
FIFTEEN = WindowSpec(timedelta(minutes=15), timedelta(minutes=1))
EVENTS_SCHEMA = ("event_time timestamp, user_id string, session_id string, event_type string, page_url string, "
                 "dedup_key string")
OUT_SCHEMA = ("kind string, window_start timestamp_ntz, window_end timestamp_ntz, key string, subkey string, "
              "events long, users int, first long, last long")


def t(hh: int, mm: int, ss: int = 0, ms: int = 0) -> datetime:
    return datetime(2026, 11, 23, hh, mm, ss, ms * 1000)


def slots_of(spark, rows, active=FIVE, sessions=FIVE, pages=FIFTEEN):
    steps = [
        with_watermark(timedelta(minutes=10)),
        deduplicate,
        window_rows(active, sessions, pages, timedelta(minutes=10)),
        aggregate,
        with_window_start(active, sessions, pages),
    ]
    return run_steps(spark.createDataFrame(rows, EVENTS_SCHEMA), steps)


def kind(df, k: str):
    return df.where(df.kind == k).orderBy("window_start", "key", "subkey")


def test_an_event_exactly_on_a_minute_boundary_opens_the_window_that_starts_there(spark):
    # Given one click at exactly 10:05:00.000
    df = slots_of(spark, [(t(10, 5), "u1", "s1", "click", None, "id:1")])
    # Then it is in the five active-users windows starting 10:01..10:05, not in the one ending at 10:05
    expected = spark.createDataFrame(
        [(ACTIVE_USERS, t(10, m), t(10, m + 5), "", "", 1, 1, None, None) for m in range(1, 6)], OUT_SCHEMA)
    assert_df_equality(kind(df, ACTIVE_USERS), expected, ignore_nullable=True)


def test_an_event_just_before_a_boundary_belongs_to_the_earlier_windows(spark):
    # Given one click a millisecond before 10:05
    df = slots_of(spark, [(t(10, 4, 59, 999), "u1", "s1", "click", None, "id:1")])
    # Then its windows start 10:00..10:04 and its pane is 10:04..10:05
    assert [r.window_start for r in kind(df, ACTIVE_USERS).collect()] == [t(10, m) for m in range(0, 5)]
    assert [(r.window_start, r.window_end) for r in kind(df, USER_SESSIONS).collect()] == [(t(10, 4), t(10, 5))]


def test_windows_of_more_slides_than_are_listed_hold_the_event_in_each_of_them(spark):
    # Given active-users windows one slide longer than the windows whose slots are listed one by one
    slides = MAX_LISTED_WINDOWS + 1
    long = WindowSpec(timedelta(minutes=slides), timedelta(minutes=1))
    # When a click at 10:00:30 is aggregated
    df = slots_of(spark, [(t(10, 0, 30), "u1", "s1", "click", None, "id:1")], active=long)
    # Then it counts once in each window holding 10:00:30, from the one starting at 10:00 back `slides` minutes
    expected = [t(10, 0) - timedelta(minutes=m) for m in reversed(range(slides))]
    assert [(r.window_start, r.users) for r in kind(df, ACTIVE_USERS).collect()] == [(s, 1) for s in expected]


def test_active_users_count_distinct_users_per_window(spark):
    # Given u1 twice and u2 once, all between 10:02 and 10:03
    rows = [(t(10, 2, 10), "u1", "s1", "click", None, "id:1"),
            (t(10, 2, 20), "u1", "s2", "click", None, "id:2"),
            (t(10, 2, 30), "u2", "s3", "login", None, "id:3")]
    # When they are aggregated
    got = kind(slots_of(spark, rows), ACTIVE_USERS).select("window_start", "events", "users")
    # Then each of the 5 windows holding 10:02 has 3 events from 2 users
    expected = spark.createDataFrame([(t(9, 58) + timedelta(minutes=i), 3, 2) for i in range(5)],
                                     "window_start timestamp_ntz, events long, users int")
    assert_df_equality(got, expected, ignore_nullable=True)


def test_user_sessions_count_events_per_user_and_session_in_one_minute_panes(spark):
    # Given u1 in two sessions within one minute, and again in the next minute
    rows = [(t(10, 2, 10), "u1", "s1", "click", None, "id:1"),
            (t(10, 2, 20), "u1", "s2", "page_view", "/a", "id:2"),
            (t(10, 2, 30), "u1", "s1", "purchase", None, "id:3"),
            (t(10, 3, 0), "u1", "s1", "click", None, "id:4")]
    # When they are aggregated
    got = kind(slots_of(spark, rows), USER_SESSIONS)
    # Then each (pane, user, session) holds its events: one row per event, not one per window it falls in
    expected = spark.createDataFrame([(USER_SESSIONS, t(10, 2), t(10, 3), "u1", "s1", 2, 0, None, None),
                                      (USER_SESSIONS, t(10, 2), t(10, 3), "u1", "s2", 1, 0, None, None),
                                      (USER_SESSIONS, t(10, 3), t(10, 4), "u1", "s1", 1, 0, None, None)], OUT_SCHEMA)
    assert_df_equality(got, expected, ignore_nullable=True)


def test_page_views_count_only_page_view_events_per_url_and_pane(spark):
    # Given two views of /a and a click on /a in one minute, and a view of /b later
    rows = [(t(10, 0, 1), "u1", "s1", "page_view", "/a", "id:1"),
            (t(10, 0, 2), "u2", "s2", "page_view", "/a", "id:2"),
            (t(10, 0, 3), "u2", "s2", "click", "/a", "id:3"),
            (t(10, 14, 59), "u3", "s3", "page_view", "/b", "id:4")]
    # When they are aggregated
    got = kind(slots_of(spark, rows), PAGE_VIEWS)
    # Then each URL has one row per pane with its views (the click is not a view)
    expected = spark.createDataFrame([(PAGE_VIEWS, t(10, 0), t(10, 1), "/a", "", 2, 0, None, None),
                                      (PAGE_VIEWS, t(10, 14), t(10, 15), "/b", "", 1, 0, None, None)], OUT_SCHEMA)
    assert_df_equality(got, expected, ignore_nullable=True)


def test_a_page_view_becomes_seven_rows_with_the_default_windows(spark):
    # Given one page view, When it is expanded into slot rows (before aggregation)
    df = spark.createDataFrame([(t(10, 0, 1), "u1", "s1", "page_view", "/a", "id:1")], EVENTS_SCHEMA)
    rows = window_rows(FIVE, FIVE, FIFTEEN, timedelta(minutes=10))(df).collect()
    # Then it is 5 active-users windows, 1 sessions pane and 1 page-views pane
    assert sorted(r.kind for r in rows) == [ACTIVE_USERS] * 5 + [PAGE_VIEWS, USER_SESSIONS]


def test_duplicate_deliveries_count_once(spark):
    # Given the same event (same event_id) delivered three times
    rows = [(t(10, 2), "u1", "s1", "page_view", "/a", "id:1")] * 3
    # When they are aggregated, Then every window and pane counts it once
    assert {r.events for r in slots_of(spark, rows).collect()} == {1}


def test_window_size_and_slide_are_configurable(spark):
    # Given 10-minute active-users windows sliding by 5 minutes and 10-minute session panes
    ten_by_five = WindowSpec(timedelta(minutes=10), timedelta(minutes=5))
    got = slots_of(spark, [(t(10, 7), "u1", "s1", "click", None, "id:1")], active=ten_by_five,
                   sessions=WindowSpec(timedelta(minutes=20), timedelta(minutes=10)))
    # Then the event is in the two windows holding 10:07, and in the pane 10:00..10:10 (one slide long)
    assert [(r.window_start, r.window_end) for r in kind(got, ACTIVE_USERS).collect()] == [(t(10, 0), t(10, 10)),
                                                                                         (t(10, 5), t(10, 15))]
    assert [(r.window_start, r.window_end) for r in kind(got, USER_SESSIONS).collect()] == [(t(10, 0), t(10, 10))]


BOT_EVENTS_SCHEMA = f"{EVENTS_SCHEMA}, partition int, offset long"


def bot_rows(spark, rows, limit=10):
    steps = [
        with_watermark(timedelta(minutes=10)),
        deduplicate,
        window_rows(FIVE, FIVE, FIFTEEN, timedelta(minutes=10), bots=True),
        aggregate,
        over_bot_limit(limit),
        with_window_start(FIVE, FIVE, FIFTEEN),
    ]
    return kind(run_steps(spark.createDataFrame(rows, BOT_EVENTS_SCHEMA), steps), BOT_ACTIVITY)


def test_a_user_over_the_limit_in_one_second_is_a_bot_for_that_second_with_its_first_and_last_kafka_position(spark):
    # Given 12 events of u1 in the second 10:00:07 (offsets 100..111 of partition 2) and one in the next second
    rows = [(t(10, 0, 7, 80 * i), "u1", "s1", "click", None, f"id:{i}", 2, 100 + i) for i in range(12)]
    rows.append((t(10, 0, 8), "u1", "s1", "click", None, "id:x", 2, 200))
    # When they are aggregated with a limit of 10 events a second
    got = bot_rows(spark, rows).collect()
    # Then the one second over the limit is kept, with 12 events from partition 2, offsets 100 to 111
    assert [(r.window_start, r.window_end, r.key, r.events) for r in got] == [(t(10, 0, 7), t(10, 0, 8), "u1", 12)]
    assert (kafka_position(got[0].first), kafka_position(got[0].last)) == ((2, 100), (2, 111))


def test_a_users_minute_is_one_state_row_and_each_of_its_seconds_over_the_limit_comes_out_alone(spark):
    # Given u1's bursts in 10:00:07 (12 events) and 10:00:59 (11), 3 events in 10:00:30, and 12 in 10:01:00
    bursts = [(7, 12), (59, 11), (30, 3), (60, 12)]
    rows, offset = [], 0
    for second, n in bursts:
        for i in range(n):
            rows.append((t(10, 0) + timedelta(seconds=second, milliseconds=50 * i), "u1", "s1", "click", None,
                         f"id:{offset}", 1, offset))
            offset += 1
    events = spark.createDataFrame(rows, BOT_EVENTS_SCHEMA)
    slots = run_steps(events, [with_watermark(timedelta(minutes=10)), deduplicate,
                               window_rows(FIVE, FIVE, FIFTEEN, timedelta(minutes=10), bots=True), aggregate])
    # When they are aggregated, Then the state holds one bot row per minute of the user
    assert [(r.window_end, r.events) for r in slots.where(slots.kind == BOT_ACTIVITY).orderBy("window_end").collect()] == [
        (t(10, 1), 26), (t(10, 2), 12)]
    # And each second over the limit comes out with its own count and first and last offset
    got = bot_rows(spark, rows).collect()
    assert [(r.window_start, r.events, kafka_position(r.first), kafka_position(r.last)) for r in got] == [
        (t(10, 0, 7), 12, (1, 0), (1, 11)),
        (t(10, 0, 59), 11, (1, 12), (1, 22)),
        (t(10, 1, 0), 12, (1, 26), (1, 37)),
    ]


def test_a_user_at_the_limit_is_a_person(spark):
    # Given exactly 10 events of u1 within one second (and duplicates of them, which count once)
    rows = [(t(10, 0, 7, 90 * i), "u1", "s1", "click", None, f"id:{i}", 0, i) for i in range(10)] * 2
    # Then nobody is a bot
    assert bot_rows(spark, rows).count() == 0


def test_without_bot_flagging_no_second_is_counted(spark):
    # Given a burst of 20 events, When the slots are built without bot flagging, Then there is no bot row at all
    rows = [(t(10, 0, 7), "u1", "s1", "click", None, f"id:{i}", 0, i) for i in range(20)]
    got = run_steps(spark.createDataFrame(rows, BOT_EVENTS_SCHEMA),
                    [window_rows(FIVE, FIVE, FIFTEEN, timedelta(minutes=10)), aggregate])
    assert got.where(got.kind == BOT_ACTIVITY).count() == 0


AGGREGATED_SCHEMA = ("kind string, window_end timestamp, key string, subkey string, events long, users int, first long, "
                     "last long, members array<string>")


def test_only_bot_minutes_are_split_into_their_seconds_and_every_other_row_passes_unchanged(spark):
    # Given one row of each other aggregate, a bot minute with 11 events in its second 07 (and one in 08), and a
    # minute whose 11 events are spread over two seconds
    burst = [f"07:{100 + i}" for i in range(11)] + ["08:200"]
    spread = [f"{s:02d}:{300 + i}" for i, s in enumerate([1] * 6 + [2] * 5)]
    rows = [
        (ACTIVE_USERS, t(10, 5), "", "", 3, 2, None, None, ["u1", "u2"]),
        (USER_SESSIONS, t(10, 1), "u1", "s1", 2, 0, None, None, []),
        (PAGE_VIEWS, t(10, 1), "/home", "", 4, 0, None, None, []),
        (BOT_ACTIVITY, t(10, 1), "bot", "", 12, 12, 100, 200, burst),
        (BOT_ACTIVITY, t(10, 1), "person", "", 11, 11, 300, 310, spread),
    ]
    # When bot minutes are turned into their seconds over a limit of 10
    got = run_steps(spark.createDataFrame(rows, AGGREGATED_SCHEMA), [over_bot_limit(10)])
    # Then the other rows are as they were (without members), and the bot's one second over the limit comes out alone,
    # with its count and first and last position; the person's minute gives nothing
    expected = spark.createDataFrame([
        (ACTIVE_USERS, t(10, 5), "", "", 3, 2, None, None),
        (USER_SESSIONS, t(10, 1), "u1", "s1", 2, 0, None, None),
        (PAGE_VIEWS, t(10, 1), "/home", "", 4, 0, None, None),
        (BOT_ACTIVITY, t(10, 0, 8), "bot", "", 11, 0, 100, 110),
    ], "kind string, window_end timestamp, key string, subkey string, events long, users int, first long, last long")
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)
