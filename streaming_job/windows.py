"""Sliding-window aggregates of valid events: active users, page views per URL, sessions per user.

All three come out of ONE streaming aggregation so that one Kafka read and one state store feed them. Each event
becomes a few rows, each naming the aggregate (`kind`) it feeds and the time slot it counts in:

| kind            | slot                               | key       | subkey     | gives                               |
|-----------------|------------------------------------|-----------|------------|-------------------------------------|
| `active_users`  | each sliding window of the event   | ''        | ''         | users = distinct user ids           |
| `user_sessions` | the event's pane (one slide long)  | user_id   | session_id | events of the user in that session  |
| `page_views`    | the event's pane                   | page_url  | ''         | events = views (page_view only)     |
| `bot_activity`  | the event's minute (when flagged)  | user_id   | ''         | each event's second and position    |

Active users need a set of users per window: a distinct count over a window cannot be added up from smaller slices.
Sessions per user and page views can: a window's page views are the sum of its panes' views, and a user's sessions
in a window are the distinct session ids of its panes. So those two are counted per pane (1 row per event instead of
5 or 15), and the read side (storage/reads.py) adds a window's panes up. A 5-minute window sliding by 1 minute and
15-minute page windows make 5 + 1 + 1 = 7 rows per page view (25 when every aggregate was counted per window).

The state keeps, per slot and key, a count and (for active users) the set of distinct users, so every number is exact.

Bots: a user with more valid events than the limit in one second of event time is a bot for that second. The
`bot_activity` rows keep, per user and minute, the set of the user's events as (second, Kafka position) members;
`over_bot_limit` turns a row into the seconds over the limit with their counts and first and last positions. A row per
minute rather than per second: at 2,000 events/s from 10,000 users nearly every event opened a (user, second) row,
and those were 0.8M of the 0.9M rows that every batch's eviction scans; a minute holds a user's events in one row.

Keeping the bot's events out of the other aggregates would need a second stateful operator that ranks a user's events
in offset order across batches before the aggregation: Spark allows one only as a Python (pandas, Arrow) stateful
function on every event, which this job does not run on its hot path. So bot events still count; they are recorded,
and the report shows the figures that stay exact without bot users.

The output steps (`over_bot_limit`, `with_window_start`) run on every micro-batch, in the driver's Python, before the
batch can start. Each Spark Column built there is a round trip to the JVM: a batch's output plan took about 1,200 of
them (70 to 190 ms a batch). So these steps build their Columns at the first batch and keep them; later batches only
apply them. A Column names its inputs and is not bound to a DataFrame, so one serves every batch.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from functools import cache

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
MEMBERS = "members"  # the distinct members of a slot (the aggregation's set, which `USERS` counts)
POSITION = "position"  # a Kafka record's partition and offset in one long: partition * 2**40 + offset
FIRST = "first"
LAST = "last"
# The aggregates, named as the collections they are stored in.
ACTIVE_USERS, USER_SESSIONS, PAGE_VIEWS, BOT_ACTIVITY = c.ACTIVE_USERS, c.USER_SESSIONS, c.PAGE_VIEWS, c.BOT_ACTIVITY
OFFSET_BITS = 40
SECOND_US = 1_000_000
MINUTE_US = 60 * SECOND_US

# Columns of `over_bot_limit`'s own: a member's second of its minute, and each second's count and positions.
_SECOND, _COUNT, _FIRST, _LAST = "_second", "_count", "_first", "_last"

# Sliding windows of at most this many slides get a slot each, written out in the plan; longer ones come from a
# sequence (Spark would compile thousands of slots into methods too long for its code generator).
MAX_LISTED_WINDOWS = 60

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

    A key is kept until its event's time falls behind the watermark. A copy arriving after that has the same event time
    (it is the same event), so it is behind the watermark too and is dropped as late: each event counts once.
    """
    if not df.isStreaming:  # Spark has no within-watermark variant for static frames (tests, backfills)
        return df.dropDuplicates([DEDUP_KEY])
    # Spark keeps a key until its event time plus the event-time column's delay has fallen behind the watermark: with
    # the watermark's own delay that is twice the delay after the event (20 minutes of keys, at 2,000 events/s 2.4M
    # state rows, each scanned by every batch's eviction). A delay of 0 on the column dedup reads frees a key as soon
    # as its event is late; the watermark itself is unchanged (the withWatermark node keeps its delay).
    at_event = F.col(EVENT_TIME).alias(EVENT_TIME, metadata={_WATERMARK_DELAY_KEY: 0})
    return df.withColumn(EVENT_TIME, at_event).dropDuplicatesWithinWatermark([DEDUP_KEY])


def _slot(kind: str, end: Column, key: Column, subkey: Column, member: Column,
          position: Column | None = None) -> Column:
    return F.struct(F.lit(kind).alias(KIND), end.alias(WINDOW_END), key.alias(KEY), subkey.alias(SUBKEY),
                    member.alias(MEMBER), (F.lit(None).cast("bigint") if position is None else position).alias(POSITION))


