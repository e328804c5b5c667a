"""Sliding-window aggregates of valid events: active users, page views per URL, sessions per user.

All three come out of ONE streaming aggregation so that one Kafka read and one state store feed them. Each event
becomes a few rows, each naming the aggregate (`kind`) it feeds and the time slot it counts in:

| kind            | slot                               | key       | subkey     | gives                               |
|-----------------|------------------------------------|-----------|------------|-------------------------------------|
| `active_users`  | each sliding window of the event   | ''        | ''         | users = distinct user ids           |
| `user_sessions` | the event's pane (one slide long)  | user_id   | session_id | events of the user in that session  |
| `page_views`    | the event's pane                   | page_url  | ''         | events = views (page_view only)     |

Active users need a set of users per window: a distinct count over a window cannot be added up from smaller slices.
Sessions per user and page views can: a window's page views are the sum of its panes' views, and a user's sessions
in a window are the distinct session ids of its panes. So those two are counted per pane (1 row per event instead of
5 or 15), and the read side (storage/reads.py) adds a window's panes up. A 5-minute window sliding by 1 minute and
15-minute page windows make 5 + 1 + 1 = 7 rows per page view (25 when every aggregate was counted per window).

The state keeps, per slot and key, a count and (for active users) the set of distinct users, so every number is exact.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from clickpulse import events as ev
from storage import contract as c
from streaming_job.settings import WindowSpec
from streaming_job.validation import DEDUP_KEY, EVENT_TIME

KIND = "kind"
KEY = "key"
SUBKEY = "subkey"
MEMBER = "member"
WINDOW_START = "window_start"
WINDOW_END = "window_end"
EVENTS = "events"
USERS = "users"
# The aggregates, named as the collections they are stored in.
ACTIVE_USERS, USER_SESSIONS, PAGE_VIEWS = c.ACTIVE_USERS, c.USER_SESSIONS, c.PAGE_VIEWS

_SLOT = f"struct<{KIND}:string,{WINDOW_END}:timestamp,{KEY}:string,{SUBKEY}:string,{MEMBER}:string>"

# Spark's own marker for an event-time column (EventTimeWatermark.delayKey). Slot ends computed
# with arithmetic lose it, and without it the aggregation would never evict old slots.
_WATERMARK_DELAY_KEY = "spark.watermarkDelayMs"


def with_watermark(delay: timedelta) -> Callable[[DataFrame], DataFrame]:
    """Declare event time and how late an event may be before Spark drops it."""
    seconds = int(delay.total_seconds())

    def step(df: DataFrame) -> DataFrame:
        return df.withWatermark(EVENT_TIME, f"{seconds} seconds")

    return step


def deduplicate(df: DataFrame) -> DataFrame:
    """Keep the first delivery of each event (same event_id, or same payload without one).

    State for a key lives until its event time falls behind the watermark; a copy arriving later
    than that is behind the watermark too and is dropped as late, so each event counts once.
    """
    if not df.isStreaming:  # Spark has no within-watermark variant for static frames (tests, backfills)
        return df.dropDuplicates([DEDUP_KEY])
    return df.dropDuplicatesWithinWatermark([DEDUP_KEY])


def _slot(kind: str, end: Column, key: Column, subkey: Column, member: Column) -> Column:
    return F.struct(F.lit(kind).alias(KIND), end.alias(WINDOW_END), key.alias(KEY), subkey.alias(SUBKEY),
                    member.alias(MEMBER))


def _last_start(spec: WindowSpec) -> Column:
    """Start (in epoch microseconds) of the newest window of `spec` holding the event: its pane's start."""
    return F.floor(F.unix_micros(F.col(EVENT_TIME)) / F.lit(spec.slide_us)) * F.lit(spec.slide_us)


def _sliding_windows(spec: WindowSpec, kind: str, key: Column, member: Column) -> Column:
    """Array with a slot for every window of `spec` containing the event."""
    last = _last_start(spec)
    starts = F.sequence(last - F.lit(spec.size_us - spec.slide_us), last, F.lit(spec.slide_us))
    return F.transform(starts, lambda s: _slot(kind, F.timestamp_micros(s + F.lit(spec.size_us)), key, F.lit(""),
                                               member))


def _pane(spec: WindowSpec, kind: str, key: Column, subkey: Column) -> Column:
    """Array with the one slot of the pane (slide-long slice) of `spec` containing the event."""
    end = F.timestamp_micros(_last_start(spec) + F.lit(spec.slide_us))
    return F.array(_slot(kind, end, key, subkey, F.lit(None).cast("string")))


def window_rows(active: WindowSpec, sessions: WindowSpec, pages: WindowSpec,
                watermark: timedelta) -> Callable[[DataFrame], DataFrame]:
    """Expand each event into its slot rows for all three aggregates (see the module docstring)."""
    delay_ms = int(watermark.total_seconds() * 1000)

    def step(df: DataFrame) -> DataFrame:
        is_page_view = F.col(ev.EVENT_TYPE) == ev.PAGE_VIEW
        rows = F.concat(
            _sliding_windows(active, ACTIVE_USERS, F.lit(""), F.col(ev.USER_ID)),
            _pane(sessions, USER_SESSIONS, F.col(ev.USER_ID), F.col(ev.SESSION_ID)),
            F.when(is_page_view, _pane(pages, PAGE_VIEWS, F.col(ev.PAGE_URL), F.lit("")))
            .otherwise(F.array().cast(f"array<{_SLOT}>")),
        )
        exploded = df.select(F.explode(rows).alias("w")).select("w.*")
        # The slot's end is the event-time column of the aggregation: a slot is final, and its state
        # can go, once the watermark passes its end.
        return exploded.withColumn(
            WINDOW_END, F.col(WINDOW_END).alias(WINDOW_END, metadata={_WATERMARK_DELAY_KEY: delay_ms})
        )

    return step


def aggregate(df: DataFrame) -> DataFrame:
    """Exact count of rows and of distinct members per (kind, slot, key, subkey)."""
    return df.groupBy(KIND, WINDOW_END, KEY, SUBKEY).agg(
        F.count(F.lit(1)).alias(EVENTS),
        F.size(F.collect_set(MEMBER)).alias(USERS),
    )


def with_window_start(active: WindowSpec, sessions: WindowSpec, pages: WindowSpec) -> Callable[[DataFrame], DataFrame]:
    """Add the slot's start (a window's size before its end, a pane's slide) and make both bounds UTC wall-clock."""

    def step(df: DataFrame) -> DataFrame:
        length_us = (
            F.when(F.col(KIND) == ACTIVE_USERS, F.lit(active.size_us))
            .when(F.col(KIND) == USER_SESSIONS, F.lit(sessions.slide_us))
            .otherwise(F.lit(pages.slide_us))
        )
        end = F.col(WINDOW_END)
        return df.select(
            KIND,
            F.timestamp_micros(F.unix_micros(end) - length_us).cast("timestamp_ntz").alias(WINDOW_START),
            end.cast("timestamp_ntz").alias(WINDOW_END),
            KEY,
            SUBKEY,
            EVENTS,
            USERS,
        )

    return step
