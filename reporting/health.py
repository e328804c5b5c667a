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
