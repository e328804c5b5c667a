"""Sliding-window aggregates of valid events: active users, page views per URL, sessions per user.

All three come out of ONE streaming aggregation so that one Kafka read and one state store feed
them. Each event is expanded into one row per (aggregate, window) it belongs to; the row's `kind`
says which aggregate it feeds:

| kind | key       | member     | gives                                       |
|------|-----------|------------|---------------------------------------------|
| `a`  | ''        | user_id    | active_users = distinct members per window  |
| `u`  | user_id   | session_id | sessions = distinct members, events = rows  |
| `p`  | page_url  | NULL       | views = rows (page_view events only)        |

The state keeps, per key, a count and the (small) set of distinct members, so every number is exact.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from clickpulse import events as ev
from streaming_job.settings import WindowSpec
from streaming_job.validation import DEDUP_KEY, EVENT_TIME

KIND = "kind"
KEY = "key"
MEMBER = "member"
WINDOW_START = "window_start"
WINDOW_END = "window_end"
EVENTS = "events"
MEMBERS = "members"
ACTIVE, SESSIONS, PAGES = "a", "u", "p"

# Spark's own marker for an event-time column (EventTimeWatermark.delayKey). Window ends computed
# with arithmetic lose it, and without it the aggregation would never evict old windows.
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


def _windows(spec: WindowSpec, kind: str, key: Column, member: Column) -> Column:
    """Array of (kind, window_end, key, member) for every window of `spec` containing the event."""
    ts_us = F.unix_micros(F.col(EVENT_TIME))
    last_start = F.floor(ts_us / F.lit(spec.slide_us)) * F.lit(spec.slide_us)
    first_start = last_start - F.lit(spec.size_us - spec.slide_us)
    starts = F.sequence(first_start, last_start, F.lit(spec.slide_us))
    return F.transform(
        starts,
        lambda s: F.struct(
            F.lit(kind).alias(KIND),
            F.timestamp_micros(s + F.lit(spec.size_us)).alias(WINDOW_END),
            key.alias(KEY),
            member.alias(MEMBER),
        ),
    )


def window_rows(active: WindowSpec, sessions: WindowSpec, pages: WindowSpec,
                watermark: timedelta) -> Callable[[DataFrame], DataFrame]:
    """Expand each event into its window rows for all three aggregates (see the module docstring)."""
    delay_ms = int(watermark.total_seconds() * 1000)

    def step(df: DataFrame) -> DataFrame:
        is_page_view = F.col(ev.EVENT_TYPE) == ev.PAGE_VIEW
        rows = F.concat(
            _windows(active, ACTIVE, F.lit(""), F.col(ev.USER_ID)),
            _windows(sessions, SESSIONS, F.col(ev.USER_ID), F.col(ev.SESSION_ID)),
            F.when(is_page_view, _windows(pages, PAGES, F.col(ev.PAGE_URL), F.lit(None).cast("string")))
            .otherwise(F.array().cast("array<struct<kind:string,window_end:timestamp,key:string,member:string>>")),
        )
        exploded = df.select(F.explode(rows).alias("w")).select("w.*")
        # Window end is the event-time column of the aggregation: a window is final, and its state
        # can go, once the watermark passes its end.
        return exploded.withColumn(
            WINDOW_END, F.col(WINDOW_END).alias(WINDOW_END, metadata={_WATERMARK_DELAY_KEY: delay_ms})
        )

    return step


def aggregate(df: DataFrame) -> DataFrame:
    """Exact count and distinct members per (kind, window, key)."""
    return df.groupBy(KIND, WINDOW_END, KEY).agg(
        F.count(F.lit(1)).alias(EVENTS),
        F.size(F.collect_set(MEMBER)).alias(MEMBERS),
    )


def with_window_start(active: WindowSpec, sessions: WindowSpec, pages: WindowSpec) -> Callable[[DataFrame], DataFrame]:
    """Add `window_start` (end minus the kind's size) and make both bounds UTC wall-clock timestamps."""

    def step(df: DataFrame) -> DataFrame:
        size_us = (
            F.when(F.col(KIND) == ACTIVE, F.lit(active.size_us))
            .when(F.col(KIND) == SESSIONS, F.lit(sessions.size_us))
            .otherwise(F.lit(pages.size_us))
        )
        end = F.col(WINDOW_END)
        return df.select(
            KIND,
            F.timestamp_micros(F.unix_micros(end) - size_us).cast("timestamp_ntz").alias(WINDOW_START),
            end.cast("timestamp_ntz").alias(WINDOW_END),
            KEY,
            EVENTS,
            MEMBERS,
        )

    return step
