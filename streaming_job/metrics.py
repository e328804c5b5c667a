"""Per-batch progress: a `pipeline_metrics` document, the minute's sums in `pipeline_minutes` and a log line per batch."""

from __future__ import annotations

import json
import logging
import re
import threading
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from pymongo.database import Database
from pyspark import SparkContext
from pyspark.sql.streaming import StreamingQueryListener
from pyspark.sql.streaming.listener import JStreamingQueryListener

from storage import contract as c
from storage.retry import Retrier, StoreUnavailable
from storage.retry import describe as describe_error
from storage.rollup import MinuteRollups
from storage.sink import Merge, unavailable_reason, upsert_operation

log = logging.getLogger("clickpulse.progress")


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _instant(text: str | None) -> datetime | None:
    return _parse(text) if text else None


_PER_PARTITION = re.compile(rf"^({c.VALID_ROWS}|{c.COUNTED_ROWS})_p(\d+)$")


def _operator(op: dict[str, Any]) -> dict[str, Any]:
    """One stateful operator's state size and timings (Spark's `stateOperators` entry)."""
    def n(key: str) -> int:
        return int(op.get(key) or 0)

    return {c.OPERATOR: op.get("operatorName") or "", c.STATE_ROWS: n("numRowsTotal"),
            c.UPDATED_ROWS: n("numRowsUpdated"), c.REMOVED_ROWS: n("numRowsRemoved"),
            c.UPDATE_MS: n("allUpdatesTimeMs"), c.REMOVAL_MS: n("allRemovalsTimeMs"), c.COMMIT_MS: n("commitTimeMs")}


def progress_document(p: dict[str, Any]) -> dict[str, Any]:
    """Build the metrics document from one `StreamingQueryProgress` (its JSON form, as a dict)."""
    operators = p.get("stateOperators") or []
    observed = p.get("observedMetrics") or {}
    timestamp = _parse(p["timestamp"])  # every progress has one
    doc: dict[str, Any] = {
        c.ID: c.metrics_id(p.get("name") or p["id"], p["runId"], p["batchId"]),
        c.QUERY: p.get("name") or p["id"],
        c.RUN_ID: p["runId"],
        c.BATCH_ID: p["batchId"],
        c.TIMESTAMP: timestamp,
        c.INPUT_ROWS: int(p.get("numInputRows") or 0),
        c.INPUT_ROWS_PER_SECOND: float(p.get("inputRowsPerSecond") or 0.0),
        c.PROCESSED_ROWS_PER_SECOND: float(p.get("processedRowsPerSecond") or 0.0),
        c.BATCH_DURATION_MS: int(p.get("batchDuration") or (p.get("durationMs") or {}).get("triggerExecution") or 0),
        # Where the batch's time went (Spark's phases: latestOffset, getBatch, queryPlanning, addBatch, walCommit, ...)
        c.PHASES_MS: {k: int(v) for k, v in (p.get("durationMs") or {}).items()},
        c.WATERMARK: _instant((p.get("eventTime") or {}).get("watermark")),
        c.STATE_ROWS: sum(int(op.get("numRowsTotal") or 0) for op in operators),
        c.OPERATORS: [_operator(op) for op in operators],
        c.DROPPED_BY_WATERMARK: sum(int(op.get("numRowsDroppedByWatermark") or 0) for op in operators),
        c.DUPLICATES_DROPPED: sum(int((op.get("customMetrics") or {}).get("numDroppedDuplicateRows") or 0)
                                  for op in operators),
    }
    partitions: dict[int, dict[str, int]] = {}
    for metrics in observed.values():
        for name in (c.VALID_ROWS, c.INVALID_ROWS):
            if name in metrics:
                doc[name] = int(metrics[name] or 0)
        for key, value in metrics.items():
            if (m := _PER_PARTITION.match(key)) is not None:
                partitions.setdefault(int(m.group(2)), {})[m.group(1)] = int(value or 0)
    if partitions:
        doc[c.PARTITIONS] = [{c.PARTITION: p, **counts} for p, counts in sorted(partitions.items())]
    # The epoch 0 watermark Spark reports before any event means "no watermark yet".
    if doc[c.WATERMARK] is not None and doc[c.WATERMARK].year == 1970:
        doc[c.WATERMARK] = None
    doc.update(_kafka_lag(p.get("sources") or []))
    return doc


def _partition_offsets(offsets: Any) -> dict[tuple[str, int], int]:
    """{(topic, partition): offset} from a Kafka source offset ({"topic": {"0": 42}}); empty when not one."""
    if not isinstance(offsets, dict):
        return {}
    return {(topic, int(part)): int(offset) for topic, parts in offsets.items() if isinstance(parts, dict)
            for part, offset in parts.items()}


