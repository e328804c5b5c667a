"""How long the job remembers an event's dedup key: until its event time falls behind the watermark, not longer.

A copy of an event carries its event time, so once that is behind the watermark the copy is dropped as late anyway
(a batch drops rows behind the watermark its previous batch evicted keys with):
keeping the key longer (Spark's within-watermark dedup keeps it a whole watermark delay longer) only doubles the state
that every batch scans for eviction.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from storage import contract as c
from tests.job.dataset import produce
from tests.job.jobrun import job_args, run_job

pytestmark = pytest.mark.integration


def _event(event_id: str, t: datetime) -> tuple[bytes, bytes]:
    value = {"event_id": event_id, "timestamp": t.strftime("%Y-%m-%dT%H:%M:%SZ"), "user_id": "u1", "session_id": "s1",
             "event_type": "click"}
    return b"u1", json.dumps(value).encode()


def test_a_key_is_forgotten_once_its_event_is_behind_the_watermark_and_a_late_copy_still_counts_no_more(
        kafka_bootstrap, mongo_uri, mongo_client, new_topic, tmp_path):
    # Given event a, then event b 15 minutes later in event time (the watermark moves to 5 minutes after a), then a
    # copy of a, read one record per batch
    topic, database = new_topic(partitions=1), "dedup_state"
    t0 = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=1)
    a = _event("a", t0)
    produce(kafka_bootstrap, topic, [a, _event("b", t0 + timedelta(minutes=15)), a])
    args = job_args(kafka_bootstrap, topic, mongo_uri, database, tmp_path / "checkpoints", "--max-offsets-per-trigger",
                    "1", "--trigger", "available-now")
    db = mongo_client[database]
    try:
        # When the job drains the topic (10-minute watermark)
        run_job(args, tmp_path / "job.log")
        batches = sorted(db[c.PIPELINE_METRICS].find({c.QUERY: c.AGGREGATES_QUERY}), key=lambda m: m[c.BATCH_ID])
        # Then the copy of a was dropped (it came while a was still remembered), so a counted once
        assert sum(m[c.DUPLICATES_DROPPED] + m[c.DROPPED_BY_WATERMARK] for m in batches) == 1
        # And after the last batch dedup remembers only b: a's key went as soon as a fell behind the watermark
        dedup = [op for op in batches[-1][c.OPERATORS] if "dedup" in op[c.OPERATOR].lower()]
        assert [op[c.STATE_ROWS] for op in dedup] == [1]
    finally:
        mongo_client.drop_database(database)
