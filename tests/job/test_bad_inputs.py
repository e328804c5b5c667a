"""The bad-input corpus: every record counts or is stored with its reason, the job never stops, the reference agrees."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from storage import contract as c
from streaming_job.pipeline import run_steps
from streaming_job.validation import decode_kafka, validate
from tests.job.bad_inputs import MAX_EVENT_BYTES, BadInput, corpus
from tests.job.dataset import clicks, create_topic, produce, read_back
from tests.job.jobrun import job_args, mismatches, run_job, stored
from tests.reference import TYPES, Record, classify, expected

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)  # the Kafka timestamp of every record in the unit tests
CORPUS = corpus(NOW)


def test_the_corpus_has_at_least_40_records_of_every_reason_and_valid_ones():
    # Given the corpus, Then it is large and covers every reason validation can give, and valid events too
    assert len(CORPUS) >= 40
    assert {b.reason for b in CORPUS} == {*c.INVALID_REASONS, None}


@pytest.mark.parametrize("bad", CORPUS, ids=[b.name for b in CORPUS])
def test_the_reference_gives_each_corpus_record_its_reason(bad: BadInput):
    # Given one corpus record that reached Kafka at NOW, When the reference classifies it, Then it gets its reason
    assert classify(Record("t", 0, 0, NOW, bad.value), MAX_EVENT_BYTES)[0] == bad.reason


@pytest.fixture(scope="module")
def job_reasons(spark) -> dict[str, str | None]:
    """The reason the job's validation gives each corpus record (one Spark job for the whole corpus)."""
    rows = [("t", 0, i, NOW.replace(tzinfo=None), None if b.value is None else bytearray(b.value))
            for i, b in enumerate(CORPUS)]
    df = spark.createDataFrame(rows, "topic string, partition int, offset long, timestamp timestamp, value binary")
    validated = run_steps(df, [decode_kafka, validate(TYPES, MAX_EVENT_BYTES, timedelta(minutes=5))])
    return {CORPUS[r.offset].name: r.reason for r in validated.select("offset", "reason").collect()}


@pytest.mark.parametrize("bad", CORPUS, ids=[b.name for b in CORPUS])
def test_the_job_gives_each_corpus_record_its_reason(job_reasons, bad: BadInput):
    assert job_reasons[bad.name] == bad.reason


@pytest.fixture(scope="module")
def drained(kafka_bootstrap, mongo_uri, mongo_client, tmp_path_factory):
    """The corpus shuffled into normal traffic on a real topic, drained once by the real job (available-now)."""
    topic, database = create_topic(kafka_bootstrap, "bad-inputs"), "bad_inputs"
    work = tmp_path_factory.mktemp("bad-inputs")
    now = datetime.now(UTC)
    bad = corpus(now)
    traffic = clicks(seed=11, n=600, start=now - timedelta(minutes=10), span=timedelta(minutes=8))
    records = traffic + [(b.name.encode(), b.value) for b in bad]
    random.Random(11).shuffle(records)
    produce(kafka_bootstrap, topic, records)
    args = job_args(kafka_bootstrap, topic, mongo_uri, database, work / "checkpoints", "--trigger", "available-now")
    run_job(args, work / "job.log")  # fails the fixture unless the job exits 0
    try:
        yield {"bad": bad, "records": read_back(kafka_bootstrap, topic), "stored": stored(mongo_client[database])}
    finally:
        mongo_client.drop_database(database)


@pytest.mark.integration
def test_the_job_drains_the_corpus_and_stores_exactly_the_reference_documents(drained):
    # Given the corpus and normal traffic drained by the real job (which exited 0)
    # When every stored document is compared with the reference's, Then none differs
    assert mismatches(drained["stored"], expected(drained["records"])) == []


@pytest.mark.integration
def test_every_corpus_record_counts_or_is_stored_with_its_reason(drained):
    # Given the drained topic, When each corpus record is found by its value among the stored invalid events
    names = {b.value: b.name for b in drained["bad"]}
    want = {b.name: b.reason for b in drained["bad"]}
    invalid = drained["stored"][c.INVALID_EVENTS]
    got = {names[r.value]: invalid.get(c.invalid_event_id(r.topic, r.partition, r.offset), {}).get(c.REASON)
           for r in drained["records"] if r.value in names}
    # Then the invalid ones carry their reason, and the valid ones are not invalid (the reference counts them)
    assert got == want
