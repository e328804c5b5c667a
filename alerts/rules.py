"""The alert rules: what each measures from a round's snapshot, and its default thresholds.

Defaults follow what the report colours (reporting/health.py): a rule goes pending when the report turns amber and
fires when it would turn red (threshold = amber, "for" = red - amber). Figures the report does not colour have
defaults chosen for the local demo's traffic, stated with each rule.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from alerts.settings import RuleSettings
from alerts.snapshot import Doc, Snapshot, as_utc, lag_records, oldest_unread_at
from storage import contract as c


class Unit(StrEnum):
    RATIO = "ratio"
    SECONDS = "seconds"
    RECORDS = "records"
    ROWS_PER_MINUTE = "rows/min"


@dataclass(frozen=True)
class Measurement:
    """A rule's value this round (None: nothing to measure, e.g. no batch in the window) and what it means in words."""

    value: float | None
    summary: str


@dataclass(frozen=True)
class Rule:
    name: str
    title: str
    unit: Unit
    help: str
    defaults: RuleSettings
    measure: Callable[[Snapshot, RuleSettings], Measurement]


def age_text(seconds: float) -> str:
    """'2.5 s', '3 min 4 s', '2 h 5 min'."""
    if seconds < 10:
        return f"{max(seconds, 0):.1f} s"
    secs = int(seconds)
    for size, unit, small, small_unit in ((86400, "d", 3600, "h"), (3600, "h", 60, "min"), (60, "min", 1, "s")):
        if secs >= size:
            first, rest = divmod(secs, size)
            second = rest // small
            return f"{first} {unit}" + (f" {second} {small_unit}" if second else "")
    return f"{secs} s"


def value_text(unit: Unit, value: float | None) -> str:
    if value is None:
        return "unknown"
    if unit is Unit.RATIO:
        return f"{value:.1%}"
    if unit is Unit.SECONDS:
        return age_text(value)
    if unit is Unit.RECORDS:
        return f"{value:,.0f} records"
    return f"{value:,.1f} rows/min"


def utc_text(ts: datetime) -> str:
    return f"{as_utc(ts):%Y-%m-%d %H:%M:%S} UTC"


def _in_window(points: Sequence[Doc], query: str, now: datetime, window: timedelta) -> list[Doc]:
    """The query's per-minute points whose minute overlaps the last `window` before `now`."""
    return [p for p in points if p.get(c.QUERY) == query
            and as_utc(p[c.MINUTE]) + timedelta(minutes=1) > now - window and as_utc(p[c.MINUTE]) <= now]


def _window(rs: RuleSettings) -> timedelta:
    assert rs.window is not None
    return rs.window


def invalid_rate(s: Snapshot, rs: RuleSettings) -> Measurement:
    span = age_text(_window(rs).total_seconds())
    recent = [p for p in _in_window(s.points, c.INVALID_EVENTS_QUERY, s.now, _window(rs)) if c.INVALID_ROWS in p]
    total = sum(int(p.get(c.INPUT_ROWS) or 0) for p in recent)
    if total == 0:
        return Measurement(None, f"no records read in the last {span}")
    invalid = sum(int(p.get(c.INVALID_ROWS) or 0) for p in recent)
    return Measurement(invalid / total, f"{invalid:,} of {total:,} records read in the last {span} were invalid "
                                        f"({invalid / total:.1%})")


def _lags(s: Snapshot) -> list[tuple[str, int]]:
    if s.kafka is None:
        return []
    found = [(p.query, lag_records(p, s.kafka)) for p in s.positions]
    return [(q, n) for q, n in found if n is not None]


def consumer_lag_records(s: Snapshot, rs: RuleSettings) -> Measurement:
    lags = _lags(s)
    if not lags:
        return Measurement(None, _why_no_lag(s))
    query, n = max(lags, key=lambda x: x[1])
    return Measurement(float(n), f"the {query} query is {n:,} records behind Kafka's latest offsets")


def consumer_lag_seconds(s: Snapshot, rs: RuleSettings) -> Measurement:
    if s.kafka is None or not _lags(s):
        return Measurement(None, _why_no_lag(s))
    oldest = [(p.query, oldest_unread_at(p, s.kafka), lag_records(p, s.kafka)) for p in s.positions]
    waiting = [(q, at) for q, at, n in oldest if n]
    if not waiting:
        return Measurement(0.0, "every record in Kafka has been read")
    known = [(q, at) for q, at in waiting if at is not None]
    if not known:
        return Measurement(None, "records are waiting in Kafka, but their timestamps could not be read")
    query, at = min(known, key=lambda x: x[1])
    age = (s.now - as_utc(at)).total_seconds()
    return Measurement(max(age, 0.0), f"the oldest record the {query} query has not read reached Kafka "
                                      f"{age_text(age)} ago, at {utc_text(at)}")


def _why_no_lag(s: Snapshot) -> str:
    if not s.positions:
        return "no batch stored yet"
    if all(p.end_offsets is None for p in s.positions):
        return "the newest batches were stored without Kafka offsets (a job older than this program)"
    return "Kafka's offsets could not be read"


