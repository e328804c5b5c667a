"""Validation's shortcut: a record in the producer's own shape is known valid without being parsed.

`plainly_valid` may say False of a valid event (validation then parses it), never True of an invalid one: the
invalid-events query leaves out what it calls valid, so one such mistake would lose an invalid record, and the
aggregates would count it. What validation reads from such a record is what parsing it gives.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from clickpulse import events as ev
from producer.generator import generate
from producer.settings import ProducerSettings
from streaming_job.pipeline import invalid_steps, parse_steps, run_steps
from streaming_job.settings import JobSettings
from streaming_job.validation import decode_kafka, invalid_events, plainly_valid, validate

KAFKA_TS = datetime(2026, 11, 23, 10, 0, 0)
MAX_FUTURE = timedelta(minutes=5)
KAFKA_SCHEMA = "topic string, partition int, offset long, timestamp timestamp, value binary"
PLAIN = "plain"
SETTINGS = JobSettings(bootstrap_servers="unused:9092", mongo_uri="mongodb://unused/", checkpoint_dir="/tmp/unused")


def plain_event(**changes: object) -> bytes:
    """An event as the producer writes it (compact JSON, its field order); `...` leaves a field out."""
    doc = {ev.EVENT_ID: "evt_a_000000001", ev.TIMESTAMP: "2026-11-23T09:58:30.250Z", ev.USER_ID: "usr_1",
           ev.SESSION_ID: "sess_1", ev.EVENT_TYPE: "page_view", ev.PAGE_URL: "/products/books"}
    doc.update(changes)
    return json.dumps({k: v for k, v in doc.items() if v is not ...}, separators=(",", ":")).encode()


def kafka_frame(spark, values: list[bytes | None]):
    rows = [("clicks", 0, i, KAFKA_TS, None if v is None else bytearray(v)) for i, v in enumerate(values)]
    return spark.createDataFrame(rows, KAFKA_SCHEMA)


def judged(spark, values: list[bytes | None], max_bytes: int = 64 * 1024):
    """Each record's `plainly_valid` and the reason validation gives it when it parses every record, in offset order."""
    steps = [decode_kafka, lambda d: d.withColumn(PLAIN, plainly_valid(ev.EVENT_TYPES, max_bytes, MAX_FUTURE)),
             validate(ev.EVENT_TYPES, max_bytes, MAX_FUTURE, known_shape=False)]
    df = kafka_frame(spark, values)
    return [(r[PLAIN], r.reason) for r in run_steps(df, steps).orderBy("offset").select(PLAIN, "reason").collect()]


@pytest.mark.parametrize(
    "value",
    [
        plain_event(),
        plain_event(event_id=..., event_type="click"),
        plain_event(timestamp="2026-11-23T10:05:00Z"),  # exactly the 5 minutes ahead of Kafka allowed
        plain_event(timestamp="2026-11-23T09:58:30.123456Z"),
        plain_event(timestamp="1970-01-01T00:00:01Z"),
        plain_event(event_id="", user_id="u" * 2048, session_id="s" * 2048, page_url="/" + "p" * 2047),
        plain_event(user_id="a b{c}d[e]f~!#'<>"),
        plain_event(event_type="click", page_url=...),
        plain_event(event_id=..., event_type="search", page_url=...),
    ],
    ids=["page_view", "click_without_event_id", "five_minutes_ahead", "microseconds", "a_second_after_the_epoch",
         "fields_at_2048_bytes", "punctuation", "click_without_page", "search_without_event_id_or_page"],
)
def test_a_valid_event_in_the_producers_shape_is_plainly_valid(spark, value):
    # Given a valid event written as the producer writes it, When judged, Then it is known valid without parsing
    assert judged(spark, [value]) == [(True, None)]


@pytest.mark.parametrize(
    "value",
    [
        plain_event(timestamp="2026-11-23T10:05:00.001Z"),
        plain_event(timestamp="2026-02-30T10:00:00.000Z"),
        plain_event(timestamp="2026-11-23T24:00:00.000Z"),
        plain_event(timestamp="1970-01-01T00:00:00.000Z"),
        plain_event(timestamp="1969-12-31T23:59:59.999Z"),
        plain_event(timestamp="9999-06-01T00:00:00.000Z"),
        plain_event(event_type="teleport"),
        plain_event(event_type="Page_view"),
        plain_event(event_type="page_view "),
        plain_event(user_id=""),
        plain_event(user_id="u" * 2049),
        plain_event(event_id="e" * 2049),
        plain_event(page_url="/" + "p" * 2048),
        plain_event(page_url=...),
        plain_event(event_id=..., page_url=...),
        plain_event(session_id="s\x00"),
        plain_event() + b"{}",
        plain_event() + b" x",
    ],
    ids=["a_millisecond_too_far_ahead", "february_30", "hour_24", "the_epoch", "before_the_epoch", "year_9999",
         "unknown_type", "type_in_other_case", "type_with_a_space", "empty_user", "user_over_2048_bytes",
         "event_id_over_2048_bytes", "page_over_2048_bytes", "page_view_without_page",
         "page_view_without_event_id_or_page", "nul_character", "a_second_object", "trailing_text"],
)
def test_an_invalid_record_in_the_producers_shape_is_not_plainly_valid(spark, value):
    # Given a record that looks like the producer's but fails a check, When judged, Then validation has the last word
    [(plain, reason)] = judged(spark, [value])
    assert (plain, reason is None) == (False, False)


