"""An independent, pure-Python oracle for the job: what every Mongo document must be, from raw Kafka records.

Written from the event contract, not from the job's code, so a shared bug cannot hide.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from collections import defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

TYPES = ("page_view", "click", "add_to_cart", "purchase", "login", "logout", "search")
# ISO-8601 date-time, matched whole: date, 'T' or a space, HH:MM, optional seconds and fraction, optional offset.
ISO = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})[T ]([0-9]{2}):([0-9]{2})(?::([0-9]{2})(\.[0-9]{1,9})?)?"
                 r"(Z|[+-][0-9]{2}:[0-9]{2})?")
MAX_OFFSET_MINUTES = 18 * 60  # the widest UTC offset ISO-8601 date-times (and Java) allow
# Event times are after the epoch (a watermark never goes below it) and before the year 9999 ends.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9999, 1, 1, tzinfo=UTC)

# What one JSON document may be, beyond RFC 8259's grammar: the limits of the job's parser (Jackson's defaults).
MAX_DEPTH = 1000  # nested objects and arrays
# Digits of one number: integer, fraction and exponent together. (Jackson's slower path, for a number that starts
# with 0, ends the text, or crosses a read buffer of a value over 32,768 characters, counts a missing fraction or
# exponent as -1 digit, so the job accepts such a number of 1001 or 1002 digits: the one known case, outside the
# corpus, where the two differ.)
MAX_NUMBER_DIGITS = 1000
MAX_KEY_CHARS = 50_000
# Fields that are stored or kept as keys: no U+0000, and at most this many UTF-8 bytes.
STORED_FIELDS = ("user_id", "session_id", "event_type", "page_url", "event_id")
MAX_STORED_BYTES = 2048
RAW_MAX_CHARS = 4096
_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True)
class Record:
    """One Kafka record as read back from the broker."""

    topic: str
    partition: int
    offset: int
    timestamp: datetime  # aware UTC
    value: bytes | None


def parse_time(text: str) -> datetime | None:
    """The UTC instant of an ISO-8601 date-time (an offset is honoured, none means UTC), or None."""
    m = ISO.fullmatch(text)
    if not m:
        return None
    y, mo, d, h, mi, s, frac, zone = m.groups()
    micros = int((frac[1:] + "000000")[:6]) if frac else 0
    try:
        t = datetime(int(y), int(mo), int(d), int(h), int(mi), int(s or 0), micros)
        if zone and zone != "Z":
            hours, minutes = int(zone[1:3]), int(zone[4:6])
            if minutes > 59 or hours * 60 + minutes > MAX_OFFSET_MINUTES:
                return None
            t -= (1 if zone[0] == "+" else -1) * timedelta(hours=hours, minutes=minutes)
    except (ValueError, OverflowError):  # no such day or time, or an instant before year 1 or after 9999
        return None
    return t.replace(tzinfo=UTC)


class _NotStrict(ValueError):
    """Valid for Python's json module, but not one strict JSON document."""


def _deeper_than(text: str, limit: int) -> bool:
    """Whether objects and arrays nest more than `limit` levels (read without recursion)."""
    if text.count("{") + text.count("[") <= limit:
        return False
    depth, in_string, escaped = 0, False, False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > limit:
                return True
        elif ch in "]}":
            depth -= 1
    return False


def _number(token: str, convert):
    if sum(ch.isdigit() for ch in token) > MAX_NUMBER_DIGITS:
        raise _NotStrict(f"number of more than {MAX_NUMBER_DIGITS} digits")
    return convert(token)


def _no_constants(name: str):
    raise _NotStrict(f"{name} is not JSON")


def _object(pairs: list[tuple[str, object]]) -> dict:
    out: dict = {}
    for key, value in pairs:
        if key in out:
            raise _NotStrict(f"duplicate key {key!r}")
        if len(key) > MAX_KEY_CHARS:
            raise _NotStrict("key too long")
        out[key] = value
    return out


def _strings(value: object) -> Iterator[str]:
    """Every key and string inside a parsed value (without recursion)."""
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            yield v
        elif isinstance(v, dict):
            yield from v.keys()
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)


