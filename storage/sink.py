"""The idempotent bulk upsert writer: each document replaces the one with its `_id`, so replays rewrite.

Besides whole documents it writes `Merge`s: fields `$set` into the document with an `_id` (created when missing),
which is how the job adds values to a document that holds many without reading it first; and `New`s: documents
expected not to exist yet (an invalid event's, named by its Kafka coordinates), inserted in bulk, and replaced like any
document when one with their `_id` is there already (a replayed batch).

Every write is idempotent, so the writer repeats a command the store failed for reasons of its own (unreachable,
restarting, its PostgreSQL down) for up to `MongoTarget.retry_for` of outage. An operation the store refuses for a
reason of the operation's own (a value it cannot hold, a document it cannot encode) goes to `dead_letters` instead,
after it failed alone, and the rest of the batch is written.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from bson.errors import BSONError
from pymongo import InsertOne, MongoClient, ReplaceOne, UpdateOne
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import BulkWriteError, PyMongoError

from storage import contract as c
from storage.client import connect, mask_uri
from storage.dead_letters import Rejected, dead_letter
from storage.retry import Retrier, StoreUnavailable, describe, executor_clock, is_forbidden

Document = Mapping[str, Any]
log = logging.getLogger("clickpulse.sink")

# What a store or the driver raises when it refuses an operation rather than failing to reach the server: server
# errors, BSON encoding errors, a '$' key in a replacement (ValueError), an int over 64 bits (OverflowError), and
# FerretDB's per-operation errors, whose reply lacks the `nModified` that pymongo's bulk API reads (KeyError).
_REFUSED = (PyMongoError, BSONError, ValueError, OverflowError, KeyError, TypeError)


@dataclass(frozen=True)
class Merge:
    """Set `fields` (dotted paths allowed) in the document with this `_id`, creating it when missing."""

    id: str
    fields: Mapping[str, Any]


@dataclass(frozen=True)
class New:
    """A document that is most likely new: inserted, and replaced only when its `_id` exists.

    A bulk insert is one command for the store; upserts are a lookup and a write each. FerretDB over PostgreSQL
    inserted 8,355 documents/s against 711 upserts/s (commands of 25, this machine). The store reports each `_id`
    that exists, and that document alone is then replaced, so a replay still rewrites it.
    """

    doc: Document


Item = Document | Merge | New


@dataclass(frozen=True)
class MongoTarget:
    """Where documents go: a URI (credentials only ever come from here) and a database name."""

    uri: str
    database: str = c.DEFAULT_DATABASE
    # Operations per bulk command. FerretDB v1 keeps a backend connection per matched upsert until the
    # whole command ends, so large commands exhaust its pool and hang: it needs small ones.
    ops_per_command: int = 1000
    # How long a writer retries while the store keeps failing (unreachable, restarting) before it gives up.
    retry_for: timedelta = timedelta(minutes=5)

    def __post_init__(self) -> None:
        if self.ops_per_command <= 0:
            raise ValueError("ops_per_command must be positive")
        if not self.uri.startswith(("mongodb://", "mongodb+srv://")):
            raise ValueError("Mongo URI must start with mongodb:// or mongodb+srv://")
        if not self.database or any(ch in self.database for ch in "/\\. \"$"):
            raise ValueError(f"invalid Mongo database name: {self.database!r}")
        if self.retry_for < timedelta(0):
            raise ValueError("retry_for must not be negative")


class DeadLetterRefused(RuntimeError):
    """The store refused even a dead letter (plain, bounded ASCII): it is the store that is wrong, not a document."""


def upsert_operation(item: Item, stamp: Mapping[str, Any]) -> InsertOne | ReplaceOne | UpdateOne:
    """The bulk-write operation for one document (replace by `_id`), `Merge` (set fields) or `New` (insert), with
    `stamp` added."""
    if isinstance(item, Merge):
        return UpdateOne({c.ID: item.id}, {"$set": {**item.fields, **stamp}}, upsert=True)
    if isinstance(item, New):
        return InsertOne({**item.doc, **stamp})
    return ReplaceOne({c.ID: item[c.ID]}, {**item, **stamp}, upsert=True)


def _write_one(coll: Collection, item: Item, stamp: Mapping[str, Any]) -> int:
    """Write one operation on its own (single-operation commands report a refusal as a proper error); a `New` alone is
    replaced (it may be there: it failed in a bulk insert)."""
    if isinstance(item, Merge):
        result = coll.update_one({c.ID: item.id}, {"$set": {**item.fields, **stamp}}, upsert=True)
    else:
        doc = item.doc if isinstance(item, New) else item
        result = coll.replace_one({c.ID: doc[c.ID]}, {**doc, **stamp}, upsert=True)
    return 1 if result.upserted_id is not None or result.matched_count else 0


Pending = tuple[Item, Mapping[str, Any]]  # an operation's document, merge or new document, and its write stamp


class _Writer:
    """Writes one partition's operations: retries what fails for the store's sake, sets aside what the store refuses."""

    def __init__(self, db: Database, retrier: Retrier, ops_per_command: int) -> None:
        self._db = db
        self._retrier = retrier
        self._ops_per_command = ops_per_command

    def flush(self, collection: str, items: list[Pending]) -> int:
        """Write `items` to `collection`, dead-letter what is refused; return how many were written."""
        rejected: list[Rejected] = []
        written = self._write(collection, items, rejected)
        if rejected:
            self._dead_letter(rejected)
        return written

    def _write(self, collection: str, items: list[Pending], rejected: list[Rejected]) -> int:
        coll = self._db[collection]
        if len(items) == 1:
            return self._write_alone(coll, items[0], rejected)
        try:
            ops = [upsert_operation(item, stamp) for item, stamp in items]
            result = self._retrier.call(lambda: coll.bulk_write(ops, ordered=False))
            return result.inserted_count + result.upserted_count + result.matched_count
        except BulkWriteError as e:
            # MongoDB wrote the others and names the refused operations: try each again alone before judging it (a
            # `New` that exists is then replaced).
            details = e.details or {}
            failed = sorted({int(err["index"]) for err in details.get("writeErrors", [])})
            done = sum(int(details.get(n, 0)) for n in ("nInserted", "nUpserted", "nMatched"))
            return done + sum(self._write(collection, [items[i]], rejected) for i in failed)
        except _REFUSED as e:
            # The command as a whole was refused (FerretDB stops at the first bad document; an encoding error stops
            # pymongo before sending): halve it until the culprits stand alone. Rewriting the others is idempotent.
            if is_forbidden(e):
                raise
            half = len(items) // 2
            return self._write(collection, items[:half], rejected) + self._write(collection, items[half:], rejected)

    def _write_alone(self, coll: Collection, pending: Pending, rejected: list[Rejected]) -> int:
        item, stamp = pending
        try:
            return self._retrier.call(lambda: _write_one(coll, item, stamp))
        except _REFUSED as e:
            if is_forbidden(e):
                raise
            if isinstance(item, Merge) and len(item.fields) > 1:
                return self._write_entries(coll, item, stamp, e, rejected)
            if isinstance(item, Merge):
                rejected.append(Rejected(coll.name, item.id, c.MERGE, item.fields, e))
            elif isinstance(item, New):
                rejected.append(Rejected(coll.name, item.doc.get(c.ID), c.REPLACE, item.doc, e))
            else:
                rejected.append(Rejected(coll.name, item.get(c.ID), c.REPLACE, item, e))
            return 0

    def _write_entries(self, coll: Collection, merge: Merge, stamp: Mapping[str, Any], error: BaseException,
                       rejected: list[Rejected]) -> int:
        """A merge refused as a whole: write its entries in halves, so one bad entry does not lose the others.

        When no entry can be written (the document itself is refused), it is one dead letter, not one per entry.
        """
        mine: list[Rejected] = []
        written = self._write_halves(coll, merge, stamp, mine)
        if not written:
            rejected.append(Rejected(coll.name, merge.id, c.MERGE, merge.fields, error))
            return 0
        rejected += [Rejected(coll.name, merge.id, c.MERGE, merge.fields, r.error, field=next(iter(r.fields)))
                     for r in mine]
        return 1

    def _write_halves(self, coll: Collection, merge: Merge, stamp: Mapping[str, Any], rejected: list[Rejected]) -> int:
        names = list(merge.fields)
        written = 0
        for part in (names[: len(names) // 2], names[len(names) // 2:]):
            sub = Merge(merge.id, {name: merge.fields[name] for name in part})
            try:
                written += self._retrier.call(lambda sub=sub: _write_one(coll, sub, stamp))
            except _REFUSED as e:
                if is_forbidden(e):
                    raise
                if len(part) > 1:
                    written += self._write_halves(coll, sub, stamp, rejected)
                else:
                    rejected.append(Rejected(coll.name, merge.id, c.MERGE, sub.fields, e))
        return written

    def _dead_letter(self, rejected: list[Rejected]) -> None:
        now = datetime.now(UTC)
        letters = [dead_letter(r, now) for r in rejected]
        for r, letter in zip(rejected, letters, strict=True):
            log.warning("dead-lettered %s %s%s: %s", r.collection, letter[c.DOCUMENT_ID],
                        f" entry {letter[c.FIELD]}" if letter[c.FIELD] is not None else "", describe(r.error))
        coll = self._db[c.DEAD_LETTERS]
        for start in range(0, len(letters), self._ops_per_command):
            ops = [ReplaceOne({c.ID: d[c.ID]}, d, upsert=True) for d in letters[start:start + self._ops_per_command]]
            try:
                self._retrier.call(lambda ops=ops: coll.bulk_write(ops, ordered=False))
            except _REFUSED as e:
                raise DeadLetterRefused(f"MongoDB refused a dead letter in {c.DEAD_LETTERS}: {describe(e)}") from e


def _log_to_stderr() -> None:
    """On a Spark executor nothing configures logging: send this module's lines to stderr (the executor's log)."""
    if not logging.getLogger().hasHandlers() and not log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)


# The executors' writers keep one client per process and URI, as pymongo advises: a client is a connection pool, a
# monitor thread and a discovery of the server, and opening one for every partition of every batch made each batch
# connect anew. Spark reuses its Python workers from batch to batch, so the next batch's writers find the connections
# open. A worker forked from a process that holds a client opens its own (a client must not cross a fork).
_process_clients: dict[tuple[int, str], MongoClient] = {}
_process_clients_lock = threading.Lock()


def process_client(uri: str) -> MongoClient:
    """This process's writing client for `uri`, opened on first use and kept for the process's life."""
    key = (os.getpid(), uri)
    with _process_clients_lock:
        client = _process_clients.get(key)
        if client is None:
            client = _process_clients[key] = _open(uri)
        return client


def _open(uri: str) -> MongoClient:
    # A write that hangs fails after 2 minutes and is retried like any other transient failure.
    return connect(uri, "clickpulse-sink", socket_timeout_ms=120_000)


def upsert_routed(target: MongoTarget, docs: Iterable[tuple[str, Item]],
                  stamp_field: str | None = c.UPDATED_AT, keep_client: bool = False) -> int:
    """Replace-or-insert each (collection, document) by `_id`, in unordered bulk writes; return the count written.

    A `Merge` instead of a document sets its fields in the document with its `_id` (upserting it); a `New` is inserted
    (replaced when it exists).

    `stamp_field` gets the wall-clock time of the write, which is not part of any aggregate's value.
    No connection is opened when there is nothing to write (empty partitions are common). With `keep_client` the
    process's client for the URI is used and left open (`process_client`); otherwise one is opened and closed.
    Raises `StoreUnavailable` when the store kept failing for longer than `target.retry_for`.
    """
    client: MongoClient | None = None
    writer: _Writer | None = None
    pending: dict[str, list[Pending]] = {}
    written = 0
    try:
        for collection, doc in docs:
            if writer is None:
                _log_to_stderr()
                if keep_client:
                    db = process_client(target.uri)[target.database]
                else:
                    client = _open(target.uri)
                    db = client[target.database]
                retrier = Retrier(f"MongoDB at {mask_uri(target.uri)}", target.retry_for, log,
                                  clock=executor_clock(f"{target.uri}|{target.database}"))
                writer = _Writer(db, retrier, target.ops_per_command)
            stamp = {stamp_field: datetime.now(UTC)} if stamp_field else {}
            pending.setdefault(collection, []).append((doc, stamp))
            if len(pending[collection]) >= target.ops_per_command:
                # Every list, in the order they got their first item: what a partition yields first is written
                # first (its documents before the merges that announce them).
                for name in list(pending):
                    written += writer.flush(name, pending.pop(name))
        if writer is not None:
            for name in list(pending):
                written += writer.flush(name, pending.pop(name))
    finally:
        if client is not None:
            client.close()
    return written


def upsert_documents(target: MongoTarget, collection: str, docs: Iterable[Document],
                     stamp_field: str | None = c.UPDATED_AT) -> int:
    """`upsert_routed` for documents that all go to one collection."""
    return upsert_routed(target, ((collection, d) for d in docs), stamp_field)


def partition_writer(target: MongoTarget,
                     to_documents: Callable[[Iterable[Any]], Iterable[tuple[str, Item]]],
                     stamp_field: str | None = c.UPDATED_AT,
                     on_done: Callable[[int, float], None] | None = None) -> Callable[[Iterable[Any]], None]:
    """Build the function `DataFrame.foreachPartition` runs on executors.

    `to_documents` turns the partition's rows into (collection, document) pairs. The target is
    captured by closure, so only its URI and names travel to the executors, where each process keeps its client.
    `on_done(written, seconds)` hears how many operations the partition wrote and how long it took, reading its rows
    included.
    """

    def write(rows: Iterable[Any]) -> None:
        started = time.perf_counter()
        written = upsert_routed(target, to_documents(rows), stamp_field, keep_client=True)
        if on_done is not None:
            on_done(written, time.perf_counter() - started)

    return write


def unavailable_reason(text: str) -> str | None:
    """The message of a `StoreUnavailable` or `DeadLetterRefused` inside a Spark error's text (a Python traceback)."""
    for name in (StoreUnavailable.__name__, DeadLetterRefused.__name__):
        marker = f"{name}: "
        at = text.rfind(marker)
        if at >= 0:
            return text[at + len(marker):].splitlines()[0].strip()
    return None
