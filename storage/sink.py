"""The idempotent bulk upsert writer: each document replaces the one with its `_id`, so replays rewrite.

Besides whole documents it writes `Merge`s: fields `$set` into the document with an `_id` (created when missing),
which is how the job records windows in the window catalog without reading it first.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pymongo import MongoClient, ReplaceOne, UpdateOne

from storage import contract as c
from storage.client import connect

Document = Mapping[str, Any]


@dataclass(frozen=True)
class Merge:
    """Set `fields` (dotted paths allowed) in the document with this `_id`, creating it when missing."""

    id: str
    fields: Mapping[str, Any]


@dataclass(frozen=True)
class MongoTarget:
    """Where documents go: a URI (credentials only ever come from here) and a database name."""

    uri: str
    database: str = c.DEFAULT_DATABASE
    # Operations per bulk command. FerretDB v1 keeps a backend connection per matched upsert until the
    # whole command ends, so large commands exhaust its pool and hang: it needs small ones.
    ops_per_command: int = 1000

    def __post_init__(self) -> None:
        if self.ops_per_command <= 0:
            raise ValueError("ops_per_command must be positive")
        if not self.uri.startswith(("mongodb://", "mongodb+srv://")):
            raise ValueError("Mongo URI must start with mongodb:// or mongodb+srv://")
        if not self.database or any(ch in self.database for ch in "/\\. \"$"):
            raise ValueError(f"invalid Mongo database name: {self.database!r}")


def upsert_operation(item: Document | Merge, stamp: Mapping[str, Any]) -> ReplaceOne | UpdateOne:
    """The bulk-write operation for one document (replace by `_id`) or `Merge` (set fields), with `stamp` added."""
    if isinstance(item, Merge):
        return UpdateOne({c.ID: item.id}, {"$set": {**item.fields, **stamp}}, upsert=True)
    return ReplaceOne({c.ID: item[c.ID]}, {**item, **stamp}, upsert=True)


def upsert_routed(target: MongoTarget, docs: Iterable[tuple[str, Document | Merge]],
                  stamp_field: str | None = c.UPDATED_AT) -> int:
    """Replace-or-insert each (collection, document) by `_id`, in unordered bulk writes; return the count.

    A `Merge` instead of a document sets its fields in the document with its `_id` (upserting it).

    `stamp_field` gets the wall-clock time of the write, which is not part of any aggregate's value.
    No connection is opened when there is nothing to write (empty partitions are common).
    """
    client: MongoClient | None = None
    pending: dict[str, list[ReplaceOne | UpdateOne]] = {}
    written = 0

    def flush(collection: str) -> None:
        nonlocal written
        ops = pending.pop(collection, [])
        if ops:
            assert client is not None
            result = client[target.database][collection].bulk_write(ops, ordered=False)
            written += result.upserted_count + result.matched_count

    try:
        for collection, doc in docs:
            if client is None:
                # A write that hangs fails the task instead, and Spark retries it (writes are idempotent).
                client = connect(target.uri, "clickpulse-sink", socket_timeout_ms=120_000)
            stamp = {stamp_field: datetime.now(UTC)} if stamp_field else {}
            pending.setdefault(collection, []).append(upsert_operation(doc, stamp))
            if len(pending[collection]) >= target.ops_per_command:
                # Every list, in the order they got their first item: what a partition yields first is written
                # first (its documents before the catalog merges that announce their windows).
                for name in list(pending):
                    flush(name)
        for collection in list(pending):
            flush(collection)
    finally:
        if client is not None:
            client.close()
    return written


def upsert_documents(target: MongoTarget, collection: str, docs: Iterable[Document],
                     stamp_field: str | None = c.UPDATED_AT) -> int:
    """`upsert_routed` for documents that all go to one collection."""
    return upsert_routed(target, ((collection, d) for d in docs), stamp_field)


def partition_writer(target: MongoTarget,
                     to_documents: Callable[[Iterable[Any]], Iterable[tuple[str, Document | Merge]]],
                     stamp_field: str | None = c.UPDATED_AT) -> Callable[[Iterable[Any]], None]:
    """Build the function `DataFrame.foreachPartition` runs on executors.

    `to_documents` turns the partition's rows into (collection, document) pairs. The target is
    captured by closure, so only its URI and names travel to the executors.
    """

    def write(rows: Iterable[Any]) -> None:
        upsert_routed(target, to_documents(rows), stamp_field)

    return write