@contextmanager
def _recursion_limit(at_least: int) -> Iterator[None]:
    """json's decoder recurses once per nesting level: give it room for MAX_DEPTH levels."""
    before = sys.getrecursionlimit()
    sys.setrecursionlimit(max(before, at_least))
    try:
        yield
    finally:
        sys.setrecursionlimit(before)


def parse_strict(text: str) -> tuple[bool, object]:
    """(True, value) when `text` is exactly one JSON document (RFC 8259, with the limits above), else (False, None).

    Beyond the grammar: nothing but whitespace around the one value, no duplicate keys in any object, no
    NaN or Infinity, no unpaired surrogate escape (it is not a character), nesting, numbers and keys
    within the parser's limits.
    """
    if _deeper_than(text, MAX_DEPTH):
        return False, None
    try:
        with _recursion_limit(MAX_DEPTH * 3):
            value = json.loads(text, object_pairs_hook=_object, parse_constant=_no_constants,
                               parse_int=lambda s: _number(s, int), parse_float=lambda s: _number(s, float))
    except (ValueError, RecursionError):  # JSONDecodeError and _NotStrict are ValueErrors
        return False, None
    if any(_SURROGATE.search(s) for s in _strings(value)):
        return False, None
    return True, value


def stored_raw(value: bytes | None) -> tuple[str, bool]:
    """(`raw`, `raw_truncated`) of an invalid record's document.

    The value as UTF-8 text (each invalid sequence becomes U+FFFD), its first RAW_MAX_CHARS characters,
    each U+0000 written as the six characters `\\u0000`; truncated when the text is longer than that.
    """
    text = value.decode("utf-8", "replace") if value is not None else ""
    return text[:RAW_MAX_CHARS].replace("\x00", "\\u0000"), len(text) > RAW_MAX_CHARS


def classify(rec: Record, max_bytes: int = 65536, max_future: timedelta = timedelta(minutes=5)):
    """Return (reason or None, event dict or None)."""
    if rec.value is not None and len(rec.value) > max_bytes:
        return "too_large", None
    if rec.value is None:
        return "malformed_json", None
    try:
        text = rec.value.decode("utf-8")
    except UnicodeDecodeError:
        return "malformed_json", None
    ok, doc = parse_strict(text)
    if not ok:
        return "malformed_json", None
    if not isinstance(doc, dict):
        return "not_an_object", None
    required = ["timestamp", "user_id", "session_id", "event_type"]
    if doc.get("event_type") == "page_view":
        required.append("page_url")
    if any(doc.get(f) is None or doc.get(f) == "" for f in required):
        return "missing_field", None
    if any(f in doc and doc[f] is not None and not isinstance(doc[f], str)
           for f in ("timestamp", "user_id", "session_id", "event_type", "page_url", "event_id")):
        return "wrong_type", None
    if any(isinstance(doc.get(f), str) and ("\x00" in doc[f] or len(doc[f].encode()) > MAX_STORED_BYTES)
           for f in STORED_FIELDS):
        return "unstorable_value", None
    if doc["event_type"] not in TYPES:
        return "unknown_event_type", None
    t = parse_time(doc["timestamp"])
    if t is None or not EARLIEST < t < LATEST:
        return "bad_timestamp", None
    if t > rec.timestamp + max_future:
        return "future_timestamp", None
    # An empty event_id is no event_id: the payload identifies the event.
    key = f"id:{doc['event_id']}" if doc.get("event_id") else "sha:" + hashlib.sha256(rec.value).hexdigest()
    return None, {"key": key, "time": t, "user": doc["user_id"], "session": doc["session_id"],
                  "type": doc["event_type"], "page": doc.get("page_url")}