def _kafka_lag(sources: list[dict[str, Any]]) -> dict[str, Any]:
    """The lag fields of a batch (storage/contract.py), from its Kafka sources' offsets and metrics."""
    ends: dict[tuple[str, int], int] = {}
    behind: int | None = None
    avg: float | None = None
    most: int | None = None
    for source in sources:
        end = _partition_offsets(source.get("endOffset"))
        if not end:
            continue
        ends.update(end)
        metrics = source.get("metrics") or {}
        latest = _partition_offsets(source.get("latestOffset"))
        if metrics.get("offsetsBehindLatest") is not None:  # not in Spark 4.2's metrics; used if a version adds it
            behind = (behind or 0) + int(float(metrics["offsetsBehindLatest"]))
        elif latest:
            behind = (behind or 0) + sum(max(0, latest[tp] - end[tp]) for tp in end if tp in latest)
        if metrics.get("avgOffsetsBehindLatest") is not None:
            avg = max(avg or 0.0, float(metrics["avgOffsetsBehindLatest"]))
        if metrics.get("maxOffsetsBehindLatest") is not None:
            most = max(most or 0, int(float(metrics["maxOffsetsBehindLatest"])))
    if not ends:
        return {}
    lag: dict[str, Any] = {c.END_OFFSETS: [{c.TOPIC: t, c.PARTITION: part, c.OFFSET: o}
                                           for (t, part), o in sorted(ends.items())]}
    if behind is None and avg is not None:  # no latestOffset in the progress: the mean gives the sum
        behind = round(avg * len(ends))
    for name, value in ((c.OFFSETS_BEHIND_LATEST, behind), (c.AVG_OFFSETS_BEHIND_LATEST, avg),
                        (c.MAX_OFFSETS_BEHIND_LATEST, most)):
        if value is not None:
            lag[name] = value
    return lag


def describe(doc: dict[str, Any]) -> str:
    """One readable line for the log."""
    wm = doc[c.WATERMARK].strftime("%Y-%m-%dT%H:%M:%SZ") if doc[c.WATERMARK] else "none"
    extra = "".join(f" {k}={doc[k]}" for k in (c.VALID_ROWS, c.INVALID_ROWS) if k in doc)
    removed = [f"{p[c.PARTITION]}: {p[c.VALID_ROWS] - p[c.COUNTED_ROWS]}" for p in doc.get(c.PARTITIONS, ())
               if p.get(c.VALID_ROWS, 0) > p.get(c.COUNTED_ROWS, 0)]
    if removed and doc[c.DROPPED_BY_WATERMARK]:
        extra += f", duplicate or late rows by partition {', '.join(removed)}"
    if c.OFFSETS_BEHIND_LATEST in doc:
        extra += (f", Kafka lag {doc[c.OFFSETS_BEHIND_LATEST]} records"
                  f" (max {doc.get(c.MAX_OFFSETS_BEHIND_LATEST, '?')} in a partition)")
    return (f"{doc[c.QUERY]} batch {doc[c.BATCH_ID]}: {doc[c.INPUT_ROWS]} rows in {doc[c.BATCH_DURATION_MS]} ms "
            f"({doc[c.INPUT_ROWS_PER_SECOND]:.0f} in/s, {doc[c.PROCESSED_ROWS_PER_SECOND]:.0f} processed/s),"
            f" watermark {wm}, state {doc[c.STATE_ROWS]} rows, late dropped {doc[c.DROPPED_BY_WATERMARK]},"
            f" duplicates dropped {doc[c.DUPLICATES_DROPPED]}{extra}")


def _store(db: Database, doc: dict[str, Any], collection: str, merge: Merge,
           call: Callable[[Callable[[], Any]], Any] = lambda write: write()) -> None:
    """Write one progress document, then its minute's sums; `call` runs each write (a `Retrier.call` retries them)."""
    call(lambda: db[c.PIPELINE_METRICS].replace_one({c.ID: doc[c.ID]}, doc, upsert=True))
    op = upsert_operation(merge, {c.UPDATED_AT: datetime.now(UTC)})
    call(lambda: db[collection].bulk_write([op]))


def progress_writer(db: Database) -> Callable[[dict[str, Any]], None]:
    """Store each progress document, and its query's sums for the minute (pipeline_minutes) after it, before returning.

    The sums are kept in memory per run and rewritten whole each time, so a failed write heals with the next batch.
    The job itself writes through a `ProgressStore`, which never makes Spark's listener wait.
    """
    rollups = MinuteRollups()

    def write(doc: dict[str, Any]) -> None:
        _store(db, doc, *rollups.add(doc))

    return write


