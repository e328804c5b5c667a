"""Every read of the job's collections (pipeline_minutes, pipeline_metrics, active_users), through the read API.

The one module to change when the read API changes. Equality lookups only, as the report's reads (storage/reads.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from pymongo.database import Database

from alerts.snapshot import Doc, QueryPosition, as_utc
from storage import contract as c
from storage import reads

# Per-minute points read per round at most (both queries): far more than any rule's lookback holds.
POINT_LIMIT = 2 * 60 * 24


@dataclass(frozen=True)
class JobView:
    """What the job recorded, as the rules need it."""

    points: tuple[Doc, ...] = ()
    newest_batch_at: datetime | None = None
    newest_write_at: datetime | None = None
    newest_window_start: datetime | None = None
    positions: tuple[QueryPosition, ...] = ()


def read_job(db: Database, now: datetime, lookback: timedelta) -> JobView:
    """Per-minute batch sums of the last `lookback` (at least this hour and the last), each query's newest batch and
    its Kafka end offsets, and the newest aggregate write."""
    # At least an hour: each query's newest batch must be among the points even when one query lags the other.
    health = reads.health(db, now, max(lookback, timedelta(hours=1)), POINT_LIMIT)
    points = tuple(health.points)
    newest = reads.newest_aggregate(db, now)
    return JobView(points=points,
                   newest_batch_at=as_utc(health.newest[c.TIMESTAMP]) if health.newest else None,
                   newest_write_at=as_utc(newest[c.UPDATED_AT]) if newest and newest.get(c.UPDATED_AT) else None,
                   newest_window_start=as_utc(newest[c.WINDOW_START]) if newest else None,
                   positions=_positions(db, points))


def _positions(db: Database, points: tuple[Doc, ...]) -> tuple[QueryPosition, ...]:
    out = []
    for query in c.QUERIES:
        mine = [p for p in points if p[c.QUERY] == query]
        if not mine:
            continue
        newest = max(mine, key=lambda p: as_utc(p[c.TIMESTAMP]))
        offsets = reads.batch_end_offsets(db, c.metrics_id(query, newest[c.RUN_ID], newest[c.BATCH_ID]))
        end = None if offsets is None else {(o[c.TOPIC], int(o[c.PARTITION])): int(o[c.OFFSET]) for o in offsets}
        out.append(QueryPosition(query, as_utc(newest[c.TIMESTAMP]), end))
    return tuple(out)
