"""Kafka lag in pipeline_metrics: each batch keeps how far behind Kafka it was, and where it stopped reading."""

from __future__ import annotations

from streaming_job.metrics import describe, progress_document

SOURCE = {
    "description": "KafkaV2[Subscribe[clickstream]]",
    "startOffset": {"clickstream": {"0": 90, "1": 40}},
    "endOffset": {"clickstream": {"0": 100, "1": 50}},
    "latestOffset": {"clickstream": {"0": 130, "1": 60}},
    "numInputRows": 20,
    "metrics": {"avgOffsetsBehindLatest": "20.0", "maxOffsetsBehindLatest": "30", "minOffsetsBehindLatest": "10"},
}
PROGRESS = {
    "id": "q-1", "runId": "r-1", "name": "aggregates", "timestamp": "2026-11-23T10:00:00.500Z", "batchId": 7,
    "batchDuration": 812, "numInputRows": 20, "sources": [SOURCE],
}


def test_a_batch_stores_the_records_it_left_behind_in_kafka_and_spark_s_per_partition_figures():
    # Given a batch that read partitions 0 and 1 up to offsets 100 and 50 while Kafka held 130 and 60
    doc = progress_document(PROGRESS)
    # Then the document keeps the sum, mean and max behind latest
    assert doc["offsets_behind_latest"] == 40
    assert doc["avg_offsets_behind_latest"] == 20.0
    assert doc["max_offsets_behind_latest"] == 30


def test_a_batch_stores_its_end_offsets_per_partition_so_lag_can_be_measured_after_the_job_died():
    doc = progress_document(PROGRESS)
    assert doc["end_offsets"] == [{"topic": "clickstream", "partition": 0, "offset": 100},
                                  {"topic": "clickstream", "partition": 1, "offset": 50}]


def test_without_latest_offsets_the_sum_comes_from_spark_s_mean():
    # Given a progress whose source reports the metrics but not latestOffset
    doc = progress_document({**PROGRESS, "sources": [{k: v for k, v in SOURCE.items() if k != "latestOffset"}]})
    # Then the sum is the mean times the partitions
    assert doc["offsets_behind_latest"] == 40


def test_a_batch_without_a_kafka_source_has_no_lag_fields():
    doc = progress_document({**PROGRESS, "sources": [{"description": "RateStream", "endOffset": 12}]})
    assert not {"offsets_behind_latest", "avg_offsets_behind_latest", "max_offsets_behind_latest",
                "end_offsets"} & set(doc)


def test_the_log_line_states_the_lag():
    line = describe(progress_document(PROGRESS))
    assert line.endswith(", Kafka lag 40 records (max 30 in a partition)")