def _last_start(spec: WindowSpec) -> Column:
    """Start (in epoch microseconds) of the newest window of `spec` holding the event: its pane's start."""
    return F.floor(F.unix_micros(F.col(EVENT_TIME)) / F.lit(spec.slide_us)) * F.lit(spec.slide_us)


def _window_slots(spec: WindowSpec, kind: str, key: Column, member: Column) -> list[Column]:
    """A slot for every window of `spec` containing the event: one per slide in its size, the newest last."""
    last = _last_start(spec)
    count = spec.size_us // spec.slide_us
    return [_slot(kind, F.timestamp_micros(last + F.lit(spec.size_us - i * spec.slide_us)), key, F.lit(""), member)
            for i in reversed(range(count))]


def _sliding_windows(spec: WindowSpec, kind: str, key: Column, member: Column) -> Column:
    """Array with a slot for every window of `spec` containing the event (for windows of many slides)."""
    last = _last_start(spec)
    starts = F.sequence(last - F.lit(spec.size_us - spec.slide_us), last, F.lit(spec.slide_us))
    return F.transform(starts, lambda s: _slot(kind, F.timestamp_micros(s + F.lit(spec.size_us)), key, F.lit(""),
                                               member))


def _pane_slot(spec: WindowSpec, kind: str, key: Column, subkey: Column) -> Column:
    """The one slot of the pane (slide-long slice) of `spec` containing the event."""
    end = F.timestamp_micros(_last_start(spec) + F.lit(spec.slide_us))
    return _slot(kind, end, key, subkey, F.lit(None).cast("string"))


def _minute(kind: str) -> Column:
    """The one slot of the event's minute, whose member is the event's second in it and Kafka position.

    The member `SS:position` is unique per event (a Kafka record has one position), so the slot's set holds every
    event once, and `over_bot_limit` reads each second's count and first and last position from it.
    """
    micros = F.unix_micros(F.col(EVENT_TIME))
    start = F.floor(micros / MINUTE_US) * MINUTE_US
    second = F.floor((micros - start) / SECOND_US)
    position = F.col(c.PARTITION).cast("bigint") * F.lit(1 << OFFSET_BITS) + F.col(c.OFFSET)
    member = F.concat(F.lpad(second.cast("string"), 2, "0"), F.lit(":"), position.cast("string"))
    return _slot(kind, F.timestamp_micros(start + MINUTE_US), F.col(ev.USER_ID), F.lit(""), member, position)


def kafka_position(position: int) -> tuple[int, int]:
    """(partition, offset) of a POSITION value."""
    return position >> OFFSET_BITS, position & ((1 << OFFSET_BITS) - 1)


def window_rows(active: WindowSpec, sessions: WindowSpec, pages: WindowSpec, watermark: timedelta,
                bots: bool = False) -> Callable[[DataFrame], DataFrame]:
    """Expand each event into its slot rows for all three aggregates, and its second for bot flagging (see the module
    docstring)."""
    delay_ms = int(watermark.total_seconds() * 1000)

    def step(df: DataFrame) -> DataFrame:
        user = F.col(ev.USER_ID)
        # A page view's pane, else no slot: a NULL element, dropped after the explode.
        page = F.when(F.col(ev.EVENT_TYPE) == ev.PAGE_VIEW, _pane_slot(pages, PAGE_VIEWS, F.col(ev.PAGE_URL), F.lit("")))
        slots = [_pane_slot(sessions, USER_SESSIONS, user, F.col(ev.SESSION_ID)), page,
                 *([_minute(BOT_ACTIVITY)] if bots else [])]
        if active.size_us // active.slide_us <= MAX_LISTED_WINDOWS:
            # One array of every slot is compiled code, explode included; `transform` and array `concat` are run
            # interpreted, row by row: a sixth of the hot path's task time, and 5.0 s of window rows per million events
            # against 0.7 s (bench/job.py --stages).
            rows = F.array(*_window_slots(active, ACTIVE_USERS, F.lit(""), user), *slots)
        else:
            rows = F.concat(_sliding_windows(active, ACTIVE_USERS, F.lit(""), user), F.array(*slots))
        exploded = df.select(F.explode(rows).alias("w")).where(F.col("w").isNotNull()).select("w.*")
        # The slot's end is the event-time column of the aggregation: a slot is final, and its state
        # can go, once the watermark passes its end.
        return exploded.withColumn(
            WINDOW_END, F.col(WINDOW_END).alias(WINDOW_END, metadata={_WATERMARK_DELAY_KEY: delay_ms})
        )

    return step


