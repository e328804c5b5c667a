"""Per-minute sums of the job's batches (pipeline_minutes, see storage/contract.py), and points built from them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from storage import contract as c
from storage.sink import Merge

Doc = dict[str, Any]

_SUMMED = (c.INPUT_ROWS, c.DROPPED_BY_WATERMARK, c.DUPLICATES_DROPPED)
_OBSERVED = (c.VALID_ROWS, c.INVALID_ROWS)  # each counted by one query only: kept only where its batches have it
_LAST = (c.RUN_ID, c.BATCH_ID, c.TIMESTAMP, c.WATERMARK, c.STATE_ROWS)


def _input_seconds(doc: Mapping[str, Any]) -> float:
    """How long the batch's rows took to arrive (Spark's inputRowsPerSecond is rows over that time)."""
    rows, rate = int(doc.get(c.INPUT_ROWS) or 0), float(doc.get(c.INPUT_ROWS_PER_SECOND) or 0.0)
    return rows / rate if rows and rate else 0.0


class MinuteRollups:
    """Sums progress documents per (query, run, minute); `add` answers the `Merge` that stores the new sums.

    Unless `keep_history`, only each (query, run)'s newest minute is kept in memory (batches come in order).
    """

    def __init__(self, keep_history: bool = False) -> None:
        self._keep_history = keep_history
        # (query, run, minute id) -> (the minute document's own fields, the run's sums)
        self._sums: dict[tuple[str, str, str], tuple[Doc, Doc]] = {}

    def add(self, doc: Mapping[str, Any]) -> tuple[str, Merge]:
        query, run, at = doc[c.QUERY], doc[c.RUN_ID], doc[c.TIMESTAMP]
        mid = c.minute_id(query, at)
        if (query, run, mid) not in self._sums:
            if not self._keep_history:
                self._sums = {k: v for k, v in self._sums.items() if k[:2] != (query, run)}
            self._sums[(query, run, mid)] = (
                {c.QUERY: query, c.MINUTE: c.minute_start(at), **c.time_buckets(at)},
                {c.BATCHES: 0, c.INPUT_SECONDS: 0.0, c.BATCH_DURATION_MS: 0, c.MAX_BATCH_DURATION_MS: 0,
                 **dict.fromkeys(_SUMMED, 0)})
        head, sums = self._sums[(query, run, mid)]
        duration = int(doc.get(c.BATCH_DURATION_MS) or 0)
        sums[c.BATCHES] += 1
        sums[c.INPUT_SECONDS] += _input_seconds(doc)
        sums[c.BATCH_DURATION_MS] += duration
        sums[c.MAX_BATCH_DURATION_MS] = max(sums[c.MAX_BATCH_DURATION_MS], duration)
        for f in _SUMMED:
            sums[f] += int(doc.get(f) or 0)
        for f in _OBSERVED:
            if f in doc:
                sums[f] = sums.get(f, 0) + int(doc[f] or 0)
        sums.update({f: doc.get(f) for f in _LAST})
        return c.PIPELINE_MINUTES, Merge(mid, {**head, f"{c.RUNS}.{run}": dict(sums)})

    def merges(self) -> list[tuple[str, Merge]]:
        """One `Merge` per minute document with every run's sums held (for seeding from stored batches)."""
        fields: dict[str, Doc] = {}
        for (_, run, mid), (head, sums) in self._sums.items():
            fields.setdefault(mid, dict(head))[f"{c.RUNS}.{run}"] = dict(sums)
        return [(c.PIPELINE_MINUTES, Merge(mid, f)) for mid, f in fields.items()]


def rollup_merges(batches: Iterable[Mapping[str, Any]]) -> list[tuple[str, Merge]]:
    """The pipeline_minutes `Merge`s summing these progress documents (any order)."""
    rollups = MinuteRollups(keep_history=True)
    for b in sorted(batches, key=lambda b: (b[c.QUERY], b[c.RUN_ID], b[c.TIMESTAMP])):
        rollups.add(b)
    return rollups.merges()


def minute_point(doc: Mapping[str, Any]) -> Doc:
    """One chart point from a pipeline_minutes document, shaped like a batch: its runs summed, rates time-weighted.

    `timestamp`, `batch_id`, `watermark` and `state_rows` are those of the minute's last batch; `batch_duration_ms`
    is the mean over its batches; rows/s in and processed are its rows over the time they took to arrive and to
    process.
    """
    runs = list((doc.get(c.RUNS) or {}).values())
    last = max(runs, key=lambda r: r[c.TIMESTAMP])
    batches = sum(int(r[c.BATCHES]) for r in runs)
    rows = sum(int(r[c.INPUT_ROWS]) for r in runs)
    seconds = sum(float(r[c.INPUT_SECONDS]) for r in runs)
    duration_ms = sum(int(r[c.BATCH_DURATION_MS]) for r in runs)
    point = {c.QUERY: doc[c.QUERY], c.MINUTE: doc[c.MINUTE], **{f: last.get(f) for f in _LAST},
             c.BATCHES: batches, c.INPUT_ROWS: rows,
             c.INPUT_ROWS_PER_SECOND: rows / seconds if seconds else 0.0,
             c.PROCESSED_ROWS_PER_SECOND: rows / (duration_ms / 1000) if duration_ms else 0.0,
             c.BATCH_DURATION_MS: round(duration_ms / batches) if batches else 0,
             c.MAX_BATCH_DURATION_MS: max(int(r[c.MAX_BATCH_DURATION_MS]) for r in runs)}
    for f in _SUMMED[1:]:
        point[f] = sum(int(r.get(f) or 0) for r in runs)
    for f in _OBSERVED:
        if any(f in r for r in runs):
            point[f] = sum(int(r.get(f) or 0) for r in runs)
    return point
