"""Kafka's side of consumer lag: latest offsets, and the timestamps of the first records the job has not read."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from alerts.snapshot import KafkaView, QueryPosition, TopicPartition, next_unread

log = logging.getLogger(__name__)


class KafkaUnavailable(Exception):
    """Kafka could not be read (one line)."""


def read_kafka(bootstrap_servers: str, positions: Iterable[QueryPosition], timeout: timedelta) -> KafkaView | None:
    """Offsets of every partition of the topics the queries read, and the timestamp of each query's next record.

    None when no query has stored offsets yet (there is nothing to compare with).
    """
    from kafka import KafkaConsumer
    from kafka import TopicPartition as KafkaPartition
    from kafka.errors import KafkaError

    positions = list(positions)
    topics = sorted({t for p in positions for t, _ in (p.end_offsets or {})})
    if not topics:
        return None
    timeout_ms = int(timeout.total_seconds() * 1000)
    consumer = None
    try:
        consumer = KafkaConsumer(bootstrap_servers=bootstrap_servers, enable_auto_commit=False,
                                 allow_auto_create_topics=False, bootstrap_timeout_ms=timeout_ms,
                                 request_timeout_ms=max(timeout_ms, 1000), client_id="clickpulse-alerts")
        earliest: dict[TopicPartition, int] = {}
        latest: dict[TopicPartition, int] = {}
        for topic in topics:
            tps = [KafkaPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
            if not tps:
                log.warning("topic %s does not exist on %s", topic, bootstrap_servers)
                continue
            earliest.update({(tp.topic, tp.partition): o for tp, o in consumer.beginning_offsets(tps, timeout_ms).items()})
            latest.update({(tp.topic, tp.partition): o for tp, o in consumer.end_offsets(tps, timeout_ms).items()})
        view = KafkaView(earliest, latest)
        wanted = sorted({(tp[0], tp[1], offset) for p in positions for tp, offset in next_unread(p, view).items()})
        return KafkaView(earliest, latest, _timestamps(consumer, wanted, timeout))
    except KafkaError as e:
        raise KafkaUnavailable(f"cannot read offsets from Kafka at {bootstrap_servers}: {type(e).__name__}: {e}") from None
    finally:
        if consumer is not None:
            consumer.close()


def _timestamps(consumer, wanted: list[tuple[str, int, int]], timeout: timedelta) -> dict[tuple[str, int, int], datetime]:
    """Kafka timestamp of the record at each (topic, partition, offset), or of the first one after it (deleted or
    compacted offsets); offsets not readable within `timeout` are left out."""
    from kafka import TopicPartition as KafkaPartition

    out: dict[tuple[str, int, int], datetime] = {}
    deadline = time.monotonic() + timeout.total_seconds()
    for topic, partition, offset in wanted:
        tp = KafkaPartition(topic, partition)
        consumer.assign([tp])
        consumer.seek(tp, offset)
        while time.monotonic() < deadline:
            records = consumer.poll(timeout_ms=500, max_records=1).get(tp) or []
            if records:
                out[(topic, partition, offset)] = datetime.fromtimestamp(records[0].timestamp / 1000, UTC)
                break
    if len(out) < len(wanted):
        log.warning("could not read %d of %d next records from Kafka within %s", len(wanted) - len(out), len(wanted),
                    timeout)
    return out
