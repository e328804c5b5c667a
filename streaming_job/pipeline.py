"""The job's two streaming queries, with reading, transforming and writing kept apart.

- `aggregates`: valid events -> watermark -> dedup -> window and pane rows -> one exact aggregation (update mode)
  -> bucket `$set`s into active_users, page_views and user_sessions.
- `invalid_events`: records not known valid by their shape -> validated -> invalid events -> upserts into
  invalid_events (stateless).

Both read the same topic with Spark's Kafka source; each keeps its own checkpoint directory. The aggregates query
reads each partition as a stream of its own, each with its own watermark (see streaming_job/partitions.py).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from functools import cache, reduce

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming import StreamingQuery

from storage import contract as c
from storage.sink import MongoTarget, partition_writer
from streaming_job import partitions as kp
from streaming_job.documents import aggregate_documents, document_column, invalid_documents
from streaming_job.settings import JobSettings
from streaming_job.validation import REASON, decode_kafka, invalid_events, skip_plainly_valid, valid_events, validate
from streaming_job.windows import (
    aggregate,
    deduplicate,
    over_bot_limit,
    window_rows,
    with_watermark,
    with_window_start,
)

Step = Callable[[DataFrame], DataFrame]
log = logging.getLogger(__name__)


def run_steps(df: DataFrame, steps: Sequence[Step]) -> DataFrame:
    return reduce(DataFrame.transform, steps, df)


def parse_steps(s: JobSettings, known_shape: bool = True) -> list[Step]:
    """Kafka records -> validated rows (valid and invalid, with reasons); `known_shape=False` parses every record, the
    producer's shape too (see `validate`)."""
    return [decode_kafka, validate(s.event_types, s.max_event_bytes, s.max_future, known_shape)]


def invalid_steps(s: JobSettings) -> list[Step]:
    """Kafka records -> validated rows, all invalid but for valid events of a shape the producer does not write.

    Valid events in the producer's own shape are known valid by one regex (`skip_plainly_valid`): left out before
    validation, for a query that keeps only the invalid ones. Validation then looks no more for that shape in what is
    left, none of which has it.
    """
    decode, check = parse_steps(s, known_shape=False)
    return [decode, skip_plainly_valid(s.event_types, s.max_event_bytes, s.max_future), check]


def event_steps(s: JobSettings) -> list[Step]:
    """Validated rows of one stream -> its valid events, with event time and its own watermark declared."""
    return [valid_events, with_watermark(s.watermark)]


def count_steps(s: JobSettings, partitions: Sequence[int] = ()) -> list[Step]:
    """Valid events of every stream -> aggregated window rows (what the state store holds).

    With `partitions`, each partition's valid rows and the rows of it that dedup kept are observed too, so rows
    removed as duplicates or as late show per partition (pipeline_metrics `partitions`).
    """
    def per_partition(name: str) -> list:
        return [F.count_if(F.col(c.PARTITION) == p).alias(c.partition_metric(name, p)) for p in partitions]

    observe_kept = [_observe(f"{c.AGGREGATES_QUERY}_kept", *per_partition(c.COUNTED_ROWS))] if partitions else []
    return [
        _observe(c.AGGREGATES_QUERY, F.count(F.lit(1)).alias(c.VALID_ROWS), *per_partition(c.VALID_ROWS)),
        deduplicate,
        *observe_kept,
        window_rows(s.active_users_window, s.sessions_window, s.page_views_window, s.watermark,
                    bots=s.bot_max_events_per_second is not None),
        aggregate,
    ]


def aggregated_rows(s: JobSettings, streams: Sequence[DataFrame], partitions: Sequence[int] = ()) -> DataFrame:
    """Kafka records of each stream -> the aggregation's rows: each stream parsed and watermarked on its own, then one
    dedup and aggregation over their union (`partitions` as in `count_steps`)."""
    events = [run_steps(df, [*parse_steps(s), *event_steps(s)]) for df in streams]
    return run_steps(union_all(events), count_steps(s, partitions))


