"""How a batch's output rows are spread over the Mongo writers: each bucket document is written by one writer."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from pyspark.sql import functions as F

from storage import contract as c
from streaming_job.documents import _bucket, shard_column
from streaming_job.main import _writers_for_server
from streaming_job.pipeline import by_bucket
from streaming_job.settings import JobSettings

OUT_SCHEMA = ("kind string, window_start timestamp_ntz, window_end timestamp_ntz, key string, subkey string, "
              "events long, users int, first long, last long")
MINUTE = timedelta(minutes=1)
KEYS = ["usr_1", "usr_2", "/p/a.b$c", "ünïcödé", "日本語のページ", "emoji 🎉", "", "usr_%2E", "a" * 300]


def out_row(kind: str, start: datetime, key: str = "", subkey: str = "", length: timedelta = MINUTE) -> tuple:
    return (kind, start, start + length, key, subkey, 1, 0 if kind != c.ACTIVE_USERS else 1, None, None)


def test_spark_names_the_shard_that_the_storage_contract_names(spark):
    # Given output rows of both sharded aggregates, with ASCII, non-ASCII, escaped and long keys
    start = datetime(2026, 11, 23, 10, 0)
    rows = [out_row(kind, start, key) for kind in (c.USER_SESSIONS, c.PAGE_VIEWS) for key in KEYS]
    df = spark.createDataFrame(rows, OUT_SCHEMA)
    # When Spark computes each row's shard
    got = {(r.kind, r.key): r.shard for r in df.select("kind", "key", shard_column().alias("shard")).collect()}
    # Then it is the shard the writers and readers compute in Python
    assert got == {(kind, key): c.shard_of(key, kind) for kind, key in got}


def test_each_bucket_document_is_written_by_one_writer_and_both_writers_get_work(spark):
    # Given a batch's output: active-users windows across midnight, and many users and pages in two panes
    day_end = datetime(2026, 11, 23, 23, 58)
    rows = [out_row(c.ACTIVE_USERS, day_end + i * MINUTE, length=5 * MINUTE) for i in range(4)]
    for pane in (day_end, day_end + MINUTE):
        rows += [out_row(c.USER_SESSIONS, pane, f"usr_{u}", f"s{u % 3}") for u in range(500)]
        rows += [out_row(c.PAGE_VIEWS, pane, f"/p/{p}") for p in range(50)]
    df = spark.createDataFrame(rows, OUT_SCHEMA)
    # When it is spread over two writers
    parts = by_bucket(2)(df).withColumn("writer", F.spark_partition_id()).collect()
    # Then every document's values are in one partition, and both partitions hold documents
    writer_of: dict[tuple[str, str], set[int]] = {}
    for r in parts:
        # a user's sessions are journaled; their pane shard is where they are folded to
        collection, doc_id = ((c.USER_SESSIONS, c.pane_id(r.window_start, c.shard_of(r.key, c.USER_SESSIONS)))
                              if r.kind == c.USER_SESSIONS else _bucket(r)[:2])
        writer_of.setdefault((collection, doc_id), set()).add(r.writer)
    assert all(len(w) == 1 for w in writer_of.values())
    assert {w for ws in writer_of.values() for w in ws} == {0, 1}
    assert len({d for d in writer_of if d[0] == c.ACTIVE_USERS}) == 2  # the windows of two days


@pytest.mark.integration
def test_on_ferretdb_the_job_writes_with_two_writers_of_25_operation_commands_unless_told(mongo_client, mongo_uri):
    # Given the test stack's FerretDB, and job settings with and without --mongo-writers
    settings = JobSettings(bootstrap_servers="127.0.0.1:9", mongo_uri=mongo_uri, checkpoint_dir="/tmp/unused")
    # When the job picks its writers for that server
    target, writers = _writers_for_server(mongo_client, settings)
    _, told = _writers_for_server(mongo_client, replace(settings, mongo_writers=1))
    # Then two writers per query send commands of 25 operations, and --mongo-writers wins
    assert (writers, target.ops_per_command) == (2, 25)
    assert told == 1
