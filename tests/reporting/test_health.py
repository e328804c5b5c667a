"""Freshness levels and the health row's figures (pure)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from reporting import health
from reporting.health import FreshnessRule, Level
from storage import contract as c
from tests.reporting.documents import MIN, T0, batch, points

RULE = FreshnessRule(amber=timedelta(minutes=1), red=timedelta(minutes=5))


@pytest.mark.parametrize(("age", "level"), [
    (timedelta(seconds=59), Level.OK),
    (timedelta(minutes=1), Level.AMBER),
    (timedelta(minutes=4, seconds=59), Level.AMBER),
    (timedelta(minutes=5), Level.RED),
])
def test_freshness_turns_amber_then_red_as_the_newest_write_ages(age, level):
    f = health.freshness("batch", T0, T0 + age, RULE)
    assert f.level is level and f.age == age


def test_freshness_message_says_how_old_and_when_in_utc():
    f = health.freshness("batch", T0, T0 + timedelta(minutes=2, seconds=3), RULE)
    assert f.message == "Newest batch written 2 min 3 s ago, at 2026-01-15 10:00:00 UTC (stale: over 1 min)."


def test_red_freshness_asks_whether_the_pipeline_runs():
    assert "is the job or the producer running?" in health.freshness("batch", T0, T0 + 6 * MIN, RULE).message


def test_freshness_of_nothing_written_is_unknown():
    f = health.freshness("aggregate", None, T0, RULE)
    assert (f.level, f.message) == (Level.UNKNOWN, "No aggregate written yet.")


def test_a_freshness_rule_needs_amber_before_red():
    with pytest.raises(ValueError, match="amber < red"):
        FreshnessRule(amber=timedelta(minutes=5), red=timedelta(minutes=1))


def test_batch_figures_come_from_the_newest_aggregates_batch_and_drops_are_summed_over_the_minutes():
    # Given two aggregates batches (newest at 10:01) and a newer invalid_events batch, as per-minute points
    newest = batch(c.AGGREGATES_QUERY, T0 + MIN, 2, 300, 150.0, **{c.DUPLICATES_DROPPED: 4})
    batches = [batch(c.INVALID_EVENTS_QUERY, T0 + 2 * MIN, 9, 5, 5.0), newest, batch(c.AGGREGATES_QUERY, T0, 1, 100, 50.0)]
    fig = health.batch_figures(newest, points(batches))
    # Then the figures are batch 2's, and late rows dropped add up over both aggregates batches
    assert (fig.at, fig.input_rows_per_second, fig.processed_rows_per_second) == (T0 + MIN, 150.0, 300.0)
    assert (fig.batch_duration_ms, fig.state_rows, fig.watermark) == (252, 1002, T0 + MIN - 10 * MIN)
    assert (fig.dropped_late, fig.duplicates_dropped, fig.batches) == (2, 4, 2)


def test_batch_figures_without_aggregates_batches_are_empty():
    assert health.batch_figures(None, points([batch(c.INVALID_EVENTS_QUERY, T0, 1, 1, 1.0)])) == health.BatchFigures()


LAG = health.LAG_RULE  # above 10,000 records; red after 5 minutes of it


def lag_batch(at_minute: int, records: int | None, batch_id: int = 1) -> dict:
    extra = {} if records is None else {c.OFFSETS_BEHIND_LATEST: records, c.MAX_OFFSETS_BEHIND_LATEST: records // 2}
    return batch(c.AGGREGATES_QUERY, T0 + at_minute * MIN, batch_id, 10, 1.0, **extra)


def test_the_lag_rule_is_the_alerts_lag_records_default():
    # alerts/rules.py: lag_records pending above 10,000 records, firing after 5 min (the report cannot import alerts)
    assert (LAG.records, LAG.lasting) == (10_000, 5 * MIN)


def test_a_lag_at_or_below_the_limit_is_ok_and_needs_no_history():
    newest = lag_batch(10, 10_000)
    assert health.lag_history_points(newest, points([newest])) == []
    got = health.lag(newest, [])
    assert (got.level, got.records, got.max_partition, got.at) == (Level.OK, 10_000, 5_000, T0 + 10 * MIN)


def test_a_lag_above_the_limit_asks_for_the_minutes_back_to_five_before_and_the_one_before_them():
    # Given aggregates batches at 10:00..10:10 (one a minute) and an invalid_events batch, the newest 12,000 behind
    batches = [lag_batch(m, 12_000, m) for m in range(11)] + [batch(c.INVALID_EVENTS_QUERY, T0, 1, 1, 1.0)]
    # When the history the level needs is chosen
    chosen = health.lag_history_points(batches[-2], points(batches))
    # Then it is the aggregates minutes 10:06..10:10 and 10:05, newest first
    assert [p[c.TIMESTAMP] for p in chosen] == [T0 + m * MIN for m in (10, 9, 8, 7, 6, 5)]


def test_a_lag_above_the_limit_is_amber_until_every_batch_has_been_above_it_for_five_minutes():
    newest = lag_batch(10, 12_000)
    assert health.lag(newest, [newest, lag_batch(6, 20_000)]).level is Level.AMBER  # 4 min only
    assert health.lag(newest, [newest, lag_batch(7, 20_000), lag_batch(5, 9_000)]).level is Level.AMBER  # one below
    assert health.lag(newest, [newest, lag_batch(7, 20_000), lag_batch(5, None)]).level is Level.AMBER  # unknown
    red = health.lag(newest, [newest, lag_batch(7, 20_000), lag_batch(4, 11_000)])
    assert (red.level, red.lasted) == (Level.RED, 6 * MIN)


def test_a_batch_without_lag_figures_has_an_unknown_lag():
    assert health.lag(lag_batch(1, None), []) == health.Lag(Level.UNKNOWN, at=T0 + MIN)
    assert health.lag(None, []) == health.Lag(Level.UNKNOWN)
