"""Progress documents: one per batch per query, with the numbers an operator needs."""

from __future__ import annotations

from datetime import UTC, datetime

from pyspark.sql import functions as F

from storage.client import mask_uri
from streaming_job.metrics import ProgressRecorder, describe, progress_document
from tests.job.jobrun import poll

PROGRESS = {
    "id": "q-1", "runId": "r-1", "name": "aggregates", "timestamp": "2026-11-23T10:00:00.500Z", "batchId": 7,
    "batchDuration": 812, "numInputRows": 1000, "inputRowsPerSecond": 990.5, "processedRowsPerSecond": 1231.0,
    "durationMs": {"addBatch": 700, "triggerExecution": 812},
    "eventTime": {"watermark": "2026-11-23T09:50:00.000Z", "max": "2026-11-23T10:00:00.000Z"},
    "stateOperators": [
        {"operatorName": "stateStoreSave", "numRowsTotal": 5000, "numRowsUpdated": 40, "numRowsRemoved": 7,
         "allUpdatesTimeMs": 30, "allRemovalsTimeMs": 250, "commitTimeMs": 20, "numRowsDroppedByWatermark": 0,
         "customMetrics": {}},
        {"operatorName": "dedupeWithinWatermark", "numRowsTotal": 900, "numRowsDroppedByWatermark": 3,
         "customMetrics": {"numDroppedDuplicateRows": 12}},
    ],
    "observedMetrics": {"aggregates": {"valid_rows": 990}},
}


def test_a_progress_event_becomes_one_document_keyed_by_query_run_and_batch():
    doc = progress_document(PROGRESS)
    assert doc == {
        "_id": "aggregates|r-1|7", "query": "aggregates", "run_id": "r-1", "batch_id": 7,
        "timestamp": datetime(2026, 11, 23, 10, 0, 0, 500000, tzinfo=UTC), "input_rows": 1000,
        "input_rows_per_second": 990.5, "processed_rows_per_second": 1231.0, "batch_duration_ms": 812,
        "phases_ms": {"addBatch": 700, "triggerExecution": 812},
        "watermark": datetime(2026, 11, 23, 9, 50, tzinfo=UTC), "state_rows": 5900, "dropped_by_watermark": 3,
        "duplicates_dropped": 12, "valid_rows": 990,
        "operators": [
            {"operator": "stateStoreSave", "state_rows": 5000, "updated_rows": 40, "removed_rows": 7, "update_ms": 30,
             "removal_ms": 250, "commit_ms": 20},
            {"operator": "dedupeWithinWatermark", "state_rows": 900, "updated_rows": 0, "removed_rows": 0,
             "update_ms": 0, "removal_ms": 0, "commit_ms": 0},
        ],
    }


def test_the_epoch_watermark_before_any_event_means_no_watermark():
    doc = progress_document({**PROGRESS, "eventTime": {"watermark": "1970-01-01T00:00:00.000Z"}})
    assert doc["watermark"] is None


def test_the_log_line_says_what_happened_in_the_batch():
    line = describe(progress_document(PROGRESS))
    assert line.startswith("aggregates batch 7: 1000 rows in 812 ms")
    assert "watermark 2026-11-23T09:50:00Z" in line and "late dropped 3" in line and "duplicates dropped 12" in line


def test_passwords_never_reach_logs():
    assert mask_uri("mongodb://user:p%40ss@db:27017/x?authSource=admin") == "mongodb://user:***@db:27017/x?authSource=admin"
    assert mask_uri("mongodb://db:27017/") == "mongodb://db:27017/"


def test_per_partition_counts_become_one_entry_per_partition_and_name_where_late_rows_came_from():
    # Given a batch that observed valid and kept rows of partitions 0 and 2, and dropped 3 rows as late
    observed = {"aggregates": {"valid_rows": 990, "valid_rows_p0": 600, "valid_rows_p2": 390},
                "aggregates_kept": {"counted_rows_p0": 600, "counted_rows_p2": 375}}
    # When it becomes a document
    doc = progress_document({**PROGRESS, "observedMetrics": observed})
    # Then each partition has its valid and counted rows, and the log line names the partition that lost rows
    assert doc["partitions"] == [{"partition": 0, "valid_rows": 600, "counted_rows": 600},
                                 {"partition": 2, "valid_rows": 390, "counted_rows": 375}]
    assert "duplicate or late rows by partition 2: 15" in describe(doc)


def test_the_recorder_stores_each_batchs_progress_as_spark_reports_it(spark, tmp_path):
    # Given a recorder listening to Spark, and a stream of two records whose batch observes how many it read
    docs: list[dict] = []
    recorder = ProgressRecorder(docs.append)
    source = tmp_path / "in"
    source.mkdir()
    (source / "1.json").write_text('{"n": 1}\n{"n": 2}\n')
    stream = (spark.readStream.schema("n INT").json(str(source))
              .observe("aggregates", F.count(F.lit(1)).alias("valid_rows")))
    spark.streams.addListener(recorder)
    query = None
    try:
        query = (stream.writeStream.queryName("aggregates").format("noop")
                 .option("checkpointLocation", str(tmp_path / "checkpoint")).start())
        # When its first batch has run
        query.processAllAvailable()
        poll(lambda: any(d["batch_id"] == 0 for d in docs), 30, "the first batch's progress")
    finally:
        if query is not None:
            query.stop()
        spark.streams.removeListener(recorder)
    # Then that batch's document says which query read how many rows, with the observed count
    doc = next(d for d in docs if d["batch_id"] == 0)
    assert (doc["query"], doc["input_rows"], doc["valid_rows"]) == ("aggregates", 2, 2)
