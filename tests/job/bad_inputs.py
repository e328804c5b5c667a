"""The bad-input corpus: records that must never stop the job, each with the reason it must get (None: it counts).

Hostile, broken and merely unusual values side by side: what strict JSON rejects, what a store cannot hold,
timestamps at and past every edge, sizes exactly at each limit, and valid events that only look suspicious
(dots and `$` in ids, `__proto__`, emoji, control characters). Built around `now`, the time the records reach
Kafka, so that only the records meant to be in the future are.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

MAX_EVENT_BYTES = 64 * 1024


@dataclass(frozen=True)
class BadInput:
    """One Kafka record value and the reason validation must give it (None: a valid event)."""

    name: str
    value: bytes | None
    reason: str | None


def iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def corpus(now: datetime) -> list[BadInput]:
    """At least 40 records (valid and invalid) for a Kafka timestamp of about `now` (aware)."""
    at = now - timedelta(minutes=3)  # event time of the records that are meant to count
    stamp = iso(at)
    serial = iter(range(1_000_000))

    def fields(**changes) -> dict:
        doc = {"event_id": f"bad-{next(serial)}", "timestamp": stamp, "user_id": "usr_bad", "session_id": "sess_bad",
               "event_type": "click"}
        return {k: v for k, v in {**doc, **changes}.items() if v is not ...}

    def event(ascii_only: bool = True, **changes) -> bytes:
        return json.dumps(fields(**changes), ensure_ascii=ascii_only).encode()

    def body(**changes) -> str:
        """The event's JSON without its closing brace, to append raw text to."""
        return json.dumps(fields(**changes))[:-1]

    def padded(total: int) -> bytes:
        """A valid event of exactly `total` bytes."""
        eid = f"bad-{next(serial)}"
        base = event(event_id=eid, pad="")
        return event(event_id=eid, pad="x" * (total - len(base)))

    def deep(levels: int) -> str:
        return "[" * levels + "]" * levels

    def id_of(size: int) -> str:
        """An incompressible text of exactly `size` bytes (what an index cannot shrink)."""
        return "".join(f"{(i * 7919) % 9973:04d}" for i in range(size // 4 + 1))[:size]

    cases = [
        # --- valid, however odd: each must count ---
        BadInput("plain_event", event(), None),
        BadInput("dots_and_at_in_user_id", event(user_id="first.last@example.com"), None),
        BadInput("dollar_user_id", event(user_id="$admin.root"), None),
        BadInput("dollar_and_dots_in_page_url",
                 event(event_type="page_view", page_url="/search?q=$price.max&sort=a.b"), None),
        BadInput("proto_keys", json.dumps({"__proto__": {"admin": True}, "constructor": 1,
                                           **fields(user_id="__proto__")}).encode(), None),
        BadInput("emoji_user_id_escaped", event(user_id="usr_\U0001F600"), None),
        BadInput("emoji_user_id_raw_utf8", event(ascii_only=False, user_id="usr_\U0001F680_é"), None),
        BadInput("control_and_line_separator_in_user_id", event(user_id="usr\u0001\u2028\u007f"), None),
        BadInput("unicode_escapes_spell_the_user_id", event(user_id="X").replace(b'"X"', rb'"\u0075sr_\u0031"'), None),
        BadInput("whitespace_around_the_object", b" \t\r\n" + event() + b"\n\r\t ", None),
        BadInput("nul_in_an_ignored_field", event(note="a\x00b", **{"k\x00ey": 1}), None),
        BadInput("nesting_exactly_1000_levels", (body() + f', "deep": {deep(999)}}}').encode(), None),
        BadInput("number_of_1000_digits", (body() + f', "big": {"9" * 1000}}}').encode(), None),
        BadInput("number_overflowing_double_and_negative_zero", (body() + ', "x": 1e400, "z": -0}').encode(), None),
        BadInput("key_of_50000_chars", (body() + f', "{"k" * 50_000}": 1}}').encode(), None),
        BadInput("same_key_in_other_case", (body() + ', "User_ID": "other"}').encode(), None),
        BadInput("empty_event_id_is_no_event_id_a", event(event_id="", session_id="sess_a"), None),
        BadInput("empty_event_id_is_no_event_id_b", event(event_id="", session_id="sess_b"), None),
        BadInput("blank_event_id", event(event_id=" "), None),
        BadInput("user_id_of_2048_bytes", event(user_id="\U0001F600" * 512), None),
        BadInput("event_id_of_2048_bytes", event(event_id=id_of(2048)), None),
        BadInput("exactly_64_kib", padded(MAX_EVENT_BYTES), None),
        BadInput("offset_plus_14", event(timestamp=(at + timedelta(hours=14)).strftime("%Y-%m-%dT%H:%M:%S+14:00")), None),
        BadInput("offset_minus_18", event(timestamp=(at - timedelta(hours=18)).strftime("%Y-%m-%dT%H:%M:%S-18:00")), None),
        BadInput("nanoseconds", event(timestamp=at.strftime("%Y-%m-%dT%H:%M:%S.123456789Z")), None),
        BadInput("minutes_then_offset", event(timestamp=(at + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M+02:00")),
                 None),
        BadInput("space_separator_no_zone", event(timestamp=at.strftime("%Y-%m-%d %H:%M:%S")), None),
        BadInput("leap_day", event(timestamp="2024-02-29T12:00:00Z"), None),
        BadInput("one_second_after_the_epoch", event(timestamp="1970-01-01T00:00:01Z"), None),
        # --- malformed_json ---
        BadInput("empty_value", b"", "malformed_json"),
        BadInput("null_value", None, "malformed_json"),
        BadInput("whitespace_only", b" \n ", "malformed_json"),
        BadInput("trailing_text", event() + b" trailing}", "malformed_json"),
        BadInput("two_concatenated_events", event() + event(), "malformed_json"),
        BadInput("two_ndjson_lines", event() + b"\n" + event(), "malformed_json"),
        BadInput("trailing_nul_byte", event() + b"\x00", "malformed_json"),
        BadInput("array_then_text", b"[1] x", "malformed_json"),
        BadInput("duplicate_keys", (body() + ', "user_id": "someone_else"}').encode(), "malformed_json"),
        BadInput("duplicate_keys_spelled_differently", (body() + r', "\u0075ser_id": "x"}').encode(), "malformed_json"),
        BadInput("duplicate_keys_nested", (body() + ', "x": [{"a": 1, "a": 2}]}').encode(), "malformed_json"),
        BadInput("nan", (body() + ', "score": NaN}').encode(), "malformed_json"),
        BadInput("infinity", (body() + ', "score": -Infinity}').encode(), "malformed_json"),
        BadInput("nesting_1001_levels", (body() + f', "deep": {deep(1000)}}}').encode(), "malformed_json"),
        BadInput("nesting_10000_levels", (body() + f', "deep": {deep(9999)}}}').encode(), "malformed_json"),
        BadInput("number_of_1001_digits", (body() + f', "big": {"9" * 1001}}}').encode(), "malformed_json"),
        BadInput("number_of_5000_digits", (body() + f', "big": 1{"0" * 4999}}}').encode(), "malformed_json"),
        BadInput("key_of_50001_chars", (body() + f', "{"k" * 50_001}": 1}}').encode(), "malformed_json"),
        BadInput("byte_order_mark", b"\xef\xbb\xbf" + event(), "malformed_json"),
        BadInput("invalid_utf8_in_user_id", event(user_id="usr_X").replace(b"usr_X", b"usr_\xff\xfe"), "malformed_json"),
        BadInput("lone_high_surrogate", (body() + r', "user_id_2": "\ud800"}').encode(), "malformed_json"),
        BadInput("lone_low_surrogate_in_user_id", event(user_id="X").replace(b'"X"', rb'"\udc00x"'), "malformed_json"),
        BadInput("raw_nul_byte_in_a_string", event(user_id="a_b").replace(b"a_b", b"a\x00b"), "malformed_json"),
        BadInput("nul_and_invalid_utf8_only", b"\x00\xff\x00 junk \xc3(", "malformed_json"),
        BadInput("raw_control_char_in_a_string", event(user_id="a_b").replace(b"a_b", b"a\x01b"), "malformed_json"),
        BadInput("single_quotes", b"{'timestamp': 'x'}", "malformed_json"),
        BadInput("trailing_comma", (body() + ",}").encode(), "malformed_json"),
        BadInput("comment", event() + b" // comment", "malformed_json"),
        # --- not_an_object ---
        BadInput("json_null", b"null", "not_an_object"),
        BadInput("array_of_events", b"[" + event() + b"," + event() + b"]", "not_an_object"),
        BadInput("double_encoded_event", json.dumps(event().decode()).encode(), "not_an_object"),
        BadInput("number", b"42", "not_an_object"),
        BadInput("array_nested_1000_levels", deep(1000).encode(), "not_an_object"),
        # --- missing_field ---
        BadInput("empty_user_id", event(user_id=""), "missing_field"),
        BadInput("page_view_without_page_url", event(event_type="page_view"), "missing_field"),
        BadInput("null_session_id", event(session_id=None), "missing_field"),
        # --- wrong_type ---
        BadInput("numeric_user_id", event(user_id=12345), "wrong_type"),
        BadInput("epoch_number_timestamp", event(timestamp=1_795_428_000), "wrong_type"),
        BadInput("boolean_session_id", event(session_id=True), "wrong_type"),
        BadInput("event_id_nested_998_levels", (body(event_id=...) + f', "event_id": {deep(998)}}}').encode(),
                 "wrong_type"),
        BadInput("user_id_object_nested_900_levels",
                 (body(user_id=...) + ', "user_id": ' + '{"a":' * 900 + "1" + "}" * 900 + "}").encode(),
                 "wrong_type"),
        # --- unstorable_value ---
        BadInput("nul_in_user_id", event(user_id="usr\x00evil"), "unstorable_value"),
        BadInput("nul_in_session_id", event(session_id="\x00"), "unstorable_value"),
        BadInput("nul_in_event_type", event(event_type="click\x00"), "unstorable_value"),
        BadInput("nul_in_page_url", event(event_type="page_view", page_url="/a\x00b"), "unstorable_value"),
        BadInput("nul_in_event_id", event(event_id="e\x00"), "unstorable_value"),
        BadInput("page_url_of_2049_bytes", event(event_type="page_view", page_url="/" + id_of(2048)),
                 "unstorable_value"),
        BadInput("user_id_of_3000_bytes", event(user_id=id_of(3000)), "unstorable_value"),
        # --- unknown_event_type ---
        BadInput("event_type_in_other_case", event(event_type="Click"), "unknown_event_type"),
        # --- bad_timestamp ---
        BadInput("year_0001", event(timestamp="0001-01-01T00:00:00Z"), "bad_timestamp"),
        BadInput("before_the_epoch", event(timestamp="1969-12-31T23:59:59.999Z"), "bad_timestamp"),
        BadInput("exactly_the_epoch", event(timestamp="1970-01-01T00:00:00Z"), "bad_timestamp"),
        BadInput("before_year_1_after_its_offset", event(timestamp="0001-01-01T00:30:00+01:00"), "bad_timestamp"),
        BadInput("hour_24", event(timestamp=at.strftime("%Y-%m-%dT24:00:00Z")), "bad_timestamp"),
        BadInput("leap_second", event(timestamp="2016-12-31T23:59:60Z"), "bad_timestamp"),
        BadInput("offset_beyond_18_hours", event(timestamp=at.strftime("%Y-%m-%dT%H:%M:%S+19:00")), "bad_timestamp"),
        BadInput("offset_of_60_minutes", event(timestamp=at.strftime("%Y-%m-%dT%H:%M:%S+05:60")), "bad_timestamp"),
        BadInput("not_a_leap_year", event(timestamp="2025-02-29T12:00:00Z"), "bad_timestamp"),
        BadInput("arabic_indic_digits", event(timestamp="٢٠٢٦-11-23T10:00:00Z"), "bad_timestamp"),
        BadInput("trailing_newline", event(timestamp=stamp + "\n"), "bad_timestamp"),
        BadInput("trailing_carriage_return", event(timestamp=stamp + "\r"), "bad_timestamp"),
        BadInput("lowercase_zone", event(timestamp=stamp[:-1] + "z"), "bad_timestamp"),
        BadInput("nul_in_timestamp", event(timestamp=stamp + "\x00"), "bad_timestamp"),
        BadInput("end_of_year_9999", event(timestamp="9999-12-31T23:59:59Z"), "bad_timestamp"),
        # --- future_timestamp ---
        BadInput("an_hour_ahead", event(timestamp=iso(now + timedelta(hours=1))), "future_timestamp"),
        # --- too_large ---
        BadInput("one_byte_over_64_kib", padded(MAX_EVENT_BYTES + 1), "too_large"),
    ]
    names = [c.name for c in cases]
    assert len(set(names)) == len(names), "corpus names must be unique"
    return cases
