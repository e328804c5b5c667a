"""Turning the job's output rows into storage-contract documents (runs on executors, per partition)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from storage import contract as c
from streaming_job.windows import ACTIVE, SESSIONS

Pair = tuple[str, dict[str, Any]]


def aggregate_documents(rows: Iterable[Any]) -> Iterator[Pair]:
    """One (collection, document) per aggregated row, keyed by window start and key."""
    for r in rows:
        bounds = {c.WINDOW_START: r.window_start, c.WINDOW_END: r.window_end}
        if r.kind == ACTIVE:
            yield c.ACTIVE_USERS, {c.ID: c.window_id(r.window_start), **bounds, c.ACTIVE_USERS_COUNT: r.members}
        elif r.kind == SESSIONS:
            yield c.USER_SESSIONS, {c.ID: c.window_id(r.window_start, r.key), **bounds, c.USER_ID: r.key,
                                    c.SESSIONS: r.members, c.EVENTS: r.events}
        else:
            yield c.PAGE_VIEWS, {c.ID: c.window_id(r.window_start, r.key), **bounds, c.PAGE_URL: r.key,
                                 c.VIEWS: r.events}


def invalid_documents(rows: Iterable[Any]) -> Iterator[Pair]:
    """Invalid-event rows are already shaped as documents by `validation.invalid_events`."""
    for r in rows:
        yield c.INVALID_EVENTS, r.asDict()
