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
