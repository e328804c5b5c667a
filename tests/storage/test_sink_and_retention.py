"""The Mongo writer and retention, on the real Mongo-wire server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pymongo import monitoring

from storage import contract as c
from storage.client import is_ferretdb
from storage.indexes import INDEXES, ensure_indexes, prune_expired
from storage.sink import Merge, MongoTarget, New, partition_writer, process_client, upsert_documents, upsert_routed

pytestmark = pytest.mark.integration

WS = datetime(2026, 11, 23, 10, 0)


def page_doc(page: str, views: int) -> dict:
    return {c.ID: c.window_id(WS, page), c.WINDOW_START: WS, c.WINDOW_END: WS + timedelta(minutes=15),
            c.PAGE_URL: page, c.VIEWS: views}


def test_writing_the_same_documents_twice_leaves_one_copy_with_the_latest_values(mongo_uri, mongo_db):
    # Given a batch written once, When it is replayed with newer complete values
    target = MongoTarget(mongo_uri, mongo_db.name, ops_per_command=2)
    upsert_documents(target, c.PAGE_VIEWS, [page_doc("/a", 1), page_doc("/b", 2), page_doc("/c", 3)])
    upsert_documents(target, c.PAGE_VIEWS, [page_doc("/a", 5), page_doc("/b", 2), page_doc("/c", 3)])
    # Then each window key has one document, with the replayed value and a write stamp
    docs = {d[c.PAGE_URL]: d for d in mongo_db[c.PAGE_VIEWS].find()}
    assert {p: d[c.VIEWS] for p, d in docs.items()} == {"/a": 5, "/b": 2, "/c": 3}
    assert all(isinstance(d[c.UPDATED_AT], datetime) for d in docs.values())


def test_routed_documents_reach_their_own_collections(mongo_uri, mongo_db):
    target = MongoTarget(mongo_uri, mongo_db.name)
    written = upsert_routed(target, [(c.PAGE_VIEWS, page_doc("/a", 1)),
                                     (c.ACTIVE_USERS, {c.ID: c.window_id(WS), c.ACTIVE_USERS_COUNT: 4})])
    assert written == 2
    assert mongo_db[c.ACTIVE_USERS].find_one()[c.ACTIVE_USERS_COUNT] == 4


def test_new_documents_are_inserted_and_a_replay_replaces_the_ones_already_there(mongo_uri, mongo_db):
    # Given two of five new documents written already, with other values (a batch that ran before a crash)
    target = MongoTarget(mongo_uri, mongo_db.name, ops_per_command=5)
    upsert_routed(target, [(c.PAGE_VIEWS, New(page_doc(p, 0))) for p in ("/b", "/d")])
    # When all five are written as new documents
    written = upsert_routed(target, [(c.PAGE_VIEWS, New(page_doc(p, v))) for v, p in enumerate("/a /b /c /d /e".split())])
    # Then each is written once, with this write's values
    assert written == 5
    docs = {d[c.PAGE_URL]: d[c.VIEWS] for d in mongo_db[c.PAGE_VIEWS].find()}
    assert docs == {"/a": 0, "/b": 1, "/c": 2, "/d": 3, "/e": 4}


def test_merges_set_bucket_entries_without_losing_the_ones_already_there(mongo_uri, mongo_db):
    # Given a window recorded in its day's active_users document
    target = MongoTarget(mongo_uri, mongo_db.name)
    head = {c.DAY: "2026-11-23", c.WINDOW_SECONDS: 300}
    upsert_routed(target, [(c.ACTIVE_USERS, Merge("2026-11-23", {**head, "active_users.100000": 3}))])
    # When a later batch records the next window and rewrites the first one's value (twice: a replay)
    later = [Merge("2026-11-23", {**head, f"active_users.1001{m}0": v}) for m, v in ((0, 8),)] + \
        [Merge("2026-11-23", {**head, "active_users.100000": 4})] * 2
    upsert_routed(target, [(c.ACTIVE_USERS, m) for m in later])
    # Then one document holds both windows with their latest values, and a write stamp
    doc = mongo_db[c.ACTIVE_USERS].find_one({c.ID: "2026-11-23"})
    assert doc[c.ACTIVE_USERS_COUNT] == {"100000": 4, "100100": 8}
    assert (doc[c.DAY], doc[c.WINDOW_SECONDS]) == ("2026-11-23", 300)
    assert isinstance(doc[c.UPDATED_AT], datetime)


def test_a_full_command_first_flushes_what_was_yielded_before_it(mongo_uri, mongo_db):
    # Given commands of two operations, and a page document followed by two active-users merges (those fill first)
    commands: list[str] = []
    recording = [True]

    class Recorder(monitoring.CommandListener):
        def started(self, event: monitoring.CommandStartedEvent) -> None:
            if recording[0] and event.command_name == "update":
                commands.append(event.command["update"])

        def succeeded(self, event: monitoring.CommandSucceededEvent) -> None: ...

        def failed(self, event: monitoring.CommandFailedEvent) -> None: ...

    monitoring.register(Recorder())  # clients created from now on report their commands
    target = MongoTarget(mongo_uri, mongo_db.name, ops_per_command=2)
    merges = [Merge(f"2026-11-2{d}", {f"active_users.1000{d}0": 1}) for d in (3, 4)]
    # When they are written
    try:
        upsert_routed(target, [(c.PAGE_VIEWS, page_doc("/a", 1)), *((c.ACTIVE_USERS, m) for m in merges)])
    finally:
        recording[0] = False  # pymongo cannot unregister a listener: silence it for the rest of the session
    # Then the page document went first, in its own command, and the merges after it
    assert commands[-2:] == [c.PAGE_VIEWS, c.ACTIVE_USERS]


POOL_EVENTS = ("pool_created", "pool_ready", "pool_cleared", "pool_closed", "connection_ready", "connection_closed",
               "connection_check_out_started", "connection_check_out_failed", "connection_checked_out",
               "connection_checked_in")


def test_a_partition_writer_reuses_its_processs_connection_in_the_next_batch(mongo_uri, mongo_db):
    # Given a partition writer (what foreachPartition runs in an executor's Python worker), and a count of the
    # connections clients open from now on
    opened: list[int] = []
    counting = [True]

    class Counter(monitoring.ConnectionPoolListener):
        def connection_created(self, event: monitoring.ConnectionCreatedEvent) -> None:
            if counting[0]:
                opened.append(event.connection_id)

    for name in POOL_EVENTS:  # the listener must answer every pool event; only one counts
        setattr(Counter, name, lambda self, event: None)
    monitoring.register(Counter())
    write = partition_writer(MongoTarget(mongo_uri, mongo_db.name), lambda rows: ((c.PAGE_VIEWS, r) for r in rows))
    try:
        # When it writes one batch's partition, then the next batch's
        write([page_doc("/a", 1)])
        before_next = len(opened)
        write([page_doc("/b", 2)])
    finally:
        counting[0] = False  # pymongo cannot unregister a listener: silence it for the rest of the session
    # Then the second write opened no connection: it used the process's client, still open
    assert len(opened) == before_next
    assert process_client(mongo_uri).admin.command("ping")["ok"] == 1
    assert {d[c.PAGE_URL] for d in mongo_db[c.PAGE_VIEWS].find()} == {"/a", "/b"}


def test_nothing_to_write_opens_no_connection():
    # A URI nobody listens on: an empty partition must not even try it.
    assert upsert_documents(MongoTarget("mongodb://127.0.0.1:1/", "x"), c.PAGE_VIEWS, []) == 0


def test_bad_targets_are_refused_with_a_clear_message():
    with pytest.raises(ValueError, match="must start with mongodb://"):
        MongoTarget("http://db", "x")
    with pytest.raises(ValueError, match="invalid Mongo database name"):
        MongoTarget("mongodb://db/", "a.b")


def test_indexes_are_created_and_ttl_is_used_only_where_the_server_has_it(mongo_client, mongo_db):
    ttl = ensure_indexes(mongo_db, timedelta(days=7))
    assert ttl is not is_ferretdb(mongo_client)
    for coll, keys, unique in INDEXES:
        info = mongo_db[coll].index_information()
        assert any(spec["key"] == keys and bool(spec.get("unique")) == unique for spec in info.values()), (coll, keys)


def test_pruning_deletes_only_documents_older_than_the_retention(mongo_db):
    now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    mongo_db[c.PAGE_VIEWS].insert_many([{**page_doc("/old", 1), c.UPDATED_AT: now - timedelta(days=8)},
                                        {**page_doc("/new", 1), c.UPDATED_AT: now - timedelta(days=6)}])
    removed = prune_expired(mongo_db, timedelta(days=7), now=now)
    assert removed[c.PAGE_VIEWS] == 1
    assert [d[c.PAGE_URL] for d in mongo_db[c.PAGE_VIEWS].find()] == ["/new"]
