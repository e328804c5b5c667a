"""Validation: every record gets exactly one reason, or none; valid events are parsed to UTC."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
from chispa import assert_df_equality

from clickpulse import events as ev
from streaming_job.pipeline import run_steps
from streaming_job.validation import decode_kafka, invalid_events, valid_events, validate

KAFKA_TS = datetime(2026, 11, 23, 10, 0, 0)
OK = {"timestamp": "2026-11-23T09:58:30.250Z", "user_id": "usr_1", "session_id": "sess_1", "event_type": "click"}
KAFKA_SCHEMA = "topic string, partition int, offset long, timestamp timestamp, value binary"


def kafka_frame(spark, values: list[bytes | None]):
    rows = [("clicks", 0, i, KAFKA_TS, None if v is None else bytearray(v)) for i, v in enumerate(values)]
    return spark.createDataFrame(rows, KAFKA_SCHEMA)


def validated(spark, values: list[bytes | None], max_bytes: int = 64 * 1024):
    steps = [decode_kafka, validate(ev.EVENT_TYPES, max_bytes, timedelta(minutes=5))]
    return run_steps(kafka_frame(spark, values), steps)


def event(**changes) -> bytes:
    doc = {**OK, **changes}
    return json.dumps({k: v for k, v in doc.items() if v is not ...}).encode()


def reasons(spark, values, **kw) -> list[tuple[str | None, str | None]]:
    rows = validated(spark, values, **kw).orderBy("offset").select("reason", "detail").collect()
    return [(r.reason, r.detail) for r in rows]


@pytest.mark.parametrize(
    ("value", "reason", "detail"),
    [
        (b"{oops", "malformed_json", "value is not valid JSON"),
        (None, "malformed_json", "empty message"),
        (b"\xff\xfe{}", "malformed_json", "value is not valid UTF-8"),
        (b"[1, 2]", "not_an_object", "JSON value is array, expected an object"),
        (b"42", "not_an_object", "JSON value is bigint, expected an object"),
        (event(user_id=...), "missing_field", "missing: user_id"),
        (event(session_id=None), "missing_field", "missing: session_id"),
        (event(user_id="", session_id=...), "missing_field", "missing: user_id, session_id"),
        (event(event_type="page_view"), "missing_field", "missing: page_url"),
        (event(user_id=7), "wrong_type", "not a string: user_id"),
        (event(page_url=["/a"]), "wrong_type", "not a string: page_url"),
        (event(event_id=12), "wrong_type", "not a string: event_id"),
        (event(event_type="teleport"), "unknown_event_type",
         "event_type 'teleport' is not one of: page_view, click, add_to_cart, purchase, login, logout, search"),
        (event(timestamp="yesterday"), "bad_timestamp", "timestamp 'yesterday' is not ISO-8601"),
        (event(timestamp="2026-11-23"), "bad_timestamp", "timestamp '2026-11-23' is not ISO-8601"),
        (event(timestamp="2026-13-40T10:00:00Z"), "bad_timestamp", "timestamp '2026-13-40T10:00:00Z' is not ISO-8601"),
        (event(timestamp="2026-11-23T10:05:00.001Z"), "future_timestamp",
         "timestamp 2026-11-23T10:05:00.001Z is more than 300s ahead of its Kafka timestamp"),
    ],
)
def test_each_invalid_record_gets_its_reason_and_detail(spark, value, reason, detail):
    # Given one record, When it is validated, Then it carries exactly this reason and a human detail.
    assert reasons(spark, [value]) == [(reason, detail)]


def test_a_value_over_the_size_limit_is_too_large_before_it_is_parsed(spark):
    big = event(pad="x" * 200)
    assert reasons(spark, [big], max_bytes=100) == [("too_large", f"value is {len(big)} bytes, limit 100")]


def test_valid_events_have_no_reason(spark):
    assert reasons(spark, [event(), event(event_type="page_view", page_url="/")]) == [(None, None), (None, None)]


def test_extra_fields_are_ignored(spark):
    assert reasons(spark, [event(referrer={"utm": "x"}, score=3)]) == [(None, None)]


def test_a_timestamp_exactly_five_minutes_ahead_of_kafka_is_still_valid(spark):
    assert reasons(spark, [event(timestamp="2026-11-23T10:05:00Z")]) == [(None, None)]


@pytest.mark.parametrize(
    ("text", "utc"),
    [
        ("2026-11-23T09:58:30.250Z", datetime(2026, 11, 23, 9, 58, 30, 250000)),
        ("2026-11-23T11:58:30.250+02:00", datetime(2026, 11, 23, 9, 58, 30, 250000)),
        ("2026-11-23T04:28:30-05:30", datetime(2026, 11, 23, 9, 58, 30)),
        ("2026-11-23T09:58:30.250", datetime(2026, 11, 23, 9, 58, 30, 250000)),  # no offset: UTC
        ("2026-11-23 09:58", datetime(2026, 11, 23, 9, 58)),
    ],
)
def test_timestamps_are_converted_to_utc_honouring_offsets(spark, text, utc):
    rows = valid_events(validated(spark, [event(timestamp=text)])).select("event_time").collect()
    assert [r.event_time for r in rows] == [utc]


def test_valid_events_keep_only_what_the_aggregates_need(spark):
    # Given one valid page view with an event_id, When valid events are selected, Then they are shaped for windows
    # (with their Kafka partition and offset, for per-partition counts and bot seconds).
    df = valid_events(validated(spark, [event(event_type="page_view", page_url="/home", event_id="e1")]))
    expected = spark.createDataFrame(
        [(datetime(2026, 11, 23, 9, 58, 30, 250000), "usr_1", "sess_1", "page_view", "/home", "id:e1", 0, 0)],
        "event_time timestamp, user_id string, session_id string, event_type string, page_url string, dedup_key string, "
        "partition int, offset long",
    )
    assert_df_equality(df, expected, ignore_nullable=True)


def test_without_an_event_id_the_payload_hash_is_the_dedup_key(spark):
    rows = valid_events(validated(spark, [event(), event()])).select("dedup_key").collect()
    assert rows[0].dedup_key == rows[1].dedup_key
    assert rows[0].dedup_key.startswith("sha:")


def test_invalid_events_are_shaped_as_documents_with_kafka_coordinates(spark):
    df = invalid_events(validated(spark, [event(), b"{oops"]))
    expected = spark.createDataFrame(
        [("clicks-0-1", "malformed_json", "value is not valid JSON", "{oops", False, "clicks", 0, 1, KAFKA_TS)],
        "_id string, reason string, detail string, raw string, raw_truncated boolean, topic string, partition int, "
        "offset long, kafka_timestamp timestamp_ntz",
    )
    assert_df_equality(df, expected, ignore_nullable=True)


def test_raw_values_are_truncated_to_4096_characters(spark):
    long_bad = b"{" + b"x" * 5000
    row = invalid_events(validated(spark, [long_bad])).collect()[0]
    assert len(row.raw) == 4096
    assert row.raw_truncated is True
