"""Settings: flags parse to clear values, and impossible combinations are refused with one clear message."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from producer.settings import (
    INJECTABLE_REASONS,
    ProducerSettings,
    parse_burst,
    parse_rate,
    parse_start_time,
)
from storage.contract import INVALID_REASONS


def test_every_injectable_reason_is_one_of_the_jobs_invalid_reasons():
    assert set(INJECTABLE_REASONS) <= set(INVALID_REASONS)


def test_rate_max_and_zero_both_mean_as_fast_as_possible():
    assert parse_rate("max") == parse_rate("0") == 0.0
    assert parse_rate("2500") == 2500.0
    with pytest.raises(ValueError, match="bad rate"):
        parse_rate("fast")


def test_burst_bounds_and_start_time_parse():
    assert parse_burst("50:500") == (50.0, 500.0)
    assert parse_start_time("2026-11-23T10:00:00Z") == datetime(2026, 11, 23, 10, tzinfo=UTC)
    assert parse_start_time("2026-11-23T10:00:00") == datetime(2026, 11, 23, 10, tzinfo=UTC)
    with pytest.raises(ValueError, match="bad burst"):
        parse_burst("500")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"bootstrap_servers": "localhost"}, "bootstrap servers"),
        ({"topic": "bad topic"}, "bad topic"),
        ({"count": 10, "duration": 5.0}, "not both"),
        ({"invalid_ratio": 1.5}, "between 0 and 1"),
        ({"invalid_ratio": 0.6, "late_ratio": 0.5}, "must not exceed 1"),
        ({"duplicate_ratio": 0.5}, "below 0.5"),
        ({"invalid_kinds": ("too_large",)}, "invalid kinds"),
        ({"burst": (10.0, 5.0)}, "burst bounds"),
        ({"users": 0}, "at least 1"),
    ],
)
def test_impossible_settings_are_refused(changes, message):
    with pytest.raises(ValueError, match=message):
        ProducerSettings(**changes)


def test_invalid_ratio_is_split_evenly_over_the_chosen_kinds():
    s = ProducerSettings(invalid_ratio=0.1, invalid_kinds=("malformed_json", "wrong_type"), late_ratio=0.02)
    ratios = s.ratios()
    assert ratios["malformed_json"] == ratios["wrong_type"] == pytest.approx(0.05)
    assert ratios["missing_field"] == 0.0
    assert ratios["late"] == 0.02


def test_a_steady_run_of_given_duration_plans_rate_times_duration_events():
    assert ProducerSettings(rate=100, duration=2.5).planned_count == 250
    assert ProducerSettings(rate=0, duration=2.5).planned_count is None
    assert ProducerSettings(count=7).planned_count == 7
