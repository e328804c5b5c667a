"""The alerts collection (see storage/contract.py): alert episodes written by the alerts program, read by the report.

Equality lookups only (on `state` or a `day` bucket), so FerretDB v1 pushes every filter down to PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from pymongo.database import Database

from storage import contract as c

Doc = dict[str, Any]


def save_alert(db: Database, doc: Mapping[str, Any], now: datetime | None = None) -> None:
    """Replace one episode by its `_id`, stamped with its buckets (of `started_at`) and the write time."""
    stamped = {**doc, **c.time_buckets(doc[c.STARTED_AT]), c.UPDATED_AT: now or datetime.now(UTC)}
    db[c.ALERTS].replace_one({c.ID: doc[c.ID]}, stamped, upsert=True)


def alerts_in_state(db: Database, *states: str) -> list[Doc]:
    """Every episode in one of these states (an equality lookup each), oldest start first."""
    found = [d for s in states for d in db[c.ALERTS].find({c.STATE: s})]
    return sorted(found, key=lambda d: (d[c.STARTED_AT], d[c.ID]))


def open_alerts(db: Database) -> list[Doc]:
    """The episodes still pending or firing: the alerts program's state between rounds."""
    return alerts_in_state(db, *c.OPEN_ALERT_STATES)


def firing_alerts(db: Database) -> list[Doc]:
    """The episodes firing now, oldest first."""
    return alerts_in_state(db, c.ALERT_FIRING)


def alert_history(db: Database, days: Iterable[str], limit: int) -> list[Doc]:
    """Episodes that started on these UTC days (one `day` lookup each), newest start first, at most `limit`."""
    found = [d for day in sorted(set(days)) for d in db[c.ALERTS].find({c.DAY: day})]
    return sorted(found, key=lambda d: (d[c.STARTED_AT], d[c.ID]), reverse=True)[:limit]
