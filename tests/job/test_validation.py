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


def test_a_record_failing_several_checks_gets_the_reason_of_the_first_in_the_order_of_the_checks(spark):
    # Given events that each fail several checks, the first of them a different one (the order: missing field, wrong
    # type, unstorable value, unknown event type, bad timestamp, future timestamp)
    odd_type, bad_time = "tele\u0000port", "yesterday"
    values = [event(user_id=..., session_id=7, event_type=odd_type, timestamp=bad_time),
              event(session_id=7, event_type=odd_type, timestamp=bad_time),
              event(event_type=odd_type, timestamp=bad_time),
              event(event_type="teleport", timestamp=bad_time),
              event(timestamp="9999-06-01T00:00:00Z")]  # out of range, and ahead of Kafka
    # When they are validated, Then each gets the reason of the first check it fails, and only that one
    assert [reason for reason, _ in reasons(spark, values)] == [
        "missing_field", "wrong_type", "unstorable_value", "unknown_event_type", "bad_timestamp"]


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


# --- Strict JSON: one record holds exactly one JSON document ---


@pytest.mark.parametrize(
    "value",
    [event() + b" trailing}", event() + event(), event() + b"\n" + event(), event() + b"\x00", b"[1] x", b"42 x"],
    ids=["trailing_text", "two_concatenated_events", "two_ndjson_lines", "trailing_nul", "array_then_text",
         "number_then_text"],
)
def test_text_after_the_json_value_is_malformed_json(spark, value):
    # Given a record whose JSON value is followed by more than whitespace (Spark's parser would stop at the value)
    # When it is validated, Then the whole record is rejected, not its first event counted
    assert reasons(spark, [value]) == [
        ("malformed_json", "text follows the JSON value (one record must hold exactly one event)")]


def test_whitespace_around_the_json_value_is_allowed(spark):
    # Given valid events wrapped in JSON whitespace, one of them with nested objects (parsed twice to find its end)
    values = [b" \t\r\n" + event() + b"\n\r\t ", event(extra={"a": {"b": 1}}) + b"\n"]
    # When they are validated, Then both are valid
    assert reasons(spark, values) == [(None, None), (None, None)]


def test_a_lone_number_is_not_an_object_and_is_read_whole(spark):
    # Given top-level numbers (without their last digit, '12' would still parse as '1')
    # When validated, Then each is not_an_object, not text after a value
    assert [r for r, _ in reasons(spark, [b"12", b" -0.5e3 \n"])] == ["not_an_object", "not_an_object"]


@pytest.mark.parametrize(
    "value",
    [b'{"user_id": "a", "user_id": "b"}', b'{"x": NaN}', b'{"x": -Infinity}', b"\xef\xbb\xbf{}",
     b'{"x": "\\ud800"}', b'{"x": ' + b"[" * 1000 + b"]" * 1000 + b"}", b'{"x": 1' + b"0" * 1000 + b"}"],
    ids=["duplicate_keys", "nan", "infinity", "byte_order_mark", "lone_surrogate", "nesting_1001", "number_1001_digits"],
)
def test_json_outside_the_strict_contract_is_malformed(spark, value):
    # Given a value that is not one strict JSON document, When validated, Then it is malformed_json
    assert reasons(spark, [value])[0][0] == "malformed_json"


def test_an_extra_field_nested_1000_levels_deep_is_ignored(spark):
    # Given a valid event with an extra field nested to the parser's limit of 1000 levels (the object is one)
    value = event()[:-1] + b', "deep": ' + b"[" * 999 + b"]" * 999 + b"}"
    # When validated, Then it is valid: nothing reads the nesting, so nothing overflows the stack
    assert reasons(spark, [value]) == [(None, None)]


def test_a_field_nested_1000_levels_deep_is_a_wrong_type_without_overflowing_the_stack(spark):
    # Given user_id as objects nested 999 levels (recursive type or text functions overflow the task's stack there)
    value = event(user_id=...)[:-1] + b', "user_id": ' + b'{"a":' * 999 + b"1" + b"}" * 999 + b"}"
    # When validated, Then it is simply a wrong type, and the session survives
    assert reasons(spark, [value]) == [("wrong_type", "not a string: user_id")]


def test_a_top_level_array_nested_1000_levels_deep_is_not_an_object(spark):
    assert reasons(spark, [b"[" * 1000 + b"]" * 1000]) == [("not_an_object", "JSON value is array, expected an object")]


# --- Event times the pipeline can hold ---


