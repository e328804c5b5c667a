"""Pipeline health from query results: freshness levels (ok, amber, red) and the newest batch's figures."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from reporting import labels
from storage import contract as c
from storage.queries import AGGREGATES_QUERY

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
    """The health row: the newest aggregates batch's figures, and late rows dropped over the fetched batches."""

    at: datetime | None = None
    input_rows_per_second: float | None = None
    processed_rows_per_second: float | None = None
    batch_duration_ms: int | None = None
    watermark: datetime | None = None
    state_rows: int | None = None
    dropped_late: int = 0
    duplicates_dropped: int = 0
    batches: int = 0


def batch_figures(batches: Sequence[Doc]) -> BatchFigures:
    """Figures of the newest `aggregates` batch among `batches` (newest first), plus drop totals over all."""
    agg = [b for b in batches if b.get(c.QUERY) == AGGREGATES_QUERY]
    dropped = sum(int(b.get(c.DROPPED_BY_WATERMARK) or 0) for b in agg)
    duplicates = sum(int(b.get(c.DUPLICATES_DROPPED) or 0) for b in agg)
    if not agg:
        return BatchFigures()
    b = max(agg, key=lambda d: labels.as_utc(d[c.TIMESTAMP]))
    return BatchFigures(
        at=b[c.TIMESTAMP],
        input_rows_per_second=float(b.get(c.INPUT_ROWS_PER_SECOND) or 0.0),
        processed_rows_per_second=float(b.get(c.PROCESSED_ROWS_PER_SECOND) or 0.0),
        batch_duration_ms=int(b.get(c.BATCH_DURATION_MS) or 0),
        watermark=b.get(c.WATERMARK),
        state_rows=int(b.get(c.STATE_ROWS) or 0),
        dropped_late=dropped,
        duplicates_dropped=duplicates,
        batches=len(agg),
    )
