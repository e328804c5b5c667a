"""Turning the job's output rows into storage-contract writes (runs on executors, per partition).

Aggregate rows become bucket `Merge`s (storage/contract.py): each changed value is one field `$set` into the document
of its day (active users) or of its pane and shard (page views), and a partition's values of one document go out as
one write. User-session values go into journal documents instead, a new one per pane and writer in each batch, which
the job folds into their pane shards later (storage/journal.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Any

from pyspark.sql import Column
from pyspark.sql import functions as F

from storage import contract as c
from storage.sink import Document, Item, Merge, New
from streaming_job.windows import (
    ACTIVE_USERS,
    BOT_ACTIVITY,
    KEY,
    KIND,
    PAGE_VIEWS,
    USER_SESSIONS,
    WINDOW_START,
    kafka_position,
)

Pair = tuple[str, Item]

# Values `$set` in one write at most; a bucket with more changes in one partition gets several writes (rare: a pane
# shard of a busy site). Bounds the size of a command and of what a partition holds before writing.
MAX_VALUES_PER_WRITE = 2000
# Buffered values of a partition at most before everything buffered is written.
MAX_BUFFERED_VALUES = 200_000

# Written in this order within a partition: the panes before the active-users windows, because the report finds
# windows through active_users and should find their panes written. User sessions go to their journal before any.
_ORDER = (PAGE_VIEWS, ACTIVE_USERS, BOT_ACTIVITY)


def shard_column() -> Column:
    """`storage.contract.shard_of` of an output row's key, in Spark (0 for aggregates kept in unsharded documents).

    Spark's `crc32` of a string's UTF-8 bytes is zlib's, so both sides name the same shard.
    """
    shard = F.lit(0).cast("bigint")
    for kind, shards in c.SHARDS.items():
        shard = F.when(F.col(KIND) == kind, F.pmod(F.crc32(F.col(KEY).cast("binary")), F.lit(shards))).otherwise(shard)
    return shard


def document_column() -> Column:
    """Which bucket document an output row's value goes to (what `_bucket` names), as a Spark column.

    Rows with equal values share a document: partitioned by it, every document is written by one writer, in one
    write. Active users are kept in a document per day; panes in one per (pane, shard); bot seconds in their own.
    """
    start = F.col(WINDOW_START)
    day = F.to_date(start).cast("timestamp_ntz")
    return F.struct(F.col(KIND), F.when(F.col(KIND) == ACTIVE_USERS, day).otherwise(start), shard_column())


def _seconds(start: datetime, end: datetime) -> int:
    return int((end - start).total_seconds())


def _coordinates(position: int) -> dict[str, int]:
    partition, offset = kafka_position(int(position))
    return {c.PARTITION: partition, c.OFFSET: offset}


def _bucket(r: Any) -> tuple[str, str, dict[str, Any], dict[str, int]]:
    """(collection, document id, the document's own fields, the values it `$set`s) of one aggregate row (not of user
    sessions: those go to `_Journal`)."""
    if r.kind == ACTIVE_USERS:
        day, key = c.window_day_key(r.window_start)
        head = {c.DAY: day, c.WINDOW_SECONDS: _seconds(r.window_start, r.window_end)}
        return ACTIVE_USERS, day, head, {f"{c.ACTIVE_USERS_COUNT}.{key}": int(r.users)}
    if r.kind == BOT_ACTIVITY:  # one whole document per user and second
        doc = {c.USER_ID: r.key, c.SECOND: r.window_start, c.EVENTS: int(r.events), c.FIRST: _coordinates(r.first),
               c.LAST: _coordinates(r.last), **c.time_buckets(r.window_start)}
        return BOT_ACTIVITY, c.bot_activity_id(r.window_start, r.key), doc, {}
    shard = c.shard_of(r.key, r.kind)
    head = {c.PANE_START: r.window_start, c.PANE_END: r.window_end, c.SHARD: shard}
    return PAGE_VIEWS, c.pane_id(r.window_start, shard), head, {f"{c.VIEWS}.{c.escape_key(r.key)}": int(r.events)}


class _Buckets:
    """A partition's pending `$set`s, grouped by (collection, document id) in first-seen order."""

    def __init__(self) -> None:
        self._docs: dict[tuple[str, str], dict[str, Any]] = {}
        self.values = 0

    def add(self, collection: str, doc_id: str, head: dict[str, Any], values: dict[str, int]) -> Merge | None:
        """Add values; return the bucket's `Merge` (and forget it) once it holds MAX_VALUES_PER_WRITE values."""
        fields = self._docs.setdefault((collection, doc_id), dict(head))
        self.values += sum(1 for f in values if f not in fields)
        fields.update(values)
        if len(fields) - len(head) >= MAX_VALUES_PER_WRITE:
            self.values -= len(fields) - len(head)
            return Merge(doc_id, self._docs.pop((collection, doc_id)))
        return None

    def drain(self) -> Iterator[Pair]:
        for collection in _ORDER:
            for (coll, doc_id), fields in list(self._docs.items()):
                if coll == collection:
                    yield coll, Merge(doc_id, fields)
        self._docs.clear()
        self.values = 0


