"""kill -9 in the middle of the stream: after a restart from the checkpoint, nothing is lost or counted twice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from storage import contract as c
from tests.job.dataset import clicks, produce, read_back
from tests.job.jobrun import job_args, kill_hard, mismatches, poll, run_job, start_job, stored
from tests.reference import expected

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_a_job_killed_mid_stream_resumes_exactly(kafka_bootstrap, mongo_uri, mongo_client, new_topic, tmp_path):
    # Given a topic with traffic and a job that reads it 400 records per batch
    topic, database = new_topic(), "crash"
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=1)
    produce(kafka_bootstrap, topic, clicks(seed=3, n=5000, start=start, span=timedelta(minutes=8)))
    checkpoint, log = tmp_path / "checkpoints", tmp_path / "job.log"
    args = job_args(kafka_bootstrap, topic, mongo_uri, database, checkpoint, "--max-offsets-per-trigger", "400")
    db = mongo_client[database]
    try:
        job = start_job([*args, "--trigger", "processing-time:500ms"], log)

        def batches_done() -> int:
            return db[c.PIPELINE_METRICS].count_documents({c.QUERY: c.AGGREGATES_QUERY, c.INPUT_ROWS: {"$gt": 0}})

        # When it is killed with SIGKILL after a few batches, mid-stream
        try:
            poll(lambda: batches_done() >= 3, timeout=240, what=f"three batches (log: {log})")
        finally:
            kill_hard(job)
        read_at_kill = sum(m[c.INPUT_ROWS] for m in db[c.PIPELINE_METRICS].find({c.QUERY: c.AGGREGATES_QUERY}))
        total = len(read_back(kafka_bootstrap, topic))
        assert read_at_kill < total, "the job finished before it was killed: the test proves nothing"

        # And more traffic arrives while it is down, and it restarts from its checkpoint
        produce(kafka_bootstrap, topic, clicks(seed=4, n=1000, start=start + timedelta(minutes=4),
                                               span=timedelta(minutes=5), prefix="g"))
        run_job([*args, "--trigger", "available-now"], log)

        # Then every document equals the reference over everything in the topic
        assert mismatches(stored(db), expected(read_back(kafka_bootstrap, topic))) == []
    finally:
        mongo_client.drop_database(database)
