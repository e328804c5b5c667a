"""The idempotent bulk upsert writer: each document replaces the one with its `_id`, so replays rewrite."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import chain, islice
from typing import Any

from pymongo import ReplaceOne

from storage import contract as c
from storage.client import connect


@dataclass(frozen=True)
class MongoTarget:
    """Where documents go: a URI (credentials only ever come from here) and a database name."""

    uri: str
    database: str = c.DEFAULT_DATABASE

    def __post_init__(self) -> None:
        if not self.uri.startswith(("mongodb://", "mongodb+srv://")):
            raise ValueError("Mongo URI must start with mongodb:// or mongodb+srv://")
        if not self.database or any(ch in self.database for ch in "/\\. \"$"):
            raise ValueError(f"invalid Mongo database name: {self.database!r}")


def _chunks(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk


def upsert_documents(target: MongoTarget, collection: str, docs: Iterable[Mapping[str, Any]],
                     stamp_field: str | None = c.UPDATED_AT, chunk_size: int = 1000) -> int:
    """Replace-or-insert every document by `_id`, unordered, in chunks; return how many were written.

    `stamp_field` gets the wall-clock time of the write (not part of the aggregate's value).
    """
    chunks = _chunks(docs, chunk_size)
    first = next(chunks, None)
    if first is None:  # empty partitions are common; do not open a connection for them
        return 0
    client = connect(target.uri, "clickpulse-sink")
    written = 0
    try:
        coll = client[target.database][collection]
        for chunk in chain([first], chunks):
            now = datetime.now(UTC)
            ops = [ReplaceOne({c.ID: d[c.ID]}, {**d, stamp_field: now} if stamp_field else dict(d), upsert=True)
                   for d in chunk]
            result = coll.bulk_write(ops, ordered=False)
            written += result.upserted_count + result.matched_count
    finally:
        client.close()
    return written


def partition_writer(target: MongoTarget, collection: str,
                     stamp_field: str | None = c.UPDATED_AT) -> Callable[[Iterable[Any]], None]:
    """Build the function `DataFrame.foreachPartition` runs on executors: rows (with `_id`) become documents.

    The target is captured by closure, so nothing but its URI and names travel to the executors.
    """

    def write(rows: Iterable[Any]) -> None:
        upsert_documents(target, collection, (row.asDict(recursive=True) for row in rows), stamp_field)

    return write
