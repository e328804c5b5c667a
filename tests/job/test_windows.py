"""Dedup and the three sliding-window aggregates, on tiny static frames with hand-computed results."""

from __future__ import annotations

from datetime import datetime, timedelta

from chispa import assert_df_equality

from streaming_job.pipeline import run_steps
from streaming_job.settings import WindowSpec
from streaming_job.windows import aggregate, deduplicate, window_rows, with_watermark, with_window_start

FIVE = WindowSpec(timedelta(minutes=5), timedelta(minutes=1))
FIFTEEN = WindowSpec(timedelta(minutes=15), timedelta(minutes=1))
EVENTS_SCHEMA = ("event_time timestamp, user_id string, session_id string, event_type string, page_url string, "
                 "dedup_key string")
OUT_SCHEMA = "kind string, window_start timestamp_ntz, window_end timestamp_ntz, key string, events long, members int"


def t(hh: int, mm: int, ss: int = 0, ms: int = 0) -> datetime:
    return datetime(2026, 11, 23, hh, mm, ss, ms * 1000)


def windows_of(spark, rows, active=FIVE, sessions=FIVE, pages=FIFTEEN):
    steps = [
        with_watermark(timedelta(minutes=10)),
        deduplicate,
        window_rows(active, sessions, pages, timedelta(minutes=10)),
        aggregate,
        with_window_start(active, sessions, pages),
    ]
    return run_steps(spark.createDataFrame(rows, EVENTS_SCHEMA), steps)


def kind(df, k: str):
    return df.where(df.kind == k).orderBy("window_start", "key")


def test_an_event_exactly_on_a_minute_boundary_opens_the_window_that_starts_there(spark):
    # Given one click at exactly 10:05:00.000
    df = windows_of(spark, [(t(10, 5), "u1", "s1", "click", None, "id:1")])
    # Then it is in the five windows starting 10:01..10:05, not in the one ending at 10:05
    expected = spark.createDataFrame(
        [("a", t(10, m), t(10, m + 5), "", 1, 1) for m in range(1, 6)], OUT_SCHEMA)
    assert_df_equality(kind(df, "a"), expected, ignore_nullable=True)


def test_an_event_just_before_a_boundary_belongs_to_the_earlier_windows(spark):
    df = windows_of(spark, [(t(10, 4, 59, 999), "u1", "s1", "click", None, "id:1")])
    starts = [r.window_start for r in kind(df, "a").collect()]
    assert starts == [t(10, m) for m in range(0, 5)]


def test_active_users_count_distinct_users_per_window(spark):
    # Given u1 twice and u2 once, all between 10:02 and 10:03
    rows = [(t(10, 2, 10), "u1", "s1", "click", None, "id:1"),
            (t(10, 2, 20), "u1", "s2", "click", None, "id:2"),
            (t(10, 2, 30), "u2", "s3", "login", None, "id:3")]
    # Then each of the 5 windows holding 10:02 has 2 active users
    expected = spark.createDataFrame([("a", t(9, 58 + i) if i < 2 else t(10, i - 2), None, "", 3, 2) for i in range(5)],
                                     OUT_SCHEMA)
    got = kind(windows_of(spark, rows), "a").select("window_start", "members")
    assert_df_equality(got, expected.select("window_start", "members"), ignore_nullable=True)


def test_user_sessions_count_distinct_sessions_and_all_events(spark):
    rows = [(t(10, 2, 10), "u1", "s1", "click", None, "id:1"),
            (t(10, 2, 20), "u1", "s2", "page_view", "/a", "id:2"),
            (t(10, 2, 30), "u1", "s1", "purchase", None, "id:3")]
    got = kind(windows_of(spark, rows), "u").select("key", "events", "members").distinct()
    expected = spark.createDataFrame([("u1", 3, 2)], "key string, events long, members int")
    assert_df_equality(got, expected, ignore_nullable=True)


def test_page_views_count_only_page_view_events_per_url_in_15_minute_windows(spark):
    rows = [(t(10, 0, 1), "u1", "s1", "page_view", "/a", "id:1"),
            (t(10, 0, 2), "u2", "s2", "page_view", "/a", "id:2"),
            (t(10, 0, 3), "u2", "s2", "click", "/a", "id:3"),
            (t(10, 14, 59), "u3", "s3", "page_view", "/b", "id:4")]
    got = kind(windows_of(spark, rows), "p")
    counts = {(r.window_start, r.key): r.events for r in got.collect()}
    # /a: windows starting 09:46..10:00 (15 of them), 2 views each; /b: windows starting 10:00..10:14
    assert {k: v for k, v in counts.items() if k[1] == "/a"} == {(t(9, 46) + timedelta(minutes=i), "/a"): 2 for i in range(15)}
    assert {k[0] for k in counts if k[1] == "/b"} == {t(10, i) for i in range(15)}
    assert counts[(t(10, 0), "/b")] == 1
    assert all(r.window_end - r.window_start == timedelta(minutes=15) for r in got.collect())


def test_duplicate_deliveries_count_once(spark):
    # Given the same event (same event_id) delivered three times
    rows = [(t(10, 2), "u1", "s1", "page_view", "/a", "id:1")] * 3
    got = windows_of(spark, rows)
    # Then every window counts it once
    assert {r.events for r in got.collect()} == {1}


def test_window_size_and_slide_are_configurable(spark):
    ten_by_five = WindowSpec(timedelta(minutes=10), timedelta(minutes=5))
    got = windows_of(spark, [(t(10, 7), "u1", "s1", "click", None, "id:1")], active=ten_by_five)
    assert [(r.window_start, r.window_end) for r in kind(got, "a").collect()] == [(t(10, 0), t(10, 10)),
                                                                                    (t(10, 5), t(10, 15))]
