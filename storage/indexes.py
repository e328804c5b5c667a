"""Index creation and retention (a TTL index where the server has one, pruning where it does not)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from pymongo import ASCENDING, DESCENDING
from pymongo.database import Database
from pymongo.errors import OperationFailure

from storage import contract as c

log = logging.getLogger(__name__)

# (collection, keys, unique). Each read the report makes is covered by one of these.
INDEXES: tuple[tuple[str, list[tuple[str, int]], bool], ...] = (
    # active_users is read by `_id` (its UTC day) and, for old data, by day: one small document per day
    (c.ACTIVE_USERS, [(c.DAY, DESCENDING)], False),
    # pane shards are read by pane start, every shard at once
    (c.PAGE_VIEWS, [(c.PANE_START, ASCENDING)], False),
    (c.USER_SESSIONS, [(c.PANE_START, ASCENDING)], False),
    (c.USER_SESSIONS_JOURNAL, [(c.PANE_START, ASCENDING)], False),
    (c.INVALID_EVENTS, [(c.KAFKA_TIMESTAMP, DESCENDING)], False),
    (c.INVALID_EVENTS, [(c.REASON, ASCENDING), (c.KAFKA_TIMESTAMP, DESCENDING)], False),
    (c.PIPELINE_METRICS, [(c.QUERY, ASCENDING), (c.TIMESTAMP, DESCENDING)], False),
    (c.PIPELINE_METRICS, [(c.TIMESTAMP, DESCENDING)], False),
    (c.INVALID_EVENTS, [(c.HOUR, ASCENDING), (c.KAFKA_TIMESTAMP, DESCENDING)], False),
    (c.INVALID_EVENTS, [(c.DAY, ASCENDING), (c.KAFKA_TIMESTAMP, DESCENDING)], False),
    # Not unique: a second unique index would stop MongoDB retrying concurrent upserts of one new `_id`.
    (c.PIPELINE_MINUTES, [(c.HOUR, ASCENDING), (c.MINUTE, DESCENDING)], False),
    (c.PIPELINE_MINUTES, [(c.MINUTE, DESCENDING)], False),
    (c.BOT_ACTIVITY, [(c.HOUR, ASCENDING), (c.SECOND, DESCENDING)], False),
    (c.BOT_ACTIVITY, [(c.DAY, ASCENDING), (c.SECOND, DESCENDING)], False),
    (c.DEAD_LETTERS, [(c.HOUR, ASCENDING), (c.FAILED_AT, DESCENDING)], False),
    (c.DEAD_LETTERS, [(c.DAY, ASCENDING), (c.FAILED_AT, DESCENDING)], False),
    (c.ALERTS, [(c.STATE, ASCENDING)], False),
    (c.ALERTS, [(c.DAY, ASCENDING), (c.STARTED_AT, DESCENDING)], False),
)

# Retention is measured on `updated_at` (wall clock of the last write), never on event time,
# so replaying old events does not delete what was just computed. pipeline_layout never expires: the job writes it
# only when it starts, and readers need it for as long as its windows are stored.
RETENTION_FIELD = {
    c.ACTIVE_USERS: c.UPDATED_AT,
    c.PAGE_VIEWS: c.UPDATED_AT,
    c.USER_SESSIONS: c.UPDATED_AT,
    c.USER_SESSIONS_JOURNAL: c.UPDATED_AT,  # folded within seconds while the job runs; left over only if it never ran again
    c.INVALID_EVENTS: c.STORED_AT,
    c.PIPELINE_METRICS: c.TIMESTAMP,
    c.PIPELINE_MINUTES: c.UPDATED_AT,
    c.BOT_ACTIVITY: c.UPDATED_AT,
    c.ALERTS: c.UPDATED_AT,  # an episode still open is rewritten every round, so only closed ones expire
    c.DEAD_LETTERS: c.FAILED_AT,
}

_NOT_IMPLEMENTED = 238  # FerretDB v1 answers this for `expireAfterSeconds`


def ensure_indexes(db: Database, retention: timedelta | None) -> bool:
    """Create every index (idempotent); return True when retention is enforced by TTL indexes.

    With `retention=None` nothing expires. When the server has no TTL indexes (FerretDB v1),
    returns False and the caller prunes with `prune_expired`.
    """
    for coll, keys, unique in INDEXES:
        db[coll].create_index(keys, unique=unique)
    if retention is None:
        return True
    ttl = True
    for coll, field in RETENTION_FIELD.items():
        try:
            db[coll].create_index([(field, ASCENDING)], expireAfterSeconds=int(retention.total_seconds()),
                                  name=f"ttl_{field}")
        except OperationFailure as e:
            if e.code != _NOT_IMPLEMENTED:
                raise
            ttl = False
            db[coll].create_index([(field, ASCENDING)], name=f"retention_{field}")
    if not ttl:
        log.info("this Mongo server has no TTL indexes: expired documents are pruned by the job instead")
    return ttl


def prune_expired(db: Database, retention: timedelta, now: datetime | None = None) -> dict[str, int]:
    """Delete documents whose retention field is older than `now - retention`; return counts per collection."""
    cutoff = (now or datetime.now(UTC)) - retention
    return {coll: db[coll].delete_many({field: {"$lt": cutoff}}).deleted_count for coll, field in RETENTION_FIELD.items()}