def _windows(t: datetime, size: timedelta, slide: timedelta) -> list[datetime]:
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    last = epoch + ((t - epoch) // slide) * slide
    n = size // slide
    return [last - i * slide for i in range(n)]


def naive(t: datetime) -> datetime:
    return t.astimezone(UTC).replace(tzinfo=None)


def buckets(t: datetime) -> dict[str, str]:
    """The UTC day and hour an instant falls in, as text."""
    u = t.astimezone(UTC)
    return {"day": f"{u.year:04d}-{u.month:02d}-{u.day:02d}", "hour": f"{u.year:04d}-{u.month:02d}-{u.day:02d}T{u.hour:02d}"}


def expected(records: Iterable[Record], active=(5, 1), sessions=(5, 1), pages=(15, 1),
             bot_limit: int | None = 10) -> dict[str, dict[str, dict]]:
    """Every window of every aggregate, keyed `<window start>` or `<window start>|<key>`, every invalid event (without
    stored_at), keyed by its Kafka coordinates, and every second in which a user sent more than `bot_limit` events
    (keyed `<second>|<user>`)."""
    seen: set[str] = set()
    invalid: dict[str, dict] = {}
    users: dict[datetime, set] = defaultdict(set)
    per_user: dict[tuple, list] = defaultdict(lambda: [0, set()])
    views: dict[tuple, int] = defaultdict(int)
    seconds: dict[tuple, list] = defaultdict(list)  # (second, user) -> Kafka coordinates of its events
    for rec in records:
        reason, ev = classify(rec)
        if reason:
            raw, truncated = stored_raw(rec.value)
            invalid[f"{rec.topic}-{rec.partition}-{rec.offset}"] = {
                "reason": reason, "topic": rec.topic, "partition": rec.partition, "offset": rec.offset,
                "raw": raw, "raw_truncated": truncated,
                "kafka_timestamp": naive(rec.timestamp), **buckets(rec.timestamp)}
            continue
        if ev["key"] in seen:
            continue
        seen.add(ev["key"])
        seconds[(ev["time"].replace(microsecond=0), ev["user"])].append((rec.partition, rec.offset))
        a_size, a_slide = (timedelta(minutes=x) for x in active)
        for ws in _windows(ev["time"], a_size, a_slide):
            users[ws].add(ev["user"])
        s_size, s_slide = (timedelta(minutes=x) for x in sessions)
        for ws in _windows(ev["time"], s_size, s_slide):
            agg = per_user[(ws, ev["user"])]
            agg[0] += 1
            agg[1].add(ev["session"])
        if ev["type"] == "page_view":
            p_size, p_slide = (timedelta(minutes=x) for x in pages)
            for ws in _windows(ev["time"], p_size, p_slide):
                views[(ws, ev["page"])] += 1

    def iso(t: datetime) -> str:
        return t.strftime("%Y-%m-%dT%H:%M:%SZ")

    a_size = timedelta(minutes=active[0])
    s_size = timedelta(minutes=sessions[0])
    p_size = timedelta(minutes=pages[0])
    return {
        "active_users": {iso(ws): {"window_start": naive(ws), "window_end": naive(ws + a_size), "active_users": len(u)}
                         for ws, u in users.items()},
        "user_sessions": {f"{iso(ws)}|{u}": {"window_start": naive(ws), "window_end": naive(ws + s_size), "user_id": u,
                                              "sessions": len(v[1]), "events": v[0]}
                          for (ws, u), v in per_user.items()},
        "page_views": {f"{iso(ws)}|{p}": {"window_start": naive(ws), "window_end": naive(ws + p_size), "page_url": p,
                                           "views": n}
                       for (ws, p), n in views.items()},
        "invalid_events": invalid,
        "bot_activity": {} if bot_limit is None else {
            f"{iso(sec)}|{_escaped(u)}": {"user_id": u, "second": naive(sec), "events": len(at),
                                          "first": dict(zip(("partition", "offset"), min(at), strict=True)),
                                          "last": dict(zip(("partition", "offset"), max(at), strict=True)),
                                          **buckets(sec)}
            for (sec, u), at in seconds.items() if len(at) > bot_limit},
    }


def _escaped(text: str) -> str:
    """A user id as a field name: "%", ".", "$", "|" and control characters as %XX (the storage contract's rule)."""
    return "".join(f"%{ord(ch):02X}" if ch in "%.$|" or ord(ch) < 0x20 or ord(ch) == 0x7F else ch for ch in text)