class _Journal:
    """A partition's user-session values, as new journal documents: one per pane (more past MAX_VALUES_PER_WRITE)."""

    def __init__(self, batch_id: int) -> None:
        self._batch_id = batch_id
        self._token = uuid.uuid4().hex[:12]  # this writer's, so that writers of one batch never share a document
        self._docs: dict[datetime, Document] = {}
        self._written = 0
        self.values = 0

    def add(self, r: Any) -> New | None:
        """Add a row's value; return its pane's document (and forget it) once it holds MAX_VALUES_PER_WRITE values."""
        doc = self._docs.get(r.window_start)
        if doc is None:
            self._written += 1
            doc = self._docs[r.window_start] = {
                c.ID: c.journal_id(r.window_start, self._batch_id, f"{self._token}{self._written}"),
                c.PANE_START: r.window_start, c.PANE_END: r.window_end, c.BATCH_ID: self._batch_id, c.EVENTS: {}}
        values, key = doc[c.EVENTS], c.session_key(r.key, r.subkey)
        self.values += key not in values
        values[key] = int(r.events)
        if len(values) >= MAX_VALUES_PER_WRITE:
            self.values -= len(values)
            return New(self._docs.pop(r.window_start))
        return None

    def drain(self) -> Iterator[Pair]:
        yield from ((c.USER_SESSIONS_JOURNAL, New(doc)) for doc in self._docs.values())
        self._docs.clear()
        self.values = 0


def aggregate_documents(batch_id: int) -> Callable[[Iterable[Any]], Iterator[Pair]]:
    """Turn a partition's rows of batch `batch_id` into its writes: one `Merge` per bucket document they change, and
    one journal document per pane of user sessions, written first (see `_ORDER`).

    Idempotent: each value is complete (a pane's count, a window's distinct users), so writing the same rows again,
    or rows of a replayed batch, leaves the same documents; a replay's journal documents repeat values already there.
    """

    def documents(rows: Iterable[Any]) -> Iterator[Pair]:
        buckets, journal = _Buckets(), _Journal(batch_id)
        for r in rows:
            if r.kind == USER_SESSIONS:
                full_doc = journal.add(r)
                if full_doc is not None:
                    yield c.USER_SESSIONS_JOURNAL, full_doc
            else:
                collection, doc_id, head, values = _bucket(r)
                full = buckets.add(collection, doc_id, head, values)
                if full is not None:
                    yield collection, full
            if buckets.values + journal.values >= MAX_BUFFERED_VALUES:
                yield from journal.drain()
                yield from buckets.drain()
        yield from journal.drain()
        yield from buckets.drain()

    return documents


def invalid_documents(rows: Iterable[Any]) -> Iterator[Pair]:
    """Invalid-event rows are shaped as documents by `validation.invalid_events`; add their time buckets here.

    Each is a `New` document: its `_id` (topic, partition, offset) is written once, except when a batch is replayed.

    `kafka_timestamp` arrives as a naive UTC datetime (a timestamp_ntz cast in the job's UTC session), which is
    what `time_buckets` assumes of naive instants.
    """
    for r in rows:
        doc = r.asDict()
        yield c.INVALID_EVENTS, New({**doc, **c.time_buckets(doc[c.KAFKA_TIMESTAMP])})
