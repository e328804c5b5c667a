"""What one round sees: the job's records in MongoDB and Kafka's offsets, as plain data (built by readings/offsets)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

Doc = dict[str, Any]
TopicPartition = tuple[str, int]


def as_utc(ts: datetime) -> datetime:
    """The same instant in UTC (naive datetimes are UTC already, as BSON dates are)."""
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


@dataclass(frozen=True)
class QueryPosition:
    """Where one streaming query stands: its newest stored batch, and the Kafka offsets it resumes from after it."""

    query: str
    batch_at: datetime
    end_offsets: dict[TopicPartition, int] | None = None  # None: the batch was stored without offsets


@dataclass(frozen=True)
class KafkaView:
    """Kafka now: each partition's earliest and latest offsets, and the timestamps of the records the job reads next."""

    earliest: dict[TopicPartition, int]
    latest: dict[TopicPartition, int]
    # (topic, partition, offset) -> Kafka timestamp of that record, for the offsets `next_unread` asked for
    timestamps: dict[tuple[str, int, int], datetime] = field(default_factory=dict)


@dataclass(frozen=True)
class Snapshot:
    """Everything the rules measure, read once per round."""

    now: datetime
    points: tuple[Doc, ...] = ()  # per-minute sums of both queries' batches (storage.rollup.minute_point)
    newest_batch_at: datetime | None = None
    newest_write_at: datetime | None = None  # last write of the newest aggregate window
    newest_window_start: datetime | None = None
    positions: tuple[QueryPosition, ...] = ()
    kafka: KafkaView | None = None
    problems: tuple[str, ...] = ()  # what could not be read this round


def next_unread(position: QueryPosition, kafka: KafkaView) -> dict[TopicPartition, int]:
    """For each partition where Kafka holds records the query has not read, the offset of the first of them.

    A partition the query has not seen yet is read from its earliest offset; an offset Kafka already deleted
    is replaced by the earliest one it still has.
    """
    out = {}
    for tp, latest in kafka.latest.items():
        if tp[0] not in {t for t, _ in (position.end_offsets or {})}:
            continue
        at = max((position.end_offsets or {}).get(tp, kafka.earliest.get(tp, 0)), kafka.earliest.get(tp, 0))
        if latest > at:
            out[tp] = at
    return out


def lag_records(position: QueryPosition, kafka: KafkaView) -> int | None:
    """Records in Kafka past the query's committed offsets, over its topics' partitions (None: offsets unknown)."""
    if position.end_offsets is None:
        return None
    topics = {t for t, _ in position.end_offsets}
    total = 0
    for tp, latest in kafka.latest.items():
        if tp[0] in topics:
            total += max(0, latest - position.end_offsets.get(tp, kafka.earliest.get(tp, 0)))
    return total


def oldest_unread_at(position: QueryPosition, kafka: KafkaView) -> datetime | None:
    """Kafka timestamp of the oldest record the query has not read (None: nothing unread, or not readable)."""
    found = [kafka.timestamps.get((tp[0], tp[1], offset)) for tp, offset in next_unread(position, kafka).items()]
    found = [t for t in found if t is not None]
    return min(found) if found else None
