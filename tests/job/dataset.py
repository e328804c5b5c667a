"""Test traffic for the job: every kind of valid and invalid record, duplicates and mixed offsets."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from tests.reference import Record, parse_time

PAGES = [f"/p/{i}" for i in range(25)]
TYPES = ["page_view", "page_view", "page_view", "click", "add_to_cart", "purchase", "login", "logout", "search"]


def _iso(t: datetime, style: int) -> str:
    """Render an instant in one of several valid ISO-8601 styles (Z, +02:00, naive UTC, no millis)."""
    if style == 0:
        return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"
    if style == 1:
        return (t + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S.%f") + "+02:00"
    if style == 2:
        return t.strftime("%Y-%m-%dT%H:%M:%S.%f")
    return (t - timedelta(hours=5, minutes=30)).strftime("%Y-%m-%dT%H:%M:%S") + "-05:30"


def clicks(seed: int, n: int, start: datetime, span: timedelta, users: int = 40, prefix: str = "e") -> list[tuple[bytes, bytes]]:
    """`n` (key, value) records: mostly valid events in [start, start+span), plus every invalid kind and duplicates."""
    rng = random.Random(seed)
    out: list[tuple[bytes, bytes]] = []
    for i in range(n):
        t = start + timedelta(microseconds=rng.randrange(int(span.total_seconds() * 1e6)))
        if i % 97 == 0:  # exactly on a minute boundary
            t = t.replace(second=0, microsecond=0)
        if i % 7 == 0:
            t = t.replace(microsecond=0)  # style 3 has no fraction: keep the instant exact
        user = f"usr_{rng.randrange(users)}"
        etype = rng.choice(TYPES)
        ev = {"timestamp": _iso(t, 3 if i % 7 == 0 else i % 3), "user_id": user,
              "session_id": f"sess_{user}_{rng.randrange(3)}", "event_type": etype}
        if etype == "page_view" or rng.random() < 0.3:
            ev["page_url"] = rng.choice(PAGES[: 5 + rng.randrange(20)])
        if i % 11 != 0:  # some events carry no event_id: dedup falls back to the payload
            ev["event_id"] = f"{prefix}{seed}-{i}"
        if i % 13 == 0:
            ev["extra"] = {"ignored": True}
        value = json.dumps(ev).encode()
        out.append((user.encode(), value))
        if i % 17 == 0:  # at-least-once delivery: the same record again
            out.append((user.encode(), value))
        if i % 701 == 350:  # a bot's burst within one second: 10 (a person, at the limit), 11 or 25 events
            bot, burst = f"bot_{i}", (10, 11, 25)[(i // 701) % 3]
            second = t.replace(microsecond=0)
            for j in range(burst):
                b = {"event_id": f"{prefix}{seed}-{i}-b{j}", "user_id": bot, "session_id": f"sess_{bot}",
                     "timestamp": _iso(second + timedelta(milliseconds=37 * j), 0), "event_type": "page_view",
                     "page_url": PAGES[j % 3]}
                out.append((bot.encode(), json.dumps(b).encode()))
    bad = [
        b"{not json", b"\xff\xfe not utf-8", b"[1, 2, 3]", b'"just a string"',
        json.dumps({"timestamp": _iso(start, 0), "session_id": "s", "event_type": "click"}).encode(),
        json.dumps({"timestamp": _iso(start, 0), "user_id": "u", "session_id": "s", "event_type": "page_view"}).encode(),
        json.dumps({"timestamp": _iso(start, 0), "user_id": 42, "session_id": "s", "event_type": "click"}).encode(),
        json.dumps({"timestamp": _iso(start, 0), "user_id": "u", "session_id": "s", "event_type": "teleport"}).encode(),
        json.dumps({"timestamp": "last tuesday", "user_id": "u", "session_id": "s", "event_type": "click"}).encode(),
        json.dumps({"timestamp": _iso(datetime.now(UTC) + timedelta(hours=2), 0), "user_id": "u", "session_id": "s",
                    "event_type": "click"}).encode(),
        json.dumps({"timestamp": _iso(start, 0), "user_id": "u", "session_id": "s", "event_type": "click",
                    "pad": "x" * 70000}).encode(),
    ]
    for j, b in enumerate(bad):
        out.insert(rng.randrange(len(out)), (f"bad{j}".encode(), b))
    return out


def skewed(records: list[tuple[bytes, bytes]], span: timedelta, start: datetime) -> list[tuple[bytes, bytes, int]]:
    """The records in event-time order, spread over three partitions as a sticky partitioner leaves a backlog: partition
    0 holds the last half of the event time, partition 1 the first quarter, partition 2 the second quarter (records
    without an event time go to partition 0). Read at the same pace, partition 0 is always 20+ minutes ahead."""
    def when(value: bytes) -> datetime | None:
        try:
            doc = json.loads(value)
            return parse_time(doc["timestamp"]) if isinstance(doc, dict) and isinstance(doc.get("timestamp"), str) \
                else None
        except (ValueError, KeyError):
            return None

    timed = sorted(((when(v) or start + span, k, v) for k, v in records), key=lambda r: r[0])
    out = []
    for t, k, v in timed:
        share = (t - start) / span
        out.append((k, v, 0 if share >= 0.5 else 1 if share < 0.25 else 2))
    return out


def create_topic(bootstrap: str, name: str, partitions: int = 3) -> str:
    from kafka.admin import KafkaAdminClient, NewTopic

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(name, partitions, 1)])
    finally:
        admin.close()
    return name


def produce(bootstrap: str, topic: str, records: Iterable[tuple[bytes, bytes]] | Iterable[tuple[bytes, bytes, int]]) -> int:
    """Send (key, value) records, partitioned by key, or (key, value, partition) records to the partition given."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5, max_request_size=1_048_576)
    n = 0
    try:
        futures = [producer.send(topic, key=r[0], value=r[1], partition=r[2] if len(r) > 2 else None) for r in records]
        for f in futures:
            f.get(timeout=30)
            n += 1
    finally:
        producer.close()
    return n


def read_back(bootstrap: str, topic: str, timeout: float = 60.0) -> list[Record]:
    """Every record in the topic, with its Kafka coordinates and timestamp."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_bytes=52_428_800,
                             max_partition_fetch_bytes=1_048_576 * 2)
    try:
        parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        end = consumer.end_offsets(parts)
        out: list[Record] = []
        deadline = time.monotonic() + timeout
        while any(consumer.position(tp) < end[tp] for tp in parts):
            if time.monotonic() > deadline:
                raise TimeoutError(f"could not read {topic} back within {timeout}s")
            for tp, msgs in consumer.poll(timeout_ms=1000).items():
                out.extend(Record(tp.topic, tp.partition, m.offset,
                                  datetime.fromtimestamp(m.timestamp / 1000, UTC), m.value) for m in msgs)
        return out
    finally:
        consumer.close()