def aggregate_steps(s: JobSettings) -> list[Step]:
    """Validated rows of one stream -> aggregated window rows (event_steps then count_steps)."""
    return [*event_steps(s), *count_steps(s)]


def union_all(frames: Sequence[DataFrame]) -> DataFrame:
    return reduce(DataFrame.union, frames)


def output_steps(s: JobSettings) -> list[Step]:
    """Aggregated rows of one batch -> rows ready to become documents (people's seconds left out)."""
    return [over_bot_limit(s.bot_max_events_per_second),
            with_window_start(s.active_users_window, s.sessions_window, s.page_views_window)]


def _observe(name: str, *metrics) -> Step:
    def step(df: DataFrame) -> DataFrame:
        return df.observe(name, *metrics)

    return step


def read_kafka(spark: SparkSession, s: JobSettings, partitions: Sequence[int] | None = None,
               max_offsets: int | None = None) -> DataFrame:
    """The topic (all of it, new partitions included as they appear), or only `partitions` of it."""
    reader = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", s.bootstrap_servers)
        .option("startingOffsets", s.starting_offsets)
        .option("failOnDataLoss", str(s.fail_on_data_loss).lower())
    )
    reader = (reader.option("subscribe", s.topic) if partitions is None
              else reader.option("assign", json.dumps({s.topic: list(partitions)})))
    if max_offsets:
        reader = reader.option("maxOffsetsPerTrigger", max_offsets)
    return reader.load()


