"""Against the real broker: exact delivery, user-id keys in order, a clean stop, and a broker restart mid-run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path

import pytest
from kafka import KafkaConsumer, TopicPartition

from producer.cli import run_cli
from producer.delivery import send_events
from producer.generator import generate
from producer.settings import ProducerSettings

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
START = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
FAULTS = {"invalid_ratio": 0.05, "late_ratio": 0.02, "duplicate_ratio": 0.01}


def fault_flags() -> list[str]:
    return ["--invalid-ratio", "0.05", "--late-ratio", "0.02", "--duplicate-ratio", "0.01"]


def topic_size(bootstrap: str, topic: str) -> int:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        ends, starts = consumer.end_offsets(parts), consumer.beginning_offsets(parts)
        return sum(ends[p] - starts[p] for p in parts)
    finally:
        consumer.close()


def topic_exists(bootstrap: str, topic: str) -> bool:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        return topic in consumer.topics()
    finally:
        consumer.close()


def read_topic(bootstrap: str, topic: str, count: int, timeout: float = 60.0) -> list:
    """Every record of `topic` in (partition, offset) order; polls until `count` arrived or the deadline passes."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest")
    try:
        parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        records: list = []
        deadline = time.monotonic() + timeout
        while len(records) < count and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend(batch)
        return sorted(records, key=lambda r: (r.partition, r.offset))
    finally:
        consumer.close()


def per_key(pairs) -> dict[bytes, list[bytes]]:
    out: dict[bytes, list[bytes]] = defaultdict(list)
    for key, value in pairs:
        out[key].append(value)
    return out


def test_count_n_delivers_exactly_n_messages_keyed_by_user_in_order(kafka_bootstrap, capsys):
    # Given a topic that does not exist yet, When the producer sends --count 5000 with faults,
    # Then the topic is created with 3 partitions, holds exactly those 5000 messages (same bytes as generate()),
    # each keyed by its user id, and each user's events are in generation order within their partition.
    topic = f"p-{uuid.uuid4().hex[:10]}"
    code = run_cli(["--bootstrap-servers", kafka_bootstrap, "--topic", topic, "--count", "5000", "--rate", "max",
                    "--seed", "21", "--start-time", "2026-11-23T10:00:00Z", *fault_flags(), "-q"])
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0
    assert (summary["generated"], summary["sent"], summary["failed"]) == (5000, 5000, 0)

    expected = list(generate(ProducerSettings(seed=21, count=5000, rate=0, start_time=START, **FAULTS)))
    records = read_topic(kafka_bootstrap, topic, 5000)
    assert topic_size(kafka_bootstrap, topic) == 5000
    assert len({r.partition for r in records}) == 3
    assert Counter((r.key, r.value) for r in records) == Counter((e.key, e.value) for e in expected)
    users = {e.key for e in expected}
    assert all(r.key in users and r.key.startswith(b"usr_") for r in records)
    assert per_key((r.key, r.value) for r in records) == per_key((e.key, e.value) for e in expected)


def test_send_events_puts_generated_events_on_a_topic(kafka_bootstrap, new_topic):
    # (start now: the broker refuses record timestamps more than an hour in the future)
    topic = new_topic(partitions=2)
    now = datetime.now(UTC).replace(microsecond=0)
    events = list(generate(ProducerSettings(seed=4, count=300, start_time=now, **FAULTS)))
    result = send_events(kafka_bootstrap, topic, events, record_timestamps=True)
    assert result == {"sent": 300, "failed": 0, "errors": {}}
    records = read_topic(kafka_bootstrap, topic, 300)
    assert sorted(r.value for r in records) == sorted(e.value for e in events)
    # The record timestamps are the model's send times, so a future_timestamp event is an hour ahead of its record.
    assert Counter((r.key, r.value, r.timestamp) for r in records) == Counter(events_with_times(events))


def events_with_times(events):
    return ((e.key, e.value, e.time_ms) for e in events)


