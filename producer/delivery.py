"""Delivery to Kafka (kafka-python): connect with backoff, create the topic, send, count every outcome, flush.

Nothing is lost silently: every message handed to a sink ends up counted as `acked` (the broker confirmed it with
acks=all) or `failed` (an error, or still unconfirmed when the run had to give up). `send_events()` is the small
helper tests use to put a list of (key, value) pairs on a topic and get those counts back.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from typing import BinaryIO, Protocol

from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient
from kafka.errors import KafkaError, KafkaTimeoutError, TopicAlreadyExistsError
from kafka.partitioner.default import murmur2

from producer.settings import ProducerSettings

log = logging.getLogger("producer.delivery")


class DeliveryError(RuntimeError):
    """Kafka could not be reached (or the topic created) in time."""


class Sink(Protocol):
    """Where events go: Kafka, or stdout for a dry run."""

    handed: int  # messages given to send()
    acked: int  # confirmed by the broker (acks=all)
    failed: int  # errored, or still unconfirmed when the run gave up
    last_progress: float  # monotonic time an outcome last came back

    @property
    def pending(self) -> int: ...

    def send(self, key: bytes | None, value: bytes, timestamp_ms: int | None = None) -> None: ...

    def reap(self) -> None: ...

    def close(self, timeout: float, abandon: Callable[[], bool]) -> None: ...

    def errors(self) -> dict[str, int]: ...


def producer_config(settings: ProducerSettings, bootstrap_timeout_ms: int = 5000) -> dict[str, object]:
    """KafkaProducer options: durable (acks=all, idempotent, retries until the delivery timeout) and batched."""
    delivery_ms = round(settings.delivery_timeout * 1000)
    return {
        "bootstrap_servers": [s.strip() for s in settings.bootstrap_servers.split(",")],
        "client_id": "clickpulse-producer",
        "acks": "all",
        "linger_ms": settings.linger_ms,
        "batch_size": settings.kafka_batch_bytes,
        "max_request_size": max(1024 * 1024, settings.kafka_batch_bytes),
        "compression_type": settings.compression,
        "delivery_timeout_ms": delivery_ms,
        "request_timeout_ms": max(1000, min(30_000, delivery_ms - settings.linger_ms - 1)),
        # Exponential reconnect backoff, capped low so a restarted broker is found again within seconds.
        "retry_backoff_ms": 100,
        "reconnect_backoff_ms": 100,
        "reconnect_backoff_max_ms": 5000,
        "bootstrap_timeout_ms": bootstrap_timeout_ms,
        "max_block_ms": 30_000,
    }


def ensure_topic(bootstrap_servers: str, topic: str, partitions: int, replication_factor: int,
                 bootstrap_timeout_ms: int = 5000) -> bool:
    """Create `topic` unless it exists; return whether it was created now."""
    admin = KafkaAdminClient(bootstrap_servers=[s.strip() for s in bootstrap_servers.split(",")],
                             client_id="clickpulse-producer-admin", bootstrap_timeout_ms=bootstrap_timeout_ms)
    try:
        if topic in admin.list_topics():
            return False
        try:
            admin.create_topics({topic: {"num_partitions": partitions, "replication_factor": replication_factor}},
                                wait_for_metadata=True)
        except TopicAlreadyExistsError:
            return False
        return True
    finally:
        admin.close()


def connect(settings: ProducerSettings, stop: threading.Event | None = None,
            clock: Callable[[], float] = time.monotonic) -> KafkaProducer:
    """Create the topic if missing and open a producer, retrying with exponential backoff until connect_timeout."""
    stop = stop or threading.Event()
    started = clock()
    deadline = started + settings.connect_timeout
    delay, attempt = 0.5, 0
    while True:
        attempt += 1
        budget_ms = round(max(1.0, min(5.0, deadline - clock())) * 1000)
        try:
            if ensure_topic(settings.bootstrap_servers, settings.topic, settings.partitions,
                            settings.replication_factor, budget_ms):
                log.info("created topic %s (%d partitions, replication %d)", settings.topic, settings.partitions,
                         settings.replication_factor)
            return KafkaProducer(**producer_config(settings, budget_ms))
        except (KafkaError, OSError) as e:
            remaining = deadline - clock()
            if remaining <= 0 or stop.is_set():
                raise DeliveryError(
                    f"Kafka at {settings.bootstrap_servers} not reachable after {attempt} attempt(s) in "
                    f"{clock() - started:.0f}s ({type(e).__name__}: {e})"
                ) from None
            wait = min(delay, remaining)
            log.warning("Kafka at %s not reachable (attempt %d: %s: %s); retrying in %.1fs",
                        settings.bootstrap_servers, attempt, type(e).__name__, e, wait)
            stop.wait(wait)
            delay = min(delay * 2, 30.0)


class KafkaSink:
    """Sends to one topic through a KafkaProducer and counts outcomes without a callback per record.

    Futures are kept in send order and reaped from the front as they complete; keys are partitioned exactly like
    kafka-python's (and Java's) default partitioner, murmur2 of the key, but computed once per key and cached.
    At most `max_pending` messages are left unconfirmed: past that, `send` waits for the broker.
    """

    def __init__(self, producer: KafkaProducer, topic: str, max_pending: int = 200_000,
                 clock: Callable[[], float] = time.monotonic, stopping: Callable[[], bool] = lambda: False) -> None:
        self._producer = producer
        self._stopping = stopping
        self._topic = topic
        self._max_pending = max_pending
        self._clock = clock
        self._inflight: deque = deque()
        self._errors: Counter[str] = Counter()
        self._partition_of: dict[bytes, int] = {}
        self._partitions = sorted(producer.partitions_for(topic) or ())
        self.handed = 0
        self.acked = 0
        self.failed = 0
        self.last_progress = clock()  # last time an outcome came back

    @property
    def pending(self) -> int:
        return self.handed - self.acked - self.failed

    def _partition(self, key: bytes) -> int | None:
        p = self._partition_of.get(key)
        if p is None and self._partitions:
            p = self._partitions[(murmur2(key) & 0x7FFFFFFF) % len(self._partitions)]
            if len(self._partition_of) < 1_000_000:
                self._partition_of[key] = p
        return p

    def send(self, key: bytes | None, value: bytes, timestamp_ms: int | None = None) -> None:
        if len(self._inflight) >= self._max_pending:
            self._wait_for_room()
        self.handed += 1
        try:
            future = self._producer.send(self._topic, value, key=key,
                                         partition=None if key is None else self._partition(key),
                                         timestamp_ms=timestamp_ms)
        except KafkaError as e:
            self._fail(e)
            return
        self._inflight.append(future)

    def _fail(self, error: BaseException) -> None:
        self.failed += 1
        name = type(error).__name__
        if not self._errors[name]:
            log.error("delivery failed: %s: %s (further %s errors are only counted)", name, error, name)
        self._errors[name] += 1

    def reap(self) -> None:
        """Count the outcomes that came back, oldest first."""
        dq = self._inflight
        before = self.acked + self.failed
        while dq and dq[0].is_done:
            future = dq.popleft()
            if future.exception is None:
                self.acked += 1
            else:
                self._fail(future.exception)
        if self.acked + self.failed != before:
            self.last_progress = self._clock()

    def _wait_for_room(self) -> None:
        logged = self._clock()
        while True:
            self.reap()
            if len(self._inflight) < self._max_pending * 0.9 or self._stopping():
                return
            if self._clock() - logged >= 5.0:
                logged = self._clock()
                log.warning("waiting for Kafka: %d messages unconfirmed (max pending %d)", len(self._inflight),
                            self._max_pending)
            time.sleep(0.02)

    def close(self, timeout: float, abandon: Callable[[], bool] = lambda: False) -> None:
        """Flush (up to `timeout` s, or until `abandon()`), count what never came back as failed, close."""
        deadline = self._clock() + timeout
        logged = self._clock()
        while self._inflight:
            try:
                self._producer.flush(timeout=0.5)
            except KafkaError:
                pass
            self.reap()
            if not self._inflight:
                break
            # reap() stops at the first unfinished future; finished ones behind it are counted at the end.
            if all(f.is_done for f in self._inflight):
                break
            if self._clock() >= deadline or abandon():
                break
            if self._clock() - logged >= 5.0:
                logged = self._clock()
                log.warning("flushing: %d messages still unconfirmed", sum(not f.is_done for f in self._inflight))
        undelivered = 0
        for future in self._inflight:
            if not future.is_done:
                undelivered += 1
                self._fail(KafkaTimeoutError("still unconfirmed when the producer stopped"))
            elif future.exception is None:
                self.acked += 1
            else:
                self._fail(future.exception)
        self._inflight.clear()
        if undelivered:
            log.error("%d messages were not confirmed by Kafka before stopping: counted as failed", undelivered)
        if undelivered:
            _abandon_pending(self._producer)
        try:
            self._producer.close(timeout=10)
        except KafkaError as e:
            log.warning("Kafka producer did not close cleanly: %s", e)

    def errors(self) -> dict[str, int]:
        return dict(self._errors)


def _abandon_pending(producer: KafkaProducer) -> None:
    """Fail the batches kafka-python still holds, so that close() can finish.

    Why: with the broker away, kafka-python 3.0.12's idempotent producer stops expiring batches once it has lost
    its producer id (the sender only retries InitProducerId), and KafkaProducer.close() raises on the timed-out
    flush before it would force-close -- leaving the sender running and __del__ to raise again at exit. Its
    sender's force_close() aborts every incomplete batch; those records were already counted as failed.
    """
    sender = getattr(producer, "_sender", None)
    if sender is None or not hasattr(sender, "force_close"):
        return
    sender.force_close()
    sender.join(10)


class StreamSink:
    """A dry run: each value on its own line of a binary stream (stdout), counted as delivered at once."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self.handed = 0
        self.acked = 0
        self.failed = 0
        self.last_progress = time.monotonic()

    @property
    def pending(self) -> int:
        return 0

    def send(self, key: bytes | None, value: bytes, timestamp_ms: int | None = None) -> None:
        self._stream.write(value + b"\n")
        self.handed += 1
        self.acked += 1

    def reap(self) -> None:
        return None

    def close(self, timeout: float, abandon: Callable[[], bool] = lambda: False) -> None:
        self._stream.flush()

    def errors(self) -> dict[str, int]:
        return {}


def send_events(bootstrap_servers: str, topic: str, events: Iterable[tuple], *, partitions: int = 3,
                record_timestamps: bool = False, timeout: float = 60.0) -> dict[str, object]:
    """Send (key, value[, ...]) items -- e.g. `Event`s from `generate()` -- to `topic`, creating it if missing.

    With `record_timestamps`, each item's 4th field (`Event.time_ms`) becomes the Kafka record timestamp, so the
    job's future-timestamp check sees the model clock rather than the wall clock. Returns
    {"sent", "failed", "errors"}; raises DeliveryError if the broker cannot be reached within `timeout`.
    """
    settings = ProducerSettings(bootstrap_servers=bootstrap_servers, topic=topic, partitions=partitions,
                                connect_timeout=timeout, delivery_timeout=timeout, linger_ms=5)
    sink = KafkaSink(connect(settings), topic)
    try:
        for item in events:
            sink.send(item[0], item[1], item[3] if record_timestamps else None)
            sink.reap()
    finally:
        sink.close(timeout)
    return {"sent": sink.acked, "failed": sink.failed, "errors": sink.errors()}
