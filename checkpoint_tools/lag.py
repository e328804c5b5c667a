"""The broker's side of lag: each partition's earliest and end offsets, read with kafka-python."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from checkpoint_tools.layout import CheckpointError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PartitionOffsets:
    earliest: int
    end: int


def broker_offsets(bootstrap_servers: str, topics: Iterable[str],
                   timeout_seconds: float = 10.0) -> dict[str, dict[int, PartitionOffsets] | None]:
    """{topic: {partition: offsets}} for every partition the broker has now; None for a topic it does not know."""
    from kafka import KafkaConsumer, TopicPartition
    from kafka.errors import KafkaError

    timeout_ms = int(timeout_seconds * 1000)
    consumer = None
    try:
        consumer = KafkaConsumer(bootstrap_servers=bootstrap_servers, enable_auto_commit=False,
                                 allow_auto_create_topics=False,  # looking must not create a topic
                                 bootstrap_timeout_ms=timeout_ms, request_timeout_ms=timeout_ms,
                                 client_id="clickpulse-checkpoint-tools")
        out: dict[str, dict[int, PartitionOffsets] | None] = {}
        for topic in sorted(set(topics)):
            parts = consumer.partitions_for_topic(topic)
            if not parts:
                out[topic] = None
                continue
            tps = [TopicPartition(topic, p) for p in sorted(parts)]
            earliest = consumer.beginning_offsets(tps, timeout_ms=timeout_ms)
            end = consumer.end_offsets(tps, timeout_ms=timeout_ms)
            out[topic] = {tp.partition: PartitionOffsets(earliest[tp], end[tp]) for tp in tps}
        return out
    except KafkaError as e:
        raise CheckpointError(f"cannot read offsets from Kafka at {bootstrap_servers}: {type(e).__name__}: {e}") from None
    finally:
        if consumer is not None:
            consumer.close()


def partition_lag(committed: dict[str, dict[int, int]],
                  broker: dict[str, dict[int, PartitionOffsets] | None] | None) -> list[dict[str, object]]:
    """One row per partition known to the checkpoint or the broker: committed, end and lag (None when unknown).

    A partition the checkpoint has not seen yet is read from its earliest offset, so its lag is all it holds.
    A negative lag means the checkpoint is ahead of the broker (a topic deleted and made again).
    """
    rows = []
    for topic in sorted(set(committed) | set(broker or {})):
        mine = committed.get(topic, {})
        theirs = (broker or {}).get(topic)
        for p in sorted(set(mine) | set(theirs or {})):
            at = mine.get(p)
            on_broker = theirs.get(p) if theirs else None
            end = on_broker.end if on_broker else None
            if on_broker is None:
                lag = None
            elif at is None:
                lag = on_broker.end - on_broker.earliest
            else:
                lag = on_broker.end - at
            rows.append({"topic": topic, "partition": p, "committed": at, "end": end, "lag": lag})
    return rows
