"""A backlog read in capped batches, over partitions filled unevenly in event time: nothing on time is dropped as late.

Spark keeps one watermark per query (newest event time read minus the delay). Read in capped batches, a partition
that is ahead in event time would push it past records another partition has not been read up to yet; the job reads
each partition as a stream with its own watermark, and the query's is the slowest's (streaming_job/partitions.py).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from storage import contract as c
from streaming_job.partitions import MAX_STREAMS, assign, streams_for
from tests.job.dataset import clicks, produce, read_back, skewed
from tests.job.jobrun import job_args, kill_hard, mismatches, poll, run_job, start_job, stored
from tests.reference import expected, parse_time

SPAN = timedelta(minutes=40)


def _backlog(seed: int, n: int) -> tuple[datetime, list[tuple[bytes, bytes, int]]]:
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=2)
    return start, skewed(clicks(seed=seed, n=n, start=start, span=SPAN, users=60), SPAN, start)


def _dropped(db) -> int:
    return sum(m[c.DROPPED_BY_WATERMARK] for m in db[c.PIPELINE_METRICS].find({c.QUERY: c.AGGREGATES_QUERY}))


def test_each_partition_gets_a_stream_of_its_own_up_to_the_limit():
    # Given a topic of 3 partitions and a new checkpoint, Then there is one stream per partition
    assert assign([0, 1, 2], streams_for([0, 1, 2], None)) == [[0], [1], [2]]
    # And with more partitions than the limit, partitions share streams by their number modulo the streams
    many = list(range(MAX_STREAMS + 2))
    assert assign(many, streams_for(many, None))[:2] == [[0, MAX_STREAMS], [1, MAX_STREAMS + 1]]


def test_partitions_added_after_the_checkpoint_join_the_existing_streams():
    # Given a checkpoint made with 2 streams and a topic grown to 5 partitions
    # Then the 2 streams stay (Spark refuses another number of sources) and share the new partitions
    assert assign([0, 1, 2, 3, 4], streams_for([0, 1, 2, 3, 4], 2)) == [[0, 2, 4], [1, 3]]


def _event_time(value: bytes) -> datetime | None:
    try:
        return parse_time(json.loads(value)["timestamp"])
    except (ValueError, KeyError, TypeError):
        return None


def test_the_backlog_is_skewed_beyond_the_watermark():
    # Given the skewed backlog of these tests
    _, records = _backlog(seed=31, n=6000)
    per = {p: [t for _, v, q in records if q == p and (t := _event_time(v))] for p in range(3)}
    # When each partition is read halfway
    halfway = {p: times[len(times) // 2] for p, times in per.items()}
    # Then partition 0 is more than the 10-minute watermark delay ahead of the others: one watermark would drop them
    assert halfway[0] - halfway[1] > timedelta(minutes=10) and halfway[0] - halfway[2] > timedelta(minutes=10)


@pytest.mark.integration
def test_a_capped_drain_of_a_skewed_backlog_drops_nothing_and_is_exact(kafka_bootstrap, mongo_uri, mongo_client,
                                                                        new_topic, tmp_path):
    # Given 6,000 events over 40 minutes in three partitions, partition 0 holding the last half of the event time
    topic, database = new_topic(partitions=3), "skew_drain"
    _, records = _backlog(seed=31, n=6000)
    produce(kafka_bootstrap, topic, records)
    args = job_args(kafka_bootstrap, topic, mongo_uri, database, tmp_path / "checkpoints", "--max-offsets-per-trigger",
                    "900", "--trigger", "available-now")
    db = mongo_client[database]
    try:
        # When the job drains it in batches of at most 900 records
        log = run_job(args, tmp_path / "job.log")
        # Then it read three streams, dropped no row as late, and every number equals the reference
        assert "aggregates query reads 3 stream(s)" in log
        assert db[c.PIPELINE_METRICS].count_documents({c.QUERY: c.AGGREGATES_QUERY}) >= 6
        assert _dropped(db) == 0
        assert mismatches(stored(db), expected(read_back(kafka_bootstrap, topic))) == []
        # And each batch says, per partition, how many valid rows it read and how many dedup kept: the difference
        # is the batch's duplicates and late rows, attributed to their partitions
        for m in db[c.PIPELINE_METRICS].find({c.QUERY: c.AGGREGATES_QUERY, c.INPUT_ROWS: {"$gt": 0}}):
            parts = m[c.PARTITIONS]
            assert [p[c.PARTITION] for p in parts] == [0, 1, 2]
            assert sum(p[c.VALID_ROWS] for p in parts) == m[c.VALID_ROWS]
            assert sum(p[c.VALID_ROWS] - p[c.COUNTED_ROWS] for p in parts) == \
                m[c.DUPLICATES_DROPPED] + m[c.DROPPED_BY_WATERMARK]
    finally:
        mongo_client.drop_database(database)


@pytest.mark.integration
@pytest.mark.slow
def test_three_kills_during_a_capped_catch_up_over_skewed_partitions_lose_and_double_nothing(
        kafka_bootstrap, mongo_uri, mongo_client, new_topic, tmp_path):
    # Given the skewed backlog and a job reading it 600 records per batch every 500 ms
    topic, database = new_topic(partitions=3), "skew_crash"
    _, records = _backlog(seed=32, n=6000)
    produce(kafka_bootstrap, topic, records)
    checkpoint, log = tmp_path / "checkpoints", tmp_path / "job.log"
    args = job_args(kafka_bootstrap, topic, mongo_uri, database, checkpoint, "--max-offsets-per-trigger", "600")
    db = mongo_client[database]
    total = len(records)

    def read_so_far() -> int:
        return sum(m[c.INPUT_ROWS] for m in db[c.PIPELINE_METRICS].find({c.QUERY: c.AGGREGATES_QUERY}))

    try:
        for kill in range(3):
            # When it is killed with SIGKILL three times, each after two more batches, and restarted
            before = db[c.PIPELINE_METRICS].count_documents({c.QUERY: c.AGGREGATES_QUERY, c.INPUT_ROWS: {"$gt": 0}})
            job = start_job([*args, "--trigger", "processing-time:500ms"], log)
            try:
                poll(lambda b=before: db[c.PIPELINE_METRICS].count_documents(
                    {c.QUERY: c.AGGREGATES_QUERY, c.INPUT_ROWS: {"$gt": 0}}) >= b + 2,
                    timeout=240, what=f"two more batches before kill {kill + 1} (log: {log})")
            finally:
                kill_hard(job)
        assert read_so_far() < total, "the job read everything before the last kill: the test proves nothing"
        # And it finally drains what is left
        run_job([*args, "--trigger", "available-now"], log)
        # Then no row was dropped as late and every number equals the reference
        assert _dropped(db) == 0
        assert mismatches(stored(db), expected(read_back(kafka_bootstrap, topic))) == []
    finally:
        mongo_client.drop_database(database)


@pytest.mark.integration
@pytest.mark.slow
def test_a_partition_added_to_the_topic_is_read_by_an_existing_stream(kafka_bootstrap, mongo_uri, mongo_client,
                                                                      new_topic, tmp_path):
    from kafka.admin import KafkaAdminClient, NewPartitions

    # Given a job that drained a 2-partition topic (a checkpoint with 2 streams)
    topic, database = new_topic(partitions=2), "skew_grow"
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=1)
    produce(kafka_bootstrap, topic, clicks(seed=33, n=800, start=start, span=timedelta(minutes=5)))
    args = job_args(kafka_bootstrap, topic, mongo_uri, database, tmp_path / "checkpoints", "--trigger", "available-now")
    db = mongo_client[database]
    try:
        run_job(args, tmp_path / "job.log")
        # When the topic grows to 3 partitions and records arrive in the new one
        admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
        try:
            admin.create_partitions({topic: NewPartitions(total_count=3)})
        finally:
            admin.close()
        produce(kafka_bootstrap, topic, [(k, v, 2) for k, v in clicks(seed=34, n=300, start=start + timedelta(minutes=3),
                                                                      span=timedelta(minutes=4), prefix="n")])
        log = run_job(args, tmp_path / "job.log")
        # Then the job keeps its two streams, reads the new partition with one of them, and stays exact
        assert "aggregates query reads 2 stream(s): partitions 0, 2; partition 1" in log
        assert mismatches(stored(db), expected(read_back(kafka_bootstrap, topic))) == []
    finally:
        mongo_client.drop_database(database)
