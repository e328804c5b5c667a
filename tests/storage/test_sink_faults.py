"""The Mongo writer under faults, on real servers: outages are waited out, refused documents are dead-lettered.

Outages are real: this module stops and starts a Mongo-wire server of its own (FerretDB and its PostgreSQL, or
mongod), never the session's.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from pymongo import MongoClient

from devstack.mongo import MongoServer
from devstack.stack import LocalStack
from storage import contract as c
from storage.client import connect, is_ferretdb
from storage.retry import StoreUnavailable
from storage.sink import Merge, MongoTarget, New, upsert_routed
from streaming_job.metrics import ProgressStore, progress_document
from tests.job.jobrun import poll

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MongoServer]:
    """A Mongo-wire server of this module's own, on free ports: its tests stop and start it."""
    mongo = LocalStack.on_free_ports(tmp_path_factory.mktemp("sink-faults")).mongo
    try:
        mongo.start()
        yield mongo
    finally:
        mongo.stop()
        if mongo.postgres is not None:
            mongo.postgres.remove()


@pytest.fixture
def own_db(server: MongoServer) -> Iterator[tuple[MongoTarget, MongoClient]]:
    """A fresh database on the module's server: its writer target (two minutes of patience) and a client."""
    client = connect(server.uri, "clickpulse-tests")
    name = f"f_{uuid.uuid4().hex[:12]}"
    try:
        yield MongoTarget(server.uri, name, ops_per_command=10, retry_for=timedelta(minutes=2)), client
    finally:
        server.start()  # whatever the test stopped
        client.drop_database(name)
        client.close()


def documents(n: int, start: int = 0) -> list[tuple[str, dict]]:
    return [(c.PAGE_VIEWS, {c.ID: f"w|/p/{i}", c.PAGE_URL: f"/p/{i}", c.VIEWS: i}) for i in range(start, start + n)]


def sink_lines(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "clickpulse.sink" and text in r.getMessage()]


def test_writes_wait_out_a_stopped_server_and_land_when_it_is_back(server, own_db, caplog):
    caplog.set_level(logging.INFO, logger="clickpulse.sink")
    target, client = own_db
    # Given the server is stopped (FerretDB, or mongod)
    server.process.stop()
    with ThreadPoolExecutor(1) as pool:
        try:
            # When a writer writes 30 documents
            writing = pool.submit(upsert_routed, target, documents(30))
            # Then it waits, saying so once
            poll(lambda: sink_lines(caplog, "is failing"), timeout=60, what="the writer to report the outage")
        finally:
            # And when the server is back
            server.start()
        # every document is written, and one line says the outage is over
        assert writing.result(timeout=120) == 30
    assert client[target.database][c.PAGE_VIEWS].count_documents({}) == 30
    assert len(sink_lines(caplog, "is failing")) == 1
    assert len(sink_lines(caplog, "answers again")) == 1


def test_writes_wait_out_a_stopped_postgresql_under_a_running_ferretdb(server, own_db, caplog):
    if server.postgres is None:
        pytest.skip("mongod stores its own data: no PostgreSQL to stop")
    caplog.set_level(logging.INFO, logger="clickpulse.sink")
    target, client = own_db
    # Given FerretDB runs but its PostgreSQL is stopped (FerretDB answers every write with an error)
    server.postgres.stop()
    with ThreadPoolExecutor(1) as pool:
        try:
            # When a writer writes 30 documents, Then it waits, saying so once, with FerretDB's answer
            writing = pool.submit(upsert_routed, target, documents(30))
            poll(lambda: sink_lines(caplog, "is failing"), timeout=60, what="the writer to report the outage")
            # (PostgreSQL's words: its shutdown ended FerretDB's connection, or it refuses new ones)
            assert "is failing (OperationFailure: " in sink_lines(caplog, "is failing")[0]
        finally:
            # And when PostgreSQL is back
            server.start()
        # every document is written
        assert writing.result(timeout=120) == 30
    assert client[target.database][c.PAGE_VIEWS].count_documents({}) == 30


def test_past_retry_for_a_writer_gives_up_with_one_clear_error(server, own_db):
    target, _ = own_db
    impatient = MongoTarget(target.uri, target.database, retry_for=timedelta(seconds=1))
    # Given a stopped server, When a writer allowed one second of outage writes
    server.process.stop()
    # Then it gives up with one line naming the server, how long it tried and the last error
    with pytest.raises(StoreUnavailable, match=rf"^MongoDB at {impatient.uri} still failing after \d+ s \(retrying for "
                                               r"at most 1 s\): ServerSelectionTimeoutError: .*Connection refused$"):
        upsert_routed(impatient, documents(3))


def dead_letters(client: MongoClient, target: MongoTarget) -> dict[str, dict]:
    return {d[c.ID]: d for d in client[target.database][c.DEAD_LETTERS].find()}


