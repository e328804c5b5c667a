"""End to end on the real stack: every stored number equals the independent reference, run after run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from storage import contract as c
from storage import reads
from storage.layout import Layout, Windows, read_layout
from tests.job.dataset import clicks, create_topic, produce, read_back
from tests.job.jobrun import job_args, mismatches, run_job, stored
from tests.reference import expected

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def two_runs(kafka_bootstrap, mongo_uri, mongo_client, tmp_path_factory):
    """Produce, drain with available-now, produce more (with re-deliveries), drain again from the same checkpoint."""
    topic, database = create_topic(kafka_bootstrap, "e2e-clicks"), "e2e"
    work = tmp_path_factory.mktemp("e2e")
    checkpoint, log = work / "checkpoints", work / "job.log"
    args = job_args(kafka_bootstrap, topic, mongo_uri, database, checkpoint, "--trigger", "available-now")
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=1)

    first = clicks(seed=1, n=3000, start=start, span=timedelta(minutes=8))
    produce(kafka_bootstrap, topic, first)
    run_job(args, log)
    after_first = (stored(mongo_client[database]), expected(read_back(kafka_bootstrap, topic)))

    # More traffic later in event time, plus a replay of 200 first-run records (at-least-once redelivery).
    second = clicks(seed=2, n=2000, start=start + timedelta(minutes=6), span=timedelta(minutes=8), prefix="f")
    produce(kafka_bootstrap, topic, second + first[:200])
    run_job(args, log)
    records = read_back(kafka_bootstrap, topic)
    after_second = (stored(mongo_client[database]), expected(records))
    try:
        yield {"first": after_first, "second": after_second, "db": mongo_client[database], "records": len(records),
               "log": log}
    finally:
        mongo_client.drop_database(database)


def test_first_run_stores_exactly_the_reference_documents(two_runs):
    got, want = two_runs["first"]
    assert len(want[c.ACTIVE_USERS]) > 5 and len(want[c.PAGE_VIEWS]) > 100
    assert mismatches(got, want) == []


def test_users_over_the_limit_are_recorded_as_bots_for_their_seconds_and_those_at_the_limit_are_not(two_runs):
    # Given traffic with bursts of 10, 11 and 25 events in one second, When the bot seconds are read back
    got, want = two_runs["first"]
    # Then exactly the bursts over 10 events are there (as the reference has them: same users, events, coordinates)
    assert sorted(d[c.EVENTS] for d in want[c.BOT_ACTIVITY].values()) == [11, 25]
    assert got[c.BOT_ACTIVITY] == want[c.BOT_ACTIVITY]


def test_every_invalid_reason_is_stored_once(two_runs):
    got, _ = two_runs["first"]
    reasons = sorted(d[c.REASON] for d in got[c.INVALID_EVENTS].values())
    assert reasons == sorted(["malformed_json", "malformed_json", "not_an_object", "not_an_object", "missing_field",
                              "missing_field", "wrong_type", "unknown_event_type", "bad_timestamp", "future_timestamp",
                              "too_large"])


def test_second_run_from_the_same_checkpoint_is_still_exact_despite_redeliveries(two_runs):
    got, want = two_runs["second"]
    assert mismatches(got, want) == []


def test_values_are_bucketed_by_day_and_by_pane_shard(two_runs):
    # Given two drains of the topic, When the aggregate collections are read raw
    db = two_runs["db"]
    # Then active_users holds one document per UTC day, keyed by the day, with its windows' start times inside
    for doc in db[c.ACTIVE_USERS].find():
        assert doc[c.ID] == doc[c.DAY] and doc[c.WINDOW_SECONDS] == 300 and doc[c.ACTIVE_USERS_COUNT]
    # And every pane document is one shard of one pane, holding only keys whose stable hash is that shard
    for coll, values, key_of in ((c.PAGE_VIEWS, c.VIEWS, c.unescape_key),
                                 (c.USER_SESSIONS, c.EVENTS, lambda k: c.split_session_key(k)[0])):
        docs = list(db[coll].find())
        assert docs, coll
        for doc in docs:
            assert doc[c.ID] == c.pane_id(doc[c.PANE_START], doc[c.SHARD])
            assert doc[c.PANE_END] - doc[c.PANE_START] == timedelta(minutes=1)
            assert {c.shard_of(key_of(k), coll) for k in doc[values]} == {doc[c.SHARD]}


def test_a_job_that_stops_leaves_its_sessions_journal_folded_into_the_panes(two_runs):
    # Given two drains that journaled every user-session value, When the journal is read raw after the job stopped
    db = two_runs["db"]
    # Then it is empty: each run folded it into the pane shards on its way out, and said so
    assert db[c.USER_SESSIONS_JOURNAL].count_documents({}) == 0
    assert "folded the user-sessions journal" in two_runs["log"].read_text()


def test_a_job_whose_jvm_leaves_huge_methods_interpreted_has_spark_split_its_code(two_runs):
    # Given two runs of `python -m streaming_job` with HotSpot's defaults
    # Then each set Spark's codegen limit at HotSpot's, so that no generated method is left to the interpreter
    assert two_runs["log"].read_text().count("so Spark splits its code at that size") == 2


def test_a_job_started_with_python_runs_its_tasks_in_a_jvm_with_the_parallel_collector(two_runs):
    # Given two runs of `python -m streaming_job` on a local master, no JVM options chosen
    # Then each run's driver JVM (which runs the tasks) collected garbage with HotSpot's Parallel collector
    assert two_runs["log"].read_text().count("(it runs the tasks) collects garbage with PS MarkSweep, PS Scavenge") == 2


def test_a_job_with_a_local_checkpoint_renames_its_files_through_hadoops_file_system_api(two_runs):
    # Given two runs on a checkpoint in a local folder, the user choosing no checkpoint file manager
    # Then each run had Spark rename checkpoint files without a `readlink` process per rename (and stayed exact: above)
    assert two_runs["log"].read_text().count("are renamed through Hadoop's FileSystem API") == 2


def test_the_layout_document_tells_readers_each_aggregates_windows(two_runs):
    # Given a job run with the default windows, When the layout is read back
    lay = read_layout(two_runs["db"])
    # Then it names each aggregate's size and slide
    assert lay == Layout(Windows(timedelta(minutes=5), timedelta(minutes=1)),
                         Windows(timedelta(minutes=15), timedelta(minutes=1)),
                         Windows(timedelta(minutes=5), timedelta(minutes=1)))


def test_the_layout_document_holds_the_spark_ui_the_job_logged(two_runs):
    # Given two job runs, each logging where its Spark UI answers
    logged = [line.split(" UI ")[1].strip() for line in two_runs["log"].read_text().splitlines() if " UI http" in line]
    assert len(logged) == 2
    # When the report reads where the UI is, Then it is the one the newest run logged
    assert reads.spark_ui(two_runs["db"]).url == logged[-1]


def test_each_batch_of_each_query_leaves_a_progress_document(two_runs):
    # Given two drains of the topic, When the progress documents are read back
    metrics = list(two_runs["db"][c.PIPELINE_METRICS].find())
    by_query = {q: [m for m in metrics if m[c.QUERY] == q] for q in c.QUERIES}
    # Then both queries reported, every record was counted once as input, and every invalid one as invalid
    assert all(by_query.values())
    for query in c.QUERIES:
        assert sum(m[c.INPUT_ROWS] for m in by_query[query]) == two_runs["records"]
    _, want = two_runs["second"]
    assert sum(m.get(c.INVALID_ROWS, 0) for m in by_query[c.INVALID_EVENTS_QUERY]) == len(want[c.INVALID_EVENTS])
    assert sum(m[c.DUPLICATES_DROPPED] for m in by_query[c.AGGREGATES_QUERY]) > 0


def test_the_minutes_of_batches_sum_exactly_the_stored_batches(two_runs):
    # Given the progress documents of two drains (two runs of the job), When their minutes are read back
    db = two_runs["db"]
    want: dict[tuple, list[int]] = {}
    for b in db[c.PIPELINE_METRICS].find():
        sums = want.setdefault((b[c.QUERY], b[c.TIMESTAMP].replace(second=0, microsecond=0)), [0, 0, 0, 0])
        for i, n in enumerate((1, b[c.INPUT_ROWS], b.get(c.VALID_ROWS, 0), b.get(c.INVALID_ROWS, 0))):
            sums[i] += n
    got = {(m[c.QUERY], m[c.MINUTE]): [sum(r.get(f, 0) for r in m[c.RUNS].values())
                                       for f in (c.BATCHES, c.INPUT_ROWS, c.VALID_ROWS, c.INVALID_ROWS)]
           for m in db[c.PIPELINE_MINUTES].find()}
    # Then each query's minute counts its batches, rows read, valid and invalid rows exactly once
    assert want and got == want
