"""The window catalog: which windows an aggregate collection holds, recorded per UTC day (see storage/contract.py)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any

from storage import contract as c
from storage.sink import Merge


def catalog_value(collection: str, doc: Mapping[str, Any]) -> int:
    """What the catalog keeps for a window: its distinct users for active_users, else 1 (the window exists)."""
    return int(doc[c.ACTIVE_USERS_COUNT]) if collection == c.ACTIVE_USERS else 1


class CatalogMerges:
    """Collects the windows of aggregate documents as they stream by; `merges()` records them in the catalog.

    Memory grows with the distinct (collection, day) pairs and windows seen, not with the documents.
    """

    def __init__(self) -> None:
        self._fields: dict[str, dict[str, Any]] = {}
        self._seen: set[tuple[str, Any, Any, int]] = set()

    def record(self, collection: str, doc: Mapping[str, Any]) -> None:
        """Note the window of one document (documents of other collections are ignored)."""
        if collection not in c.AGGREGATE_COLLECTIONS:
            return
        value = catalog_value(collection, doc)
        seen = (collection, doc[c.WINDOW_START], doc[c.WINDOW_END], value)
        if seen in self._seen:  # a window's many keyed documents: format its entry once, not per row
            return
        self._seen.add(seen)
        cid, entry = c.catalog_entry(collection, doc[c.WINDOW_START], doc[c.WINDOW_END], value)
        self._fields.setdefault(cid, {}).update(entry)

    def merges(self) -> list[tuple[str, Merge]]:
        """One catalog `Merge` per (collection, day); idempotent and commutative, so any order or replay is fine."""
        return [(c.WINDOW_CATALOG, Merge(cid, fields)) for cid, fields in self._fields.items()]


def catalog_merges(pairs: Iterable[tuple[str, Mapping[str, Any]]]) -> list[tuple[str, Merge]]:
    """The catalog `Merge`s recording the windows of these (collection, document) pairs."""
    collector = CatalogMerges()
    for collection, doc in pairs:
        collector.record(collection, doc)
    return collector.merges()


def catalog_windows(docs: Iterable[Mapping[str, Any]], value_field: str | None = None) -> list[dict[str, Any]]:
    """The windows recorded in catalog documents, newest first: [{window_start, window_end, updated_at}].

    With `value_field`, each window also carries the catalog value under that name (the active-user count for
    active_users). `updated_at` is the last write to the window's day, as close as the catalog gets to the window's.
    """
    out = []
    for doc in docs:
        size = timedelta(seconds=int(doc[c.WINDOW_SECONDS]))
        for key, value in (doc.get(c.WINDOWS) or {}).items():
            start = c.catalog_start(doc[c.DAY], key)
            w = {c.WINDOW_START: start, c.WINDOW_END: start + size, c.UPDATED_AT: doc.get(c.UPDATED_AT)}
            if value_field is not None:
                w[value_field] = value
            out.append(w)
    return sorted(out, key=lambda w: w[c.WINDOW_START], reverse=True)