def read_streams(spark: SparkSession, s: JobSettings, groups: Sequence[Sequence[int]]) -> list[DataFrame]:
    """One Kafka stream per group of partitions; a cap on records per batch is shared out between them."""
    if len(groups) <= 1:
        return [read_kafka(spark, s, max_offsets=s.max_offsets_per_trigger)]
    cap = -(-s.max_offsets_per_trigger // len(groups)) if s.max_offsets_per_trigger else None
    return [read_kafka(spark, s, g, cap) for g in groups]


def _limit_writers(df: DataFrame, writers: int | None) -> DataFrame:
    """At most `writers` partitions, so at most that many concurrent Mongo connections write (for the stateless
    invalid-events query: a coalesce, no shuffle)."""
    return df if writers is None else df.coalesce(writers)


def by_bucket(writers: int | None) -> Step:
    """At most `writers` partitions, each bucket document in one of them: every value of a document is then `$set` by
    one writer in one write, and no two writers touch the same document. The shards of a pane spread over the writers.
    """
    bucket = cache(document_column)  # built at the first batch and kept, as the output steps do (streaming_job/windows.py)

    def step(df: DataFrame) -> DataFrame:
        return df.repartition(writers, bucket()) if writers else df.repartition(bucket())

    return step


def write_aggregates(s: JobSettings, target: MongoTarget, writers: int | None = None) -> Callable[[DataFrame, int], None]:
    """foreachBatch body: `$set` the changed values of this batch into their buckets, and journal its user-session values
    (complete values: replays rewrite)."""
    steps = [*output_steps(s), by_bucket(writers)]
    busy: list = []  # the writers' seconds and operations, summed over a batch's partitions (Spark accumulators)

    def run(batch: DataFrame, batch_id: int) -> None:
        started = time.perf_counter()
        if not busy:
            busy.extend(batch.sparkSession.sparkContext.accumulator(v) for v in (0.0, 0))
        seconds, operations = busy
        before = seconds.value, operations.value

        def done(written: int, took: float) -> None:
            seconds.add(took)
            operations.add(written)

        out = run_steps(batch, steps)
        built = time.perf_counter()
        out.foreachPartition(partition_writer(target, aggregate_documents(batch_id), on_done=done))
        # Where a batch's time goes, for whoever tunes the job (--log-level DEBUG): Python building the batch's plan,
        # then Spark running it, which includes the writers' time (summed over partitions running side by side).
        log.debug("aggregates batch %d: plan built in %d ms, run in %d ms; writers busy %d ms for %d operations",
                  batch_id, (built - started) * 1000, (time.perf_counter() - built) * 1000,
                  (seconds.value - before[0]) * 1000, operations.value - before[1])

    return run


def write_invalid(target: MongoTarget, writers: int | None = None) -> Callable[[DataFrame, int], None]:
    write = partition_writer(target, invalid_documents, stamp_field=c.STORED_AT)

    def run(batch: DataFrame, batch_id: int) -> None:
        _limit_writers(batch, writers).foreachPartition(write)

    return run


# The invalid-events query runs at most this often: its records are stored for inspection, not counted, and every
# batch of it takes time from the aggregates query (at 2,000 events/s on 2 cores, a 5 s trigger here took the
# aggregates' freshness p95 from 5.7 s to 4.7 s).
INVALID_EVENTS_EVERY = timedelta(seconds=5)


def _trigger(s: JobSettings, at_least: timedelta = timedelta(0)) -> dict[str, object]:
    if s.trigger.available_now:
        return {"availableNow": True}
    return {"processingTime": f"{int(max(s.trigger.interval, at_least).total_seconds() * 1000)} milliseconds"}


def stream_groups(spark: SparkSession, s: JobSettings, stop: threading.Event | None = None) -> list[list[int]]:
    """The partitions of each of the aggregates query's streams (see streaming_job/partitions.py)."""
    partitions = kp.topic_partitions(s.bootstrap_servers, s.topic, stop)
    existing = kp.checkpoint_streams(spark, s.query_checkpoint(c.AGGREGATES_QUERY))
    groups = kp.assign(partitions, kp.streams_for(partitions, existing))
    if len(partitions) > len(groups) > 1:
        log.warning("%d partitions share %d streams (fixed by the checkpoint, or the limit of %d): partitions of one "
                    "stream share a watermark", len(partitions), len(groups), kp.MAX_STREAMS)
    return groups


def start_queries(spark: SparkSession, s: JobSettings, target: MongoTarget,
                  writers: int | None = None, stop: threading.Event | None = None) -> list[StreamingQuery]:
    """Start both queries; each has its own checkpoint directory under `s.checkpoint_dir`.

    `writers` caps concurrent Mongo writers per batch (None: one per partition).
    """
    groups = stream_groups(spark, s, stop)
    aggregated = aggregated_rows(s, read_streams(spark, s, groups), [p for g in groups for p in g] if len(groups) > 1 else ())
    log.info("aggregates query reads %d stream(s): %s", len(groups), "; ".join(
        f"partition{'s' if len(g) > 1 else ''} {', '.join(map(str, g))}" for g in groups))
    parsed = run_steps(read_kafka(spark, s, max_offsets=s.max_offsets_per_trigger), invalid_steps(s))
    invalid = run_steps(
        parsed.observe(c.INVALID_EVENTS_QUERY, F.count(F.col(REASON)).alias(c.INVALID_ROWS)), [invalid_events]
    )
    queries = [
        aggregated.writeStream.queryName(c.AGGREGATES_QUERY)
        .outputMode("update")
        .foreachBatch(write_aggregates(s, target, writers))
        .option("checkpointLocation", s.query_checkpoint(c.AGGREGATES_QUERY))
        .trigger(**_trigger(s))
        .start(),
    ]
    try:
        queries.append(
            invalid.writeStream.queryName(c.INVALID_EVENTS_QUERY)
            .outputMode("append")
            .foreachBatch(write_invalid(target, writers))
            .option("checkpointLocation", s.query_checkpoint(c.INVALID_EVENTS_QUERY))
            .trigger(**_trigger(s, INVALID_EVENTS_EVERY))
            .start()
        )
    except Exception:
        queries[0].stop()
        raise
    return queries