def start_producer(*args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "producer", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_for_messages(bootstrap: str, topic: str, at_least: int, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else "producer exited"
        if topic_exists(bootstrap, topic) and topic_size(bootstrap, topic) >= at_least:
            return
        time.sleep(0.2)
    raise AssertionError(f"fewer than {at_least} messages on {topic} after {timeout}s")


def test_sigterm_stops_an_endless_run_after_flushing_everything(kafka_bootstrap):
    # Given an endless producer, When it gets SIGTERM, Then it exits 0 and the topic holds all it reported sent.
    topic = f"p-{uuid.uuid4().hex[:10]}"
    proc = start_producer("--bootstrap-servers", kafka_bootstrap, "--topic", topic, "--rate", "3000", "--seed", "5")
    try:
        wait_for_messages(kafka_bootstrap, topic, 1500, proc)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err.decode()
    summary = json.loads(out.decode().strip().splitlines()[-1])
    assert summary["stopped_by"] == "signal"
    assert summary["sent"] == summary["generated"] >= 1500 and summary["failed"] == 0
    assert topic_size(kafka_bootstrap, topic) == summary["sent"]
    assert b"SIGTERM: stopping" in err


@pytest.mark.slow
def test_a_broker_restart_mid_run_loses_nothing_reported_sent(stack, kafka_bootstrap):
    # Given a producer sending 30,000 events at 1,500 ev/s, When the broker is stopped and started again mid-run,
    # Then the producer neither crashes nor drops anything: every event it reports sent is on the topic.
    topic = f"p-{uuid.uuid4().hex[:10]}"
    proc = start_producer("--bootstrap-servers", kafka_bootstrap, "--topic", topic, "--count", "30000",
                          "--rate", "1500", "--seed", "8", "--start-time", "2026-11-23T10:00:00Z",
                          "--progress-interval", "2s", *fault_flags())
    try:
        wait_for_messages(kafka_bootstrap, topic, 3000, proc)
        assert stack.kafka.stop(), "the broker was not running"
        assert proc.poll() is None, "the producer should still be sending (and retrying) while the broker is down"
        stack.kafka.start()
        out, err = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        stack.kafka.start()  # idempotent: the broker is up for the tests after this one, whatever happened
    summary = json.loads(out.decode().strip().splitlines()[-1])
    log = err.decode()
    assert proc.returncode == 0, log
    assert (summary["generated"], summary["sent"], summary["failed"]) == (30000, 30000, 0), log
    expected = Counter(e.value for e in generate(ProducerSettings(seed=8, count=30000, rate=1500, start_time=START,
                                                                 **FAULTS)))
    records = read_topic(kafka_bootstrap, topic, 30000, timeout=90)
    got = Counter(r.value for r in records)
    assert not expected - got, "events reported sent are missing from the topic"
    assert got == expected  # and the idempotent producer wrote none twice


@pytest.mark.slow
def test_a_broker_down_past_the_delivery_timeout_is_counted_as_failed_and_exits_1(stack, kafka_bootstrap):
    # Given a producer with a 3 s delivery timeout, When the broker goes away mid-run and stays away,
    # Then the producer does not crash: it finishes, counts every unconfirmed event as failed, and exits 1.
    topic = f"p-{uuid.uuid4().hex[:10]}"
    proc = start_producer("--bootstrap-servers", kafka_bootstrap, "--topic", topic, "--count", "12000",
                          "--rate", "1000", "--seed", "9", "--delivery-timeout", "3s", "--progress-interval", "1s")
    try:
        wait_for_messages(kafka_bootstrap, topic, 2000, proc)
        assert stack.kafka.stop(), "the broker was not running"
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        stack.kafka.start()
    summary = json.loads(out.decode().strip().splitlines()[-1])
    log = err.decode()
    assert proc.returncode == 1, log
    assert summary["generated"] == 12000
    assert summary["failed"] > 0 and summary["sent"] + summary["failed"] == 12000
    assert summary["errors"], "the summary names the errors"
    assert "were not delivered" in log and "Traceback" not in log
    # Whatever the producer reported sent is on the topic (failed ones may or may not have reached it).
    assert topic_size(kafka_bootstrap, topic) >= summary["sent"]