@pytest.mark.parametrize(
    "text", ["0001-01-01T00:00:00Z", "1969-12-31T23:59:59.999999Z", "1970-01-01T00:00:00Z", "0001-01-01T00:30:00+01:00"]
)
def test_a_timestamp_not_after_the_epoch_is_a_bad_timestamp(spark, text):
    # Given an event time at or before 1970-01-01T00:00:00Z (the watermark starts there: it would always be late)
    # When validated, Then it is rejected with the range in the detail
    assert reasons(spark, [event(timestamp=text)]) == [("bad_timestamp", (
        f"timestamp '{text}' is out of range: event times must be after 1970-01-01T00:00:00Z and before "
        "9999-01-01T00:00:00Z"))]


def test_a_timestamp_in_the_year_9999_is_a_bad_timestamp_whatever_its_kafka_timestamp(spark):
    # Given an event in the last year Spark and Python can represent (its windows would end past it)
    # When validated, Then it is out of range (checked before the future)
    assert reasons(spark, [event(timestamp="9999-06-01T00:00:00Z")])[0][0] == "bad_timestamp"


def test_one_second_after_the_epoch_is_a_valid_event_time(spark):
    rows = valid_events(validated(spark, [event(timestamp="1970-01-01T00:00:01Z")])).select("event_time").collect()
    assert [r.event_time for r in rows] == [datetime(1970, 1, 1, 0, 0, 1)]


@pytest.mark.parametrize(
    "text",
    ["2026-11-23T10:00:00+19:00", "2026-11-23T10:00:00+18:01", "2026-11-23T10:00:00+05:60", "2026-11-23T09:58:30Z\n",
     "2026-11-23T09:58:30Z\r", "2026-11-23T24:00:00Z", "2016-12-31T23:59:60Z", "٢٠٢٦-11-23T10:00:00Z"],
    ids=["offset_19h", "offset_18h01", "offset_60_minutes", "trailing_newline", "trailing_return", "hour_24",
         "leap_second", "arabic_indic_digits"],
)
def test_timestamps_outside_iso_8601_are_bad_timestamps(spark, text):
    assert reasons(spark, [event(timestamp=text)]) == [("bad_timestamp", f"timestamp '{text}' is not ISO-8601")]


@pytest.mark.parametrize(
    ("text", "utc"),
    [("2026-11-23T11:58+02:00", datetime(2026, 11, 23, 9, 58)), ("2026-11-23T09:58Z", datetime(2026, 11, 23, 9, 58)),
     ("2026-11-24T03:58:30+18:00", datetime(2026, 11, 23, 9, 58, 30)),
     ("2026-11-23T09:58:30.123456789Z", datetime(2026, 11, 23, 9, 58, 30, 123456))],
    ids=["minutes_then_offset", "minutes_then_z", "offset_18h", "nanoseconds_truncated"],
)
def test_edge_forms_of_iso_8601_are_valid_and_converted_to_utc(spark, text, utc):
    rows = valid_events(validated(spark, [event(timestamp=text)])).select("event_time").collect()
    assert [r.event_time for r in rows] == [utc]


# --- Values a store cannot hold ---


@pytest.mark.parametrize("field", ["user_id", "session_id", "event_type", "page_url", "event_id"])
def test_a_nul_character_in_a_stored_field_is_an_unstorable_value_naming_the_field(spark, field):
    # Given an otherwise valid page view with U+0000 (JSON "\u0000") in one field the job stores or keys by
    changes = {"event_type": "page_view", "page_url": "/home", "event_id": "e1"}
    changes[field] = changes.get(field, OK.get(field, "")) + "\x00"
    # When validated, Then it is rejected before it can fail the write (PostgreSQL cannot store U+0000)
    assert reasons(spark, [event(**changes)]) == [("unstorable_value", f"U+0000 (NUL) in: {field}")]


def test_stored_fields_over_2048_bytes_are_unstorable_and_2048_are_not(spark):
    # Given a user_id of exactly 2048 UTF-8 bytes, and page URLs of 2049 bytes and user ids of 2049 bytes
    at_limit = event(user_id="\U0001F600" * 512)
    over = event(event_type="page_view", page_url="/" + "p" * 2048, user_id="u" * 2049)
    # When validated, Then the first is valid and the second names both fields (an index cannot hold such keys)
    assert reasons(spark, [at_limit, over]) == [
        (None, None), ("unstorable_value", "over 2048 bytes in UTF-8: user_id, page_url")]