def batch_age(s: Snapshot, rs: RuleSettings) -> Measurement:
    if s.newest_batch_at is None:
        return Measurement(None, "no batch stored yet")
    age = (s.now - as_utc(s.newest_batch_at)).total_seconds()
    return Measurement(max(age, 0.0), f"the newest batch ran {age_text(age)} ago, at {utc_text(s.newest_batch_at)}")


def window_age(s: Snapshot, rs: RuleSettings) -> Measurement:
    if s.newest_write_at is None:
        return Measurement(None, "no aggregate window stored yet")
    age = (s.now - as_utc(s.newest_write_at)).total_seconds()
    start = f" (newest window starts {utc_text(s.newest_window_start)})" if s.newest_window_start else ""
    return Measurement(max(age, 0.0), f"the newest aggregate was written {age_text(age)} ago, at "
                                      f"{utc_text(s.newest_write_at)}{start}")


def batch_duration(s: Snapshot, rs: RuleSettings) -> Measurement:
    span = age_text(_window(rs).total_seconds())
    means = []
    for query in c.QUERIES:
        recent = _in_window(s.points, query, s.now, _window(rs))
        batches = sum(int(p.get(c.BATCHES) or 0) for p in recent)
        if batches:
            total_ms = sum(int(p.get(c.BATCH_DURATION_MS) or 0) * int(p.get(c.BATCHES) or 0) for p in recent)
            means.append((total_ms / batches / 1000, query, batches))
    if not means:
        return Measurement(None, f"no batch in the last {span}")
    mean, query, batches = max(means)
    return Measurement(mean, f"{query} batches took {age_text(mean)} on average over the last {span} "
                             f"({batches:,} batches)")


def dropped_late(s: Snapshot, rs: RuleSettings) -> Measurement:
    window = _window(rs)
    span = age_text(window.total_seconds())
    recent = _in_window(s.points, c.AGGREGATES_QUERY, s.now, window)
    if not recent:
        return Measurement(None, f"no batch in the last {span}")
    dropped = sum(int(p.get(c.DROPPED_BY_WATERMARK) or 0) for p in recent)
    per_minute = dropped / (window.total_seconds() / 60)
    return Measurement(per_minute, f"{dropped:,} rows arrived later than the watermark and were dropped in the last "
                                   f"{span} ({per_minute:,.1f}/min)")


def _defaults(name: str, threshold: float, for_: timedelta, clear: float | None = None,
              clear_for: timedelta = timedelta(0), window: timedelta | None = None) -> RuleSettings:
    return RuleSettings(name, threshold, for_, threshold if clear is None else clear, clear_for, window)


MIN = timedelta(minutes=1)
RULES: tuple[Rule, ...] = (
    Rule("invalid_rate", "Invalid-event rate", Unit.RATIO,
         "share of the records read by the invalid_events query that were invalid, over the last `window` "
         "(the report's KPI uses 15 min and does not colour it; 5% is over twice the demo producer's 2%)",
         _defaults("invalid_rate", 0.05, 5 * MIN, clear=0.04, window=15 * MIN), invalid_rate),
    Rule("lag_records", "Consumer lag (records)", Unit.RECORDS,
         "records in Kafka past the offsets of each query's newest stored batch (Kafka's latest offsets now, "
         "so it grows while the job is dead); the larger query's",
         _defaults("lag_records", 10_000, 5 * MIN, clear=5_000), consumer_lag_records),
    Rule("lag_seconds", "Consumer lag (seconds)", Unit.SECONDS,
         "age of the oldest record a query has not read yet (its Kafka timestamp); like the report's batch age: "
         "pending after 1 min, firing after 5",
         _defaults("lag_seconds", 60, 4 * MIN), consumer_lag_seconds),
    Rule("batch_age", "Staleness: newest batch", Unit.SECONDS,
         "age of the newest batch of either query; the report colours it amber after 1 min and red after 5",
         _defaults("batch_age", 60, 4 * MIN), batch_age),
    Rule("window_age", "Staleness: newest aggregate window", Unit.SECONDS,
         "time since the newest aggregate window was written; the report colours it amber after 2 min and red "
         "after 10",
         _defaults("window_age", 120, 8 * MIN), window_age),
    Rule("batch_duration", "Batch duration", Unit.SECONDS,
         "mean batch duration of the slower query over the last `window`; above the trigger interval the job "
         "falls behind (default 1 s, the job's default trigger: set it to your --trigger)",
         _defaults("batch_duration", 1.0, 5 * MIN, window=MIN), batch_duration),
    Rule("dropped_late", "Rows dropped by the watermark", Unit.ROWS_PER_MINUTE,
         "rows the aggregates query dropped as later than the watermark, per minute over the last `window`; "
         "any is above 0, and each is an event missing from the numbers",
         _defaults("dropped_late", 0, MIN, window=5 * MIN), dropped_late),
)
BY_NAME = {r.name: r for r in RULES}