def test_a_document_the_server_refuses_is_dead_lettered_and_the_rest_of_its_batch_written(own_db):
    target, client = own_db
    if not is_ferretdb(client):
        pytest.skip("MongoDB stores a NUL in a string; FerretDB's PostgreSQL refuses it")
    # Given a batch of 25 page documents with a NUL in the middle one's page (FerretDB stops a command at such a document)
    batch = documents(25)
    bad_id = batch[12][1][c.ID] = "w|/p/\x00"
    batch[12][1][c.PAGE_URL] = "/p/\x00"
    # When it is written
    written = upsert_routed(target, batch)
    # Then the 24 others are written, and the refused one is a dead letter with PostgreSQL's reason
    assert written == 24
    assert client[target.database][c.PAGE_VIEWS].count_documents({}) == 24
    letter = dead_letters(client, target)["page_views|w|/p/\\u0000"]
    assert (letter[c.TARGET_COLLECTION], letter[c.DOCUMENT_ID], letter[c.OPERATION]) == (c.PAGE_VIEWS, "w|/p/\\u0000", c.REPLACE)
    assert "SQLSTATE 22P05" in letter[c.ERROR] and bad_id not in letter[c.EXCERPT]
    assert '"page_url": "/p/\\u0000"' in letter[c.EXCERPT]


def test_a_new_document_the_server_refuses_is_dead_lettered_and_the_others_inserted(own_db):
    target, client = own_db
    if not is_ferretdb(client):
        pytest.skip("MongoDB stores a NUL in a string; FerretDB's PostgreSQL refuses it")
    # Given 25 new documents, the middle one with a NUL in its page
    batch = documents(25)
    batch[12][1][c.ID] = "w|/p/\x00"
    batch[12][1][c.PAGE_URL] = "/p/\x00"
    # When they are inserted
    written = upsert_routed(target, [(coll, New(doc)) for coll, doc in batch])
    # Then the 24 others are stored, and the refused one is a dead letter
    assert written == 24
    assert client[target.database][c.PAGE_VIEWS].count_documents({}) == 24
    assert list(dead_letters(client, target)) == ["page_views|w|/p/\\u0000"]


def test_a_document_the_driver_cannot_encode_is_dead_lettered_and_the_others_written(own_db):
    # Given a batch whose third document holds a value BSON has no type for
    target, client = own_db
    batch = documents(5)
    batch[2][1][c.VIEWS] = {1, 2}
    # When it is written, Then the others are written and that one is a dead letter
    assert upsert_routed(target, batch) == 4
    letter = dead_letters(client, target)[f"page_views|{batch[2][1][c.ID]}"]
    assert letter[c.ERROR].startswith("InvalidDocument: ") and letter[c.ERROR_CODE] is None


def test_a_refused_merge_entry_is_dead_lettered_and_the_merges_other_entries_written(own_db):
    # Given a merge of ten values into a day's document, one under a key with a NUL (no BSON key may hold one)
    target, client = own_db
    fields = {c.DAY: "2026-11-23", **{f"{c.ACTIVE_USERS_COUNT}.1{m:02d}000": m for m in range(10)}}
    fields[f"{c.ACTIVE_USERS_COUNT}.bad\x00"] = 99
    # When it is written
    assert upsert_routed(target, [(c.ACTIVE_USERS, Merge("2026-11-23", fields))]) == 1
    # Then the ten good values are set, and the bad entry alone is a dead letter naming its field
    doc = client[target.database][c.ACTIVE_USERS].find_one({c.ID: "2026-11-23"})
    assert doc[c.ACTIVE_USERS_COUNT] == {f"1{m:02d}000": m for m in range(10)} and doc[c.DAY] == "2026-11-23"
    letters = dead_letters(client, target)
    assert list(letters) == ["active_users|2026-11-23|active_users.bad\\u0000"]
    assert letters["active_users|2026-11-23|active_users.bad\\u0000"][c.EXCERPT] == '{"active_users.bad\\u0000": 99}'


def test_a_merge_none_of_whose_entries_can_be_written_is_one_dead_letter(own_db):
    target, client = own_db
    fields = {f"{c.ACTIVE_USERS_COUNT}.bad{i}\x00": i for i in range(8)}
    assert upsert_routed(target, [(c.ACTIVE_USERS, Merge("2026-11-24", fields))]) == 0
    letters = dead_letters(client, target)
    assert list(letters) == ["active_users|2026-11-24"]
    assert letters["active_users|2026-11-24"][c.FIELD] is None


def test_a_replayed_batch_rewrites_its_dead_letter_instead_of_adding_one(own_db):
    target, client = own_db
    batch = documents(3)
    batch[1][1][c.VIEWS] = {1}
    upsert_routed(target, batch)
    upsert_routed(target, batch)
    assert len(dead_letters(client, target)) == 1


PROGRESS = {"id": "q-1", "runId": "r-1", "name": "aggregates", "timestamp": "2026-11-23T10:00:00.500Z",
            "batchDuration": 812, "numInputRows": 10, "inputRowsPerSecond": 5.0, "processedRowsPerSecond": 12.0}


def test_progress_waits_in_a_queue_while_the_server_is_down_and_is_stored_when_it_is_back(server, own_db):
    target, client = own_db
    db = client[target.database]
    store = ProgressStore(db)
    # Given a stopped server
    server.process.stop()
    with ThreadPoolExecutor(1) as pool:
        # When two batches report progress, Then the listener gets its thread back at once (a Spark thread waits on it)
        for batch in (1, 2):
            pool.submit(store.put, progress_document({**PROGRESS, "batchId": batch})).result(timeout=5)
    # And when the server is back and the job stops, both batches and their minute's sums are stored
    server.start()
    store.close(timeout=120)
    assert db[c.PIPELINE_METRICS].count_documents({}) == 2
    minute = db[c.PIPELINE_MINUTES].find_one({c.ID: "aggregates|2026-11-23T10:00"})
    assert minute[c.RUNS]["r-1"][c.BATCHES] == 2 and minute[c.RUNS]["r-1"][c.INPUT_ROWS] == 20

