"""Times, windows and ages as the report writes them: UTC, labelled."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from reporting import labels
from tests.reporting.documents import MIN, T0


def test_times_are_shown_in_utc_and_say_so():
    paris = timezone(timedelta(hours=1))
    assert labels.utc(datetime(2026, 1, 15, 11, 0, 5, tzinfo=paris)) == "2026-01-15 10:00:05 UTC"
    assert labels.utc(datetime(2026, 1, 15, 10, 0)) == "2026-01-15 10:00:00 UTC"  # naive BSON dates are UTC
    assert labels.utc(None) == "—"


def test_a_window_is_written_as_start_to_end_with_the_date_once():
    assert labels.window(T0, T0 + 5 * MIN) == "2026-01-15 10:00–10:05 UTC"
    assert labels.window(T0 + 14 * 60 * MIN, T0 + 14 * 60 * MIN + 15 * MIN) == "2026-01-16 00:00–00:15 UTC"
    assert labels.window(T0 - 5 * MIN + 14 * 60 * MIN, T0 + 14 * 60 * MIN + 5 * MIN) == \
        "2026-01-15 23:55–2026-01-16 00:05 UTC"


@pytest.mark.parametrize(("seconds", "text"), [
    (-3, "0 s"), (5, "5 s"), (60, "1 min"), (65, "1 min 5 s"), (3600, "1 h"), (3725, "1 h 2 min"),
    (90000, "1 d 1 h"),
])
def test_ages_are_short(seconds, text):
    assert labels.age(timedelta(seconds=seconds)) == text


def test_counts_use_thousands_separators():
    assert (labels.count(1234), labels.count(12.5)) == ("1,234", "12.5")
