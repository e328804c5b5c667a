"""Every read of the job's collections (pipeline_minutes, pipeline_metrics, window catalog), through `storage`.

The one module to change when the storage layout or its read API changes. Equality lookups only (hour and day
buckets, `_id`s), as the report does, except when the job has written nothing for hours (then its newest minute
and catalog days are found by sort, a full read on FerretDB v1).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from pymongo.database import Database

from alerts.snapshot import Doc, QueryPosition, as_utc
from storage import contract as c
from storage import queries as q
from storage.alerts import batch_end_offsets
from storage.catalog import catalog_windows
from storage.rollup import minute_point


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
    hours = set(c.buckets_between(c.HOUR, now - lookback, now)) | {c.hour_bucket(now - timedelta(hours=1))}
    docs = [d for hour in sorted(hours) for d in q.minutes_in(db, hour)]
    if not docs:  # nothing for an hour or more: find the newest minute the slow way
        newest = q.newest_minute(db)
        if newest is not None:
            docs = q.minutes_in(db, c.hour_bucket(newest[c.MINUTE]))
    points = tuple(minute_point(d) for d in docs)
    write_at, window_start = _newest_write(db, now)
    return JobView(points=points,
                   newest_batch_at=max((as_utc(p[c.TIMESTAMP]) for p in points), default=None),
                   newest_write_at=write_at, newest_window_start=window_start,
                   positions=_positions(db, points))


def _positions(db: Database, points: tuple[Doc, ...]) -> tuple[QueryPosition, ...]:
    out = []
    for query in c.QUERIES:
        mine = [p for p in points if p[c.QUERY] == query]
        if not mine:
            continue
        newest = max(mine, key=lambda p: as_utc(p[c.TIMESTAMP]))
        offsets = batch_end_offsets(db, c.metrics_id(query, newest[c.RUN_ID], newest[c.BATCH_ID]))
        end = None if offsets is None else {(o[c.TOPIC], int(o[c.PARTITION])): int(o[c.OFFSET]) for o in offsets}
        out.append(QueryPosition(query, as_utc(newest[c.TIMESTAMP]), end))
    return tuple(out)


def _newest_write(db: Database, now: datetime) -> tuple[datetime | None, datetime | None]:
    """When the newest aggregate was written (its day's catalog `updated_at`) and the newest window's start."""
    days = [c.day_bucket(now - timedelta(days=1)), c.day_bucket(now)]
    written: list[datetime] = []
    starts: list[datetime] = []
    for collection in c.AGGREGATE_COLLECTIONS:
        docs = q.catalog_days(db, collection, days) or q.newest_catalog_days(db, collection, 1)
        written += [as_utc(d[c.UPDATED_AT]) for d in docs if d.get(c.UPDATED_AT)]
        windows = catalog_windows(docs)
        if windows:
            starts.append(as_utc(windows[0][c.WINDOW_START]))
    return max(written, default=None), max(starts, default=None)