def test_an_event_over_the_size_limit_is_not_plainly_valid(spark):
    value = plain_event()
    assert judged(spark, [value], max_bytes=len(value) - 1) == [(False, "too_large")]


def test_a_valid_event_in_another_shape_is_left_to_validation(spark):
    # Given valid events with spaces, another field order, an escape, an extra field and a click on an empty page
    values = [json.dumps(json.loads(plain_event())).encode(), plain_event(event_id=..., page_url=...)[:-1] +
              b',"page_url":"/a","event_id":"e"}', plain_event(user_id='usr_\\"1'), plain_event()[:-1] + b',"x":1}',
              plain_event(event_type="click", page_url="")]
    # When judged, Then none is plainly valid and all are valid
    assert judged(spark, values) == [(False, None)] * 5


def random_edits(n: int, seed: int = 7) -> list[bytes]:
    """`n` copies of a producer event (with and without an event_id, and of a type that needs no page, with and
    without a page_url), each with a character replaced, inserted or removed at random."""
    rng = random.Random(seed)
    bases = [plain_event().decode(), plain_event(event_id=..., event_type="click").decode(),
             plain_event(event_type="click", page_url=...).decode(),
             plain_event(event_id=..., event_type="login", page_url=...).decode()]
    alphabet = '"\\{}[]:,. -_0123456789TZ+eaxz\x00\x7f\u00e9\n'
    values = []
    for _ in range(n):
        base = rng.choice(bases)
        i = rng.randrange(len(base))
        op = rng.choice(("replace", "insert", "remove"))
        text = (base[:i] + rng.choice(alphabet) + base[i + (op == "replace"):] if op != "remove"
                else base[:i] + base[i + 1:])
        values.append(text.encode())
    return values


def test_random_edits_of_a_producer_event_are_plainly_valid_only_when_they_are_valid(spark):
    # Given 3,000 random edits of producer events (fixed seed)
    values = random_edits(3000)
    # When judged, Then no edit that validation rejects is plainly valid, while many valid edits are
    results = judged(spark, values)
    assert [values[i] for i, (plain, reason) in enumerate(results) if plain and reason is not None] == []
    assert sum(plain for plain, _ in results) > 300
    assert sum(reason is not None for _, reason in results) > 1000


def producer_records(spark, **faults: float):
    """2,000 records of the real producer (clean, bots, late and duplicate events, and every invalid kind it injects),
    each with its Kafka timestamp at the time it was stamped."""
    settings = ProducerSettings(seed=11, count=2000, rate=0, users=50, pages=20, bot_ratio=0.1, bot_burst=15,
                                start_time=datetime(2026, 11, 23, 10, tzinfo=UTC), **faults)
    rows = [("clicks", i % 3, i, datetime.fromtimestamp(e.time_ms / 1000, UTC).replace(tzinfo=None), bytearray(e.value))
            for i, e in enumerate(generate(settings))]
    return spark.createDataFrame(rows, KAFKA_SCHEMA)


def test_the_producers_valid_events_are_all_plainly_valid(spark):
    # Given the producer's clean traffic with bots, late and duplicate events
    records = producer_records(spark, late_ratio=0.05, duplicate_ratio=0.05)
    # When the invalid-events query's steps read it, Then every record is left out before validation
    judged_plain = run_steps(records, [decode_kafka]).select(
        plainly_valid(ev.EVENT_TYPES, ev.MAX_EVENT_BYTES, MAX_FUTURE).alias(PLAIN))
    assert judged_plain.where(~F.col(PLAIN)).count() == 0


def test_the_invalid_events_query_stores_what_it_would_without_the_shortcut(spark):
    # Given the producer's traffic with a third of it invalid, of every kind it injects
    records = producer_records(spark, invalid_ratio=0.3, late_ratio=0.05, duplicate_ratio=0.05)
    # When the invalid-events query's steps run, and validation alone on every record
    stored = run_steps(records, [*invalid_steps(SETTINGS), invalid_events])
    expected = run_steps(records, [*parse_steps(SETTINGS, known_shape=False), invalid_events])
    # Then the same invalid events come out, document for document
    assert expected.count() > 400
    assert_df_equality(stored, expected, ignore_row_order=True)


def test_validation_reads_a_plainly_valid_event_as_parsing_it_would(spark):
    # Given the producer's traffic with a third of it invalid, and 4,000 random edits of its events
    records = producer_records(spark, invalid_ratio=0.3, late_ratio=0.05, duplicate_ratio=0.05).union(
        kafka_frame(spark, random_edits(4000, seed=8)))
    plain = run_steps(records, [decode_kafka]).where(plainly_valid(ev.EVENT_TYPES, ev.MAX_EVENT_BYTES, MAX_FUTURE))
    assert plain.where(~F.contains("raw", F.lit(f'"{ev.EVENT_ID}"'))).count() > 200  # each of the shortcut's shapes
    assert plain.where(F.contains("raw", F.lit(f'"{ev.EVENT_ID}"'))).count() > 200
    assert plain.where(~F.contains("raw", F.lit(f'"{ev.PAGE_URL}"'))).count() > 200
    # When validated with the shortcut, and parsing every record
    shortcut, parsed = run_steps(records, parse_steps(SETTINGS)), run_steps(records, parse_steps(SETTINGS, known_shape=False))
    # Then every record gets the same reason, detail, event time, fields and dedup key
    assert_df_equality(shortcut, parsed, ignore_row_order=True)
