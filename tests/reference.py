"""An independent, pure-Python oracle for the job: what every Mongo document must be, from raw Kafka records.

Written from the event contract, not from the job's code, so a shared bug cannot hide.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

TYPES = ("page_view", "click", "add_to_cart", "purchase", "login", "logout", "search")
ISO = re.compile(r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})?$")


@dataclass(frozen=True)
class Record:
    """One Kafka record as read back from the broker."""

    topic: str
    partition: int
    offset: int
    timestamp: datetime  # aware UTC
    value: bytes | None


def parse_time(text: str) -> datetime | None:
    m = ISO.match(text)
    if not m:
        return None
    y, mo, d, h, mi, s, frac, zone = m.groups()
    micros = int((frac[1:] + "000000")[:6]) if frac else 0
    try:
        t = datetime(int(y), int(mo), int(d), int(h), int(mi), int(s or 0), micros)
    except ValueError:
        return None
    if zone and zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        t -= sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
    return t.replace(tzinfo=UTC)


def classify(rec: Record, max_bytes: int = 65536, max_future: timedelta = timedelta(minutes=5)):
    """Return (reason or None, event dict or None)."""
    if rec.value is not None and len(rec.value) > max_bytes:
        return "too_large", None
    if rec.value is None:
        return "malformed_json", None
    try:
        doc = json.loads(rec.value.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
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
    if doc["event_type"] not in TYPES:
        return "unknown_event_type", None
    t = parse_time(doc["timestamp"])
    if t is None:
        return "bad_timestamp", None
    if t > rec.timestamp + max_future:
        return "future_timestamp", None
    key = f"id:{doc['event_id']}" if doc.get("event_id") is not None else \
        "sha:" + hashlib.sha256(rec.value).hexdigest()
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
            raw = rec.value.decode("utf-8", "replace") if rec.value is not None else ""
            invalid[f"{rec.topic}-{rec.partition}-{rec.offset}"] = {
                "reason": reason, "topic": rec.topic, "partition": rec.partition, "offset": rec.offset,
                "raw": raw[:4096], "raw_truncated": len(raw) > 4096,
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
