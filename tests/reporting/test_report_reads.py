"""The reads the report added to the read API (storage/reads.py), on the real Mongo-wire server."""

from __future__ import annotations

from datetime import timedelta

import pytest

from storage import contract as c
from storage import reads
from storage.layout import public_url, write_layout
from tests.reporting.documents import DEFAULT_LAYOUT, MIN, T0, batch, dead_letter, insert

integration = pytest.mark.integration
LAG = {c.OFFSETS_BEHIND_LATEST: 9000, c.AVG_OFFSETS_BEHIND_LATEST: 3000.0, c.MAX_OFFSETS_BEHIND_LATEST: 4500}


@integration
def test_the_newest_aggregates_batch_carries_its_kafka_lag(mongo_db):
    # Given an aggregates batch that ran 9,000 records behind Kafka (4,500 in its worst partition)
    insert(mongo_db, c.PIPELINE_METRICS, [batch(c.AGGREGATES_QUERY, T0, 1, 10, 1.0, **LAG)])
    # When the health of the last 15 minutes is read
    newest = reads.health(mongo_db, T0, timedelta(minutes=15), 100).newest_aggregates_batch
    # Then the newest batch comes with its lag figures
    assert {k: newest[k] for k in LAG} == LAG


@integration
def test_batch_lags_are_those_of_each_minutes_last_batch_in_the_points_order(mongo_db):
    # Given batches at 10:00:10, 10:00:50 (the minute's last) and 10:01:30; the 10:01 one stored without lag
    insert(mongo_db, c.PIPELINE_METRICS, [
        batch(c.AGGREGATES_QUERY, T0 + timedelta(seconds=10), 1, 10, 1.0, **{c.OFFSETS_BEHIND_LATEST: 1}),
        batch(c.AGGREGATES_QUERY, T0 + timedelta(seconds=50), 2, 10, 1.0, **{c.OFFSETS_BEHIND_LATEST: 2}),
        batch(c.AGGREGATES_QUERY, T0 + timedelta(seconds=90), 3, 10, 1.0),
    ])
    points = reads.health(mongo_db, T0 + 2 * MIN, timedelta(minutes=15), 100).points
    # When the lags of those minutes are read
    got = reads.batch_lags(mongo_db, points)
    # Then each minute's last batch answers, newest first, the one without lag without the field
    assert [(b[c.TIMESTAMP], b.get(c.OFFSETS_BEHIND_LATEST)) for b in got] == [
        (T0 + timedelta(seconds=90), None), (T0 + timedelta(seconds=50), 2)]


@integration
def test_the_spark_ui_is_the_one_the_job_that_started_last_reported(mongo_db):
    # Given no job yet, then a job with its UI off, then one with a UI
    assert reads.spark_ui(mongo_db) is None
    write_layout(mongo_db, DEFAULT_LAYOUT, None)
    assert reads.spark_ui(mongo_db) is None
    write_layout(mongo_db, DEFAULT_LAYOUT, "http://127.0.0.1:4040")
    # When the report asks where the UI is, Then it gets the URL and when the job reported it
    ui = reads.spark_ui(mongo_db)
    assert ui.url == "http://127.0.0.1:4040" and ui.reported_at.tzinfo is not None


@integration
def test_a_spark_ui_address_is_stored_without_credentials_query_or_fragment(mongo_db):
    write_layout(mongo_db, DEFAULT_LAYOUT, "https://admin:s3cret@spark.example:8443/proxy/app-1/?token=t0k#jobs")
    stored = mongo_db[c.PIPELINE_LAYOUT].find_one({c.ID: c.LAYOUT_ID})
    assert stored[c.SPARK_UI] == "https://spark.example:8443/proxy/app-1/"
    assert reads.spark_ui(mongo_db).url == "https://spark.example:8443/proxy/app-1/"


@pytest.mark.parametrize(("given", "kept"), [
    ("http://127.0.0.1:4040", "http://127.0.0.1:4040"),
    ("http://[::1]:4041/", "http://[::1]:4041/"),
    ("http://host", "http://host"),
    ("javascript:alert(1)", None),
    ("file:///etc/passwd", None),
    ("http://host:99999", None),
    ("", None),
    (None, None),
])
def test_only_http_addresses_make_a_spark_ui_link(given, kept):
    assert public_url(given) == kept


@integration
def test_dead_letters_of_a_range_come_newest_first_without_their_excerpt(mongo_db):
    # Given dead letters at 09:30, 10:05 and 10:20, and one from two days before
    insert(mongo_db, c.DEAD_LETTERS, [
        dead_letter(c.PAGE_VIEWS, "p|01", T0 - 30 * MIN, field="views.a"),
        dead_letter(c.USER_SESSIONS, "u|02", T0 + 5 * MIN),
        dead_letter(c.INVALID_EVENTS, "t-0-1", T0 + 20 * MIN),
        dead_letter(c.ACTIVE_USERS, "2026-01-13", T0 - timedelta(days=2)),
    ])
    # When the dead letters of 09:00..10:10 are read
    got = reads.dead_letters(mongo_db, T0 - timedelta(hours=1), T0 + 10 * MIN, limit=10)
    # Then the two inside come back newest first, with where they were going, the field and the error
    assert [(d[c.TARGET_COLLECTION], d[c.DOCUMENT_ID], d[c.FIELD]) for d in got] == [
        (c.USER_SESSIONS, "u|02", None), (c.PAGE_VIEWS, "p|01", "views.a")]
    assert "SQLSTATE 22P05" in got[0][c.ERROR] and c.EXCERPT not in got[0]
    # And a week is read a day at a time, cut to the limit
    week = reads.dead_letters(mongo_db, T0 + MIN - timedelta(days=7), T0 + MIN, limit=2)
    assert [d[c.DOCUMENT_ID] for d in week] == ["p|01", "2026-01-13"]