class ProgressStore:
    """Stores progress documents and their minute sums (pipeline_minutes) from a thread of its own.

    `put` returns at once, so the listener bus never waits for MongoDB. While MongoDB fails, the thread retries with
    backoff (logging the outage once, and once when it ends) and at most `capacity` documents wait; beyond that the
    oldest is dropped. The minute sums are cumulative, so a later merge still carries a dropped batch's numbers: only
    that batch's own pipeline_metrics document is lost.
    """

    def __init__(self, db: Database, capacity: int = 1000) -> None:
        self._db = db
        self._capacity = capacity
        self._rollups = MinuteRollups()
        self._waiting: deque[tuple[dict[str, Any], str, Merge]] = deque()
        self._changed = threading.Condition()
        self._closing = False
        self._writing = False
        self._dropped = 0
        self._stop = threading.Event()
        self._retrier = Retrier("MongoDB (progress metrics)", None, log, stop=self._stop)
        self._thread = threading.Thread(target=self._run, name="clickpulse-progress", daemon=True)
        self._thread.start()

    def put(self, doc: dict[str, Any]) -> None:
        """Queue one progress document (and its minute's new sums, computed now, in batch order)."""
        collection, merge = self._rollups.add(doc)
        with self._changed:
            if len(self._waiting) >= self._capacity:
                self._waiting.popleft()
                self._dropped += 1
                if self._dropped == 1:
                    log.warning("progress documents are piling up (MongoDB is failing): dropping the oldest beyond %d",
                                self._capacity)
            self._waiting.append((doc, collection, merge))
            self._changed.notify()

    def _run(self) -> None:
        while True:
            with self._changed:
                while not self._waiting and not self._closing:
                    self._changed.wait()
                if not self._waiting:
                    return
                doc, collection, merge = self._waiting.popleft()
                self._writing = True
            try:
                _store(self._db, doc, collection, merge, self._retrier.call)
            except StoreUnavailable:
                return  # stopped while MongoDB was failing
            except Exception as e:  # refused (not unreachable): this document only
                log.warning("could not store progress of %s batch %s: %s", doc[c.QUERY], doc[c.BATCH_ID], describe_error(e))
            finally:
                with self._changed:
                    self._writing = False
            if self._dropped:
                log.warning("dropped the %d oldest progress documents while MongoDB was failing", self._dropped)
                self._dropped = 0


    def close(self, timeout: float = 10.0) -> None:
        """Store what is waiting, for up to `timeout` seconds; then give up on the rest, saying how much."""
        with self._changed:
            self._closing = True
            self._changed.notify()
        self._thread.join(timeout)
        if self._thread.is_alive():
            self._stop.set()  # interrupts the retry's wait
            self._thread.join(5.0)
            with self._changed:
                left = len(self._waiting) + int(self._writing)
            log.warning("%d progress document(s) not stored: MongoDB was failing when the job stopped", left)


class ProgressRecorder(StreamingQueryListener):
    """Logs each batch's progress and hands it to `write` (`ProgressStore.put`, which never blocks on MongoDB)."""

    def __init__(self, write: Callable[[dict[str, Any]], None]) -> None:
        super().__init__()
        self._write = write

    @property
    def _jlistener(self) -> Any:
        """What `spark.streams.addListener` registers in the JVM: PySpark's bridge, passing a batch's progress as JSON."""
        # PySpark reads this private property of its listeners; should a release stop doing so, its own bridge calls
        # onQueryProgress instead, which stores the same documents, only more slowly.
        if not hasattr(self, "_bridge"):
            wrapper = getattr(SparkContext._jvm, "org.apache.spark.sql.streaming.PythonStreamingQueryListenerWrapper")
            self._bridge = wrapper(_ProgressAsJson(self))
        return self._bridge

    def onQueryStarted(self, event: Any) -> None:
        log.info("query %s started (id %s, run %s)", event.name, event.id, event.runId)

    def onQueryProgress(self, event: Any) -> None:
        self.record(event.progress.json)

    def record(self, progress_json: str) -> None:
        """Log and store one batch's progress, given as Spark's JSON (`StreamingQueryProgress.json`)."""
        doc = progress_document(json.loads(progress_json))
        log.info("%s", describe(doc))
        try:
            self._write(doc)
        except Exception as e:  # a metrics write must never stop the job
            log.warning("could not store progress of %s batch %s: %s", doc[c.QUERY], doc[c.BATCH_ID], e)

    def onQueryIdle(self, event: Any) -> None:
        pass

    def onQueryTerminated(self, event: Any) -> None:
        if event.exception:
            # The job reports the failure itself, as its last line: here it is only part of the story.
            reason = unavailable_reason(event.exception)
            log.info("query %s failed: %s", event.id, reason or event.exception.splitlines()[0])
        else:
            log.info("query %s stopped", event.id)


class _ProgressAsJson(JStreamingQueryListener):
    """PySpark's Java-side listener bridge, except that a batch's progress crosses into Python as its JSON.

    PySpark builds a Python progress object field by field: dozens of calls into the JVM per batch, and for each
    observed metric a lookup of `PythonSQLUtils` that tries every imported package, each miss a search of every jar on
    the class path. At 2,000 events/s that made Spark's streams listener thread 13-14% of the job's JVM time (Java Flight
    Recorder, 180 s), on a machine whose two cores the tasks need. The recorder reads only the JSON: one call.
    """

    pylistener: ProgressRecorder

    def onQueryProgress(self, jevent: Any) -> None:
        self.pylistener.record(jevent.progress().json())