def aggregate(df: DataFrame) -> DataFrame:
    """Exact count of rows and of distinct members per (kind, slot, key, subkey), the members themselves (read for
    bot minutes only), and the first and last Kafka positions of the rows that carry one (bot minutes).

    `MEMBERS` and `USERS` read one set: Spark keeps one buffer for equal aggregate functions, so the state holds the
    same columns as when only the count was output (checkpoints of earlier versions keep working).
    """
    return df.groupBy(KIND, WINDOW_END, KEY, SUBKEY).agg(
        F.count(F.lit(1)).alias(EVENTS),
        F.size(F.collect_set(MEMBER)).alias(USERS),
        F.min(POSITION).alias(FIRST),
        F.max(POSITION).alias(LAST),
        F.collect_set(MEMBER).alias(MEMBERS),
    )


def over_bot_limit(limit: int | None) -> Callable[[DataFrame], DataFrame]:
    """Turn each bot minute into its seconds in which the user sent more than `limit` events (none for people), each
    with its count and first and last Kafka positions; other rows pass unchanged, without their members.

    A minute that holds more than `limit` events becomes a row per event (its member), and one aggregation counts them
    per second; every other row is a group of its own. Explode and aggregate are compiled Spark SQL. Reading the
    seconds with `filter` and `transform` over each set ran interpreted, element by element, and took 30% of the job's
    task time at 2,000 events/s (a minute of a user sends 12 events there, over the limit of 10 a second). One pass
    over the batch, not a union of two filters: in a batch, a union would run the stateful aggregation below it twice.
    """

    @cache
    def plan() -> tuple[list[Column], list[Column], list[Column], Column, list[Column]]:
        # Built at the first batch and kept (see the module docstring).
        is_bot = F.col(KIND) == BOT_ACTIVITY
        member = F.explode_outer(F.when(is_bot & (F.size(MEMBERS) > limit), F.col(MEMBERS))).alias(MEMBER)
        # A bot minute's own columns are the same in each of its member rows: grouping by them splits nothing.
        own = [F.col(name) for name in (KIND, WINDOW_END, KEY, SUBKEY, EVENTS, USERS, FIRST, LAST)]
        counts = [F.count(MEMBER).alias(_COUNT), F.min(_member_position()).alias(_FIRST),
                  F.max(_member_position()).alias(_LAST)]
        # A bot minute at or under the limit has one group without members (count 0): it is dropped here.
        kept = ~is_bot | (F.col(_COUNT) > limit)
        minute_start = F.unix_micros(F.col(WINDOW_END)) - F.lit(MINUTE_US)
        second_end = F.timestamp_micros(minute_start + (F.col(_SECOND).cast("bigint") + 1) * F.lit(SECOND_US))
        out = [
            F.col(KIND),
            F.when(is_bot, second_end).otherwise(F.col(WINDOW_END)).alias(WINDOW_END),
            F.col(KEY),
            F.col(SUBKEY),
            F.when(is_bot, F.col(_COUNT)).otherwise(F.col(EVENTS)).alias(EVENTS),
            F.when(is_bot, F.lit(0)).otherwise(F.col(USERS)).alias(USERS),
            F.when(is_bot, F.col(_FIRST)).otherwise(F.col(FIRST)).alias(FIRST),
            F.when(is_bot, F.col(_LAST)).otherwise(F.col(LAST)).alias(LAST),
        ]
        return [*own, member], [*own, F.substring(MEMBER, 1, 2).alias(_SECOND)], counts, kept, out

    def step(df: DataFrame) -> DataFrame:
        if limit is None:
            return df.drop(MEMBERS)
        rows, groups, counts, kept, out = plan()
        return df.select(*rows).groupBy(*groups).agg(*counts).where(kept).select(*out)

    return step


def _member_position() -> Column:
    """The Kafka position of a bot minute's member `SS:position`."""
    return F.substring(F.col(MEMBER), 4, 20).cast("bigint")


def with_window_start(active: WindowSpec, sessions: WindowSpec, pages: WindowSpec) -> Callable[[DataFrame], DataFrame]:
    """Add the slot's start (a window's size before its end, a pane's slide) and make both bounds UTC wall-clock."""

    @cache
    def columns() -> list[Column]:
        # Built at the first batch and kept (see the module docstring).
        length_us = (
            F.when(F.col(KIND) == ACTIVE_USERS, F.lit(active.size_us))
            .when(F.col(KIND) == USER_SESSIONS, F.lit(sessions.slide_us))
            .when(F.col(KIND) == BOT_ACTIVITY, F.lit(SECOND_US))
            .otherwise(F.lit(pages.slide_us))
        )
        end = F.col(WINDOW_END)
        start = F.timestamp_micros(F.unix_micros(end) - length_us).cast("timestamp_ntz").alias(WINDOW_START)
        return [F.col(KIND), start, end.cast("timestamp_ntz").alias(WINDOW_END),
                *(F.col(name) for name in (KEY, SUBKEY, EVENTS, USERS, FIRST, LAST))]

    def step(df: DataFrame) -> DataFrame:
        return df.select(*columns())

    return step
