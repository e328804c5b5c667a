"""The user-sessions journal: reading a pane through it, and folding it into the pane's shards (storage/contract.py).

Batches insert what they changed into the journal, which is cheap; the job folds it every few seconds, so that a pane
is read from its shards and a few journal documents. Values are counts that only grow, so a key's value is the
greatest one found, and folding is a `$max`: the same whatever the order of batches, replays, folds and crashes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pymongo import DeleteOne, UpdateOne
from pymongo.database import Database
from pymongo.errors import BulkWriteError

from storage import contract as c

log = logging.getLogger(__name__)

# Journal documents one fold reads at most: at 2,000 events/s a 10 s fold finds a few dozen.
MAX_FOLD_DOCUMENTS = 500
# The journal of each aggregate that has one; its documents hold their values under the same field as the shards.
JOURNALS = {c.USER_SESSIONS: c.USER_SESSIONS_JOURNAL}


def greatest(docs: Iterable[Mapping[str, Any]], field: str) -> dict[str, int]:
    """Each key's greatest value in the `field` maps of `docs` (a pane's shards and journal documents)."""
    out: dict[str, int] = {}
    for doc in docs:
        for key, value in (doc.get(field) or {}).items():
            if int(value) > out.get(key, -1):
                out[key] = int(value)
    return out


def pane_values(db: Database, collection: str, field: str, pane: datetime) -> dict[str, int]:
    """The values of one pane of `collection`, by key: its shards' and, for a journaled aggregate, its journal's."""
    docs = list(db[collection].find({c.PANE_START: pane}, {c.ID: 0, field: 1}))
    if collection in JOURNALS:
        docs += db[JOURNALS[collection]].find({c.PANE_START: pane}, {c.ID: 0, field: 1})
    return greatest(docs, field)


@dataclass(frozen=True)
class Folded:
    """What one fold did."""

    documents: int = 0  # journal documents folded, then deleted
    panes: int = 0
    values: int = 0  # values `$max`ed into shards
    kept: int = 0  # journal documents kept because a shard refused their pane's values (tried again next fold)


def fold(db: Database, ops_per_command: int = 25, limit: int = MAX_FOLD_DOCUMENTS) -> Folded:
    """Fold up to `limit` user-sessions journal documents into their pane shards (`$max`), then delete them.

    The user-sessions journal is the only one; its keys go to the shard of their user (`storage/contract.py`).

    A document is deleted only after its pane's values are in the shards, so a crash in between only repeats a `$max`.
    A journal document written meanwhile is not read, and waits for the next fold.
    """
    journal = db[JOURNALS[c.USER_SESSIONS]]
    docs = list(journal.find({}).limit(limit))
    if not docs:
        return Folded()
    panes: dict[datetime, list[Mapping[str, Any]]] = {}
    for doc in docs:
        panes.setdefault(doc[c.PANE_START], []).append(doc)
    now = datetime.now(UTC)
    ops: list[UpdateOne] = []
    pane_of: list[datetime] = []
    values = 0
    for pane, pane_docs in panes.items():
        shards: dict[int, dict[str, int]] = {}
        for key, value in greatest(pane_docs, c.EVENTS).items():
            user, _ = c.split_session_key(key)
            shards.setdefault(c.shard_of(user, c.USER_SESSIONS), {})[f"{c.EVENTS}.{key}"] = value
        head = {c.PANE_START: pane, c.PANE_END: pane_docs[0][c.PANE_END]}
        # A shard was last updated when its newest value was written (to the journal), not when it was folded.
        written = max((d[c.UPDATED_AT] for d in pane_docs if d.get(c.UPDATED_AT)), default=now)
        for shard, fields in sorted(shards.items()):
            ops.append(UpdateOne({c.ID: c.pane_id(pane, shard)},
                                 {"$max": {**fields, c.UPDATED_AT: written}, "$set": {**head, c.SHARD: shard}},
                                 upsert=True))
            pane_of.append(pane)
            values += len(fields)
    refused: set[datetime] = set()
    for start in range(0, len(ops), ops_per_command):
        try:
            db[c.USER_SESSIONS].bulk_write(ops[start:start + ops_per_command], ordered=False)
        except BulkWriteError as e:
            for err in (e.details or {}).get("writeErrors", []):
                refused.add(pane_of[start + int(err["index"])])
                log.warning("folding pane %s: shard refused: %s", c.iso_minute(pane_of[start + int(err["index"])]),
                            err.get("errmsg"))
    done = [d for d in docs if d[c.PANE_START] not in refused]
    deletes = [DeleteOne({c.ID: d[c.ID]}) for d in done]
    for start in range(0, len(deletes), ops_per_command):
        journal.bulk_write(deletes[start:start + ops_per_command], ordered=False)
    return Folded(len(done), len(panes) - len(refused), values, len(docs) - len(done))


def fold_all(db: Database, ops_per_command: int = 25) -> Folded:
    """Fold until the journal holds nothing that can be folded (at the job's end); return the sums."""
    total = Folded()
    while True:
        done = fold(db, ops_per_command)
        total = Folded(total.documents + done.documents, total.panes + done.panes, total.values + done.values,
                       done.kept)
        if not done.documents:
            return total