def test_nul_characters_elsewhere_in_a_valid_event_are_ignored(spark):
    assert reasons(spark, [event(note="a\x00b", **{"k\x00": 1})]) == [(None, None)]


def test_an_empty_event_id_is_no_event_id_so_the_payload_hash_is_the_dedup_key(spark):
    # Given two different events with an empty event_id
    rows = valid_events(validated(spark, [event(event_id="", user_id="a"), event(event_id="", user_id="b")]))
    # When their dedup keys are read, Then each is its own payload's hash (they are not one event)
    keys = [r.dedup_key for r in rows.orderBy("user_id").collect()]
    assert all(k.startswith("sha:") for k in keys) and keys[0] != keys[1]


def test_an_invalid_record_with_nul_bytes_and_bad_utf8_is_stored_escaped_and_valid(spark):
    # Given an invalid record holding raw NUL bytes and invalid UTF-8
    row = invalid_events(validated(spark, [b"\x00{\xff\xfe\x00"])).collect()[0]
    # When shaped as a document, Then each NUL reads as the text \u0000 and each bad sequence as U+FFFD
    assert (row.reason, row.raw, row.raw_truncated) == ("malformed_json", "\\u0000{\ufffd\ufffd\\u0000", False)


def test_raw_is_cut_at_4096_characters_of_text_before_nul_is_escaped(spark):
    # Given an invalid value of 4096 characters (some of them NUL, some invalid UTF-8) and one of 4097
    exact = b"\x00" * 4000 + b"\xff" * 96
    longer = exact + b"x"
    rows = invalid_events(validated(spark, [exact, longer])).orderBy("offset").collect()
    # Then the cut counts characters of the decoded text, and truncation is about the value, not the escaping
    assert [(len(r.raw), r.raw_truncated) for r in rows] == [(4000 * 6 + 96, False), (4000 * 6 + 96, True)]


def test_a_detail_quoting_a_nul_character_is_stored_escaped(spark):
    # Given a timestamp holding U+0000 (it is quoted in the detail of its bad_timestamp)
    # When the record is shaped as an invalid_events document
    row = invalid_events(validated(spark, [event(timestamp="2026-11-23T09:58:30Z\x00")])).collect()[0]
    # Then the detail holds the text \u0000, never the character
    assert row.detail == "timestamp '2026-11-23T09:58:30Z\\u0000' is not ISO-8601"


@pytest.mark.parametrize("escape", [b"\\ud800", b"\\udc00", b"\\udc00\\ud800"], ids=["high", "low", "reversed_pair"])
def test_half_a_surrogate_pair_is_malformed_json_and_said_so(spark, escape):
    # Given a user_id holding an escape of half a UTF-16 pair (no character: no store could hold it)
    value = event(user_id="X").replace(b'"X"', b'"a' + escape + b'"')
    # When validated, Then the record is malformed_json, and the detail names the problem
    assert reasons(spark, [value]) == [("malformed_json", (
        "value holds half of a UTF-16 surrogate pair (an escape such as \\ud800 that is no character)"))]


def test_a_whole_surrogate_pair_is_a_valid_character(spark):
    value = event(user_id="X").replace(b'"X"', b'"usr_\\ud83d\\ude00"')
    rows = valid_events(validated(spark, [value])).select("user_id").collect()
    assert [r.user_id for r in rows] == ["usr_\U0001F600"]


@pytest.mark.parametrize(
    ("fields", "user_id"),
    [
        (b'"user_id": "caf\\u00e9 \\"q\\" \\/ \\t", "USER_ID": "other"', 'caf\u00e9 "q" / \t'),
        (b'"user\\u005fid": "usr_esc", "nested": {"user_id": "inner"}', "usr_esc"),
        (b'"user_id": "usr_deep", "deep": ' + b'{"x": ' * 900 + b"1" + b"}" * 900, "usr_deep"),
    ],
    ids=["escapes_and_other_case", "escaped_name_and_nested_field", "deeply_nested_other_field"],
)
def test_a_string_field_is_read_as_its_decoded_text_and_only_its_exact_top_level_name_counts(spark, fields, user_id):
    # Given an event whose user_id is written with escapes, or beside fields named alike, or beside a deep value
    value = b"{" + fields + b", " + event(user_id=...)[1:]
    # When validated
    rows = valid_events(validated(spark, [value])).select("user_id").collect()
    # Then it is valid, and its user_id is the decoded text of the top-level field named exactly "user_id"
    assert [r.user_id for r in rows] == [user_id]
