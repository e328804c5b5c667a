"""What each rule measures from one round's snapshot (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from alerts.rules import BY_NAME
from alerts.snapshot import KafkaView, QueryPosition, Snapshot
from storage import contract as c

NOW = datetime(2026, 11, 23, 10, 30, 20, tzinfo=UTC)


def point(query: str, minute: datetime, **fields) -> dict:
    """A per-minute point as storage.rollup.minute_point shapes it."""
    return {c.QUERY: query, c.MINUTE: minute, c.TIMESTAMP: minute + timedelta(seconds=59), c.BATCHES: 10,
            c.INPUT_ROWS: 0, c.BATCH_DURATION_MS: 100, c.DROPPED_BY_WATERMARK: 0, **fields}


def measure(name: str, snapshot: Snapshot):
    return BY_NAME[name].measure(snapshot, BY_NAME[name].defaults)


def minute(m: int) -> datetime:
    return datetime(2026, 11, 23, 10, m, tzinfo=UTC)


def test_invalid_rate_is_invalid_over_all_records_of_the_minutes_in_its_window():
    # Given 15 minutes of invalid_events batches, the last two with half their records invalid, and one older
    points = [point(c.INVALID_EVENTS_QUERY, minute(m), input_rows=100, invalid_rows=0) for m in range(16, 29)]
    points += [point(c.INVALID_EVENTS_QUERY, minute(m), input_rows=100, invalid_rows=50) for m in (29, 30)]
    points += [point(c.INVALID_EVENTS_QUERY, minute(10), input_rows=1000, invalid_rows=1000)]  # outside 15 min
    # When the rule measures it
    m = measure("invalid_rate", Snapshot(NOW, points=tuple(points)))
    # Then it is 100 invalid of the 1,500 records read in minutes 10:16 to 10:30
    assert m.value == pytest.approx(100 / 1500)
    assert m.summary == "100 of 1,500 records read in the last 15 min were invalid (6.7%)"


def test_invalid_rate_is_unknown_when_nothing_was_read():
    assert measure("invalid_rate", Snapshot(NOW)).value is None


def test_lag_is_kafka_s_latest_offsets_minus_the_newest_batch_s_end_offsets():
    # Given the aggregates query stopped at offsets 100 and 50 and Kafka now holds 130 and 60 (and a new partition 2)
    position = QueryPosition(c.AGGREGATES_QUERY, NOW, {("t", 0): 100, ("t", 1): 50})
    kafka = KafkaView(earliest={("t", 0): 0, ("t", 1): 0, ("t", 2): 5}, latest={("t", 0): 130, ("t", 1): 60, ("t", 2): 7},
                      timestamps={("t", 0, 100): NOW - timedelta(seconds=90), ("t", 1, 50): NOW - timedelta(seconds=30),
                                  ("t", 2, 5): NOW - timedelta(seconds=10)})
    snapshot = Snapshot(NOW, positions=(position,), kafka=kafka)
    # Then lag is 30 + 10 + 2 records, and the oldest unread record is 90 s old
    assert measure("lag_records", snapshot).value == 42
    assert measure("lag_seconds", snapshot).value == 90


def test_lag_seconds_is_zero_when_every_record_was_read():
    position = QueryPosition(c.AGGREGATES_QUERY, NOW, {("t", 0): 130})
    snapshot = Snapshot(NOW, positions=(position,), kafka=KafkaView({("t", 0): 0}, {("t", 0): 130}))
    assert measure("lag_seconds", snapshot).value == 0


def test_lag_is_unknown_without_kafka_or_stored_offsets():
    stored = QueryPosition(c.AGGREGATES_QUERY, NOW, {("t", 0): 1})
    assert measure("lag_records", Snapshot(NOW, positions=(stored,))).value is None
    old_job = Snapshot(NOW, positions=(QueryPosition(c.AGGREGATES_QUERY, NOW, None),), kafka=KafkaView({}, {}))
    assert measure("lag_records", old_job).value is None


def test_staleness_is_the_age_of_the_newest_batch_and_of_the_newest_aggregate_write():
    snapshot = Snapshot(NOW, newest_batch_at=NOW - timedelta(minutes=6), newest_write_at=NOW - timedelta(seconds=20))
    assert measure("batch_age", snapshot).value == 360
    assert measure("window_age", snapshot).value == 20
    assert "6 min ago" in measure("batch_age", snapshot).summary


def test_batch_duration_is_the_slower_query_s_mean_over_its_window():
    points = (point(c.AGGREGATES_QUERY, minute(30), batch_duration_ms=2500, batches=4),
              point(c.AGGREGATES_QUERY, minute(29), batch_duration_ms=500, batches=4),
              point(c.INVALID_EVENTS_QUERY, minute(30), batch_duration_ms=300, batches=8))
    assert measure("batch_duration", Snapshot(NOW, points=points)).value == pytest.approx(1.5)


def test_rows_dropped_by_the_watermark_are_counted_per_minute_over_the_window():
    points = tuple(point(c.AGGREGATES_QUERY, minute(m), dropped_by_watermark=d) for m, d in ((26, 5), (28, 0), (30, 10)))
    assert measure("dropped_late", Snapshot(NOW, points=points)).value == 3.0
