"""Pipeline health from query results: freshness levels (ok, amber, red) and the newest batch's figures."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from reporting import labels
from storage import contract as c

Doc = dict[str, Any]


class Level(StrEnum):
    OK = "ok"
    AMBER = "amber"
    RED = "red"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class FreshnessRule:
    """An age at or above `amber` is a warning, at or above `red` an alarm."""

    amber: timedelta
    red: timedelta

    def __post_init__(self) -> None:
        if not timedelta(0) < self.amber < self.red:
            raise ValueError(f"need 0 < amber < red, got amber={self.amber} red={self.red}")

    def level(self, age: timedelta) -> Level:
        if age >= self.red:
            return Level.RED
        return Level.AMBER if age >= self.amber else Level.OK


# The job triggers a batch every second while events flow and rewrites the newest window in each of them,
# so a minute without a batch means the producer or the job has stopped.
BATCH_RULE = FreshnessRule(amber=timedelta(minutes=1), red=timedelta(minutes=5))
AGGREGATE_RULE = FreshnessRule(amber=timedelta(minutes=2), red=timedelta(minutes=10))


@dataclass(frozen=True)
class Freshness:
    level: Level
    message: str
    age: timedelta | None = None


def freshness(what: str, written_at: datetime | None, now: datetime, rule: FreshnessRule) -> Freshness:
    """How old the newest write of `what` is, and whether that is fine, stale (amber) or alarming (red)."""
    if written_at is None:
        return Freshness(Level.UNKNOWN, f"No {what} written yet.")
    age = now - labels.as_utc(written_at)
    level = rule.level(age)
    hint = {Level.OK: "", Level.AMBER: f" (stale: over {labels.age(rule.amber)})",
            Level.RED: f" (over {labels.age(rule.red)}: is the job or the producer running?)"}[level]
    return Freshness(level, f"Newest {what} written {labels.age(age)} ago, at {labels.utc(written_at)}{hint}.", age)


@dataclass(frozen=True)
class BatchFigures:
    """The health row: the newest aggregates batch's figures, and late rows dropped over the range's batches."""

    at: datetime | None = None
    input_rows_per_second: float | None = None
    processed_rows_per_second: float | None = None
    batch_duration_ms: int | None = None
    watermark: datetime | None = None
    state_rows: int | None = None
    dropped_late: int = 0
    duplicates_dropped: int = 0
    batches: int = 0


def batch_figures(newest: Doc | None, points: Sequence[Doc]) -> BatchFigures:
    """Figures of the newest `aggregates` batch, plus drop totals over the aggregates query's per-minute points."""
    agg = [p for p in points if p.get(c.QUERY) == c.AGGREGATES_QUERY]
    totals = {"dropped_late": sum(int(p.get(c.DROPPED_BY_WATERMARK) or 0) for p in agg),
              "duplicates_dropped": sum(int(p.get(c.DUPLICATES_DROPPED) or 0) for p in agg),
              "batches": sum(int(p.get(c.BATCHES) or 0) for p in agg)}
    if newest is None:
        return BatchFigures(**totals)
    return BatchFigures(
        at=newest[c.TIMESTAMP],
        input_rows_per_second=float(newest.get(c.INPUT_ROWS_PER_SECOND) or 0.0),
        processed_rows_per_second=float(newest.get(c.PROCESSED_ROWS_PER_SECOND) or 0.0),
        batch_duration_ms=int(newest.get(c.BATCH_DURATION_MS) or 0),
        watermark=newest.get(c.WATERMARK),
        state_rows=int(newest.get(c.STATE_ROWS) or 0),
        **totals,
    )


@dataclass(frozen=True)
class LagRule:
    """Consumer lag in records: above `records` is a warning (amber), and above it in every batch for `lasting`
    an alarm (red)."""

    records: int
    lasting: timedelta

    def __post_init__(self) -> None:
        if self.records < 0 or self.lasting <= timedelta(0):
            raise ValueError(f"need records >= 0 and a positive duration, got {self.records} and {self.lasting}")


# The alerts program's `lag_records` defaults (alerts/rules.py): an alert is pending while the lag is above 10,000
# records and fires once it has been for 5 minutes, so the report turns amber and red at the same points.
LAG_RULE = LagRule(records=10_000, lasting=timedelta(minutes=5))


def lag_records(batch: Doc | None) -> int | None:
    """Records in Kafka past the batch's end offsets when it ran, over all partitions (None when not reported)."""
    value = (batch or {}).get(c.OFFSETS_BEHIND_LATEST)
    return None if value is None else int(value)


def lag_history_points(newest: Doc | None, points: Sequence[Doc], rule: LagRule = LAG_RULE) -> list[Doc]:
    """The aggregates query's per-minute points whose last batch's lag tells whether the lag has lasted `rule.lasting`:
    those of the `lasting` before the newest batch and the last one before that. None are needed (an empty list)
    unless the newest batch's lag is above the rule's records."""
    lag = lag_records(newest)
    if newest is None or lag is None or lag <= rule.records:
        return []
    since = labels.as_utc(newest[c.TIMESTAMP]) - rule.lasting
    agg = sorted((p for p in points if p.get(c.QUERY) == c.AGGREGATES_QUERY),
                 key=lambda p: labels.as_utc(p[c.TIMESTAMP]), reverse=True)
    inside = [p for p in agg if labels.as_utc(p[c.TIMESTAMP]) > since]
    before = next((p for p in agg if labels.as_utc(p[c.TIMESTAMP]) <= since), None)
    return inside + ([before] if before is not None else [])


@dataclass(frozen=True)
class Lag:
    """The consumer-lag KPI: the newest aggregates batch's lag, when it was measured, and its level."""

    level: Level
    records: int | None = None
    max_partition: int | None = None
    at: datetime | None = None
    lasted: timedelta | None = None  # how long every batch has been above the rule's records (at least)


def lag(newest: Doc | None, history: Sequence[Doc], rule: LagRule = LAG_RULE) -> Lag:
    """The lag of the newest aggregates batch, amber when above `rule.records`, red when every batch of `history`
    (reads.batch_lags of `lag_history_points`) was above it too and they reach back `rule.lasting`."""
    records = lag_records(newest)
    if newest is None or records is None:
        return Lag(Level.UNKNOWN, at=newest[c.TIMESTAMP] if newest else None)
    at = labels.as_utc(newest[c.TIMESTAMP])
    most = newest.get(c.MAX_OFFSETS_BEHIND_LATEST)
    found = Lag(Level.OK, records, None if most is None else int(most), at)
    if records <= rule.records:
        return found
    above = [labels.as_utc(b[c.TIMESTAMP]) for b in history if (lag_records(b) or 0) > rule.records]
    lasted = at - min(above, default=at) if len(above) == len(history) else None
    level = Level.RED if lasted is not None and lasted >= rule.lasting else Level.AMBER
    return Lag(level, found.records, found.max_partition, at, lasted)
