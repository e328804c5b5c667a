"""Turning the job's output rows into storage-contract documents (runs on executors, per partition)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from storage import contract as c
from storage.catalog import CatalogMerges
from storage.sink import Merge
from streaming_job.windows import ACTIVE, SESSIONS

Pair = tuple[str, dict[str, Any] | Merge]


def _document(r: Any) -> tuple[str, dict[str, Any]]:
    bounds = {c.WINDOW_START: r.window_start, c.WINDOW_END: r.window_end}
    if r.kind == ACTIVE:
        return c.ACTIVE_USERS, {c.ID: c.window_id(r.window_start), **bounds, c.ACTIVE_USERS_COUNT: r.members}
    if r.kind == SESSIONS:
        return c.USER_SESSIONS, {c.ID: c.window_id(r.window_start, r.key), **bounds, c.USER_ID: r.key,
                                 c.SESSIONS: r.members, c.EVENTS: r.events}
    return c.PAGE_VIEWS, {c.ID: c.window_id(r.window_start, r.key), **bounds, c.PAGE_URL: r.key, c.VIEWS: r.events}


def aggregate_documents(rows: Iterable[Any]) -> Iterator[Pair]:
    """One (collection, document) per aggregated row, then one window-catalog `Merge` per (collection, day).

    The merges come after all of the partition's documents, so a window is recorded in the catalog only once
    this partition's documents of it are written. Documents stream out as rows come in.
    """
    catalog = CatalogMerges()
    for r in rows:
        collection, doc = _document(r)
        yield collection, doc
        catalog.record(collection, doc)
    yield from catalog.merges()


def invalid_documents(rows: Iterable[Any]) -> Iterator[Pair]:
    """Invalid-event rows are shaped as documents by `validation.invalid_events`; add their time buckets here.

    `kafka_timestamp` arrives as a naive UTC datetime (a timestamp_ntz cast in the job's UTC session), which is
    what `time_buckets` assumes of naive instants.
    """
    for r in rows:
        doc = r.asDict()
        yield c.INVALID_EVENTS, {**doc, **c.time_buckets(doc[c.KAFKA_TIMESTAMP])}
