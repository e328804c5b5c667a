"""The sidebar's choices in the page's URL (pure): written when they differ from the defaults, read back on reload."""

from __future__ import annotations

from datetime import timedelta

import pytest

from reporting import controls
from reporting.controls import Controls
from reporting.settings import TIME_RANGES

DEFAULTS = Controls(refresh_seconds=10)


def test_a_page_left_as_it_opened_has_no_parameters():
    assert controls.to_query(DEFAULTS, DEFAULTS) == {}


def test_each_changed_choice_is_written_in_short_form():
    # Given every choice changed
    chosen = Controls(auto_refresh=False, refresh_seconds=30, time_range_label="6 hours", top_pages=20, top_users=5)
    # When it is written to the URL
    # Then each has its own short parameter
    assert controls.to_query(chosen, DEFAULTS) == {"refresh": "off", "every": "30", "range": "6h", "pages": "20",
                                                   "users": "5"}


@pytest.mark.parametrize("label", list(TIME_RANGES))
def test_every_time_range_reads_back_as_itself(label):
    chosen = Controls(time_range_label=label)
    assert controls.from_query(controls.to_query(chosen, DEFAULTS), DEFAULTS) == chosen


def test_time_ranges_are_written_in_their_largest_whole_unit():
    assert [controls.range_code(t) for t in TIME_RANGES.values()] == ["15m", "1h", "6h", "1d", "7d"]


def test_a_reload_starts_from_every_choice_in_the_url():
    params = {"refresh": "off", "every": "30", "range": "24h", "pages": "20", "users": "5"}
    assert controls.from_query(params, DEFAULTS) == Controls(False, 30, "24 hours", 20, 5)


@pytest.mark.parametrize("params", [
    {"range": "2h"},  # not offered by the sidebar
    {"range": "soon"},
    {"every": "1"},  # below 2 s
    {"pages": "500"},
    {"users": "many"},
    {"refresh": "maybe"},
])
def test_a_value_the_sidebar_does_not_offer_is_ignored(params):
    # Given a hand-edited or old link, When the page opens from it, Then it opens with the defaults for that choice
    assert controls.from_query(params, DEFAULTS) == DEFAULTS


def test_the_urls_other_parameters_are_kept():
    wanted = controls.with_choices({"embed": "true", "pages": "30"}, Controls(top_pages=12), DEFAULTS)
    assert wanted == {"embed": "true", "pages": "12"}


def test_the_report_setting_of_the_refresh_interval_is_a_default_not_a_choice():
    # Given a report started with --refresh-seconds 30, a page left at 30 s writes nothing for it
    defaults = Controls(refresh_seconds=30)
    assert controls.to_query(Controls(refresh_seconds=30), defaults) == {}
    assert controls.to_query(Controls(refresh_seconds=10), defaults) == {"every": "10"}


def test_controls_out_of_the_sidebars_bounds_are_refused():
    with pytest.raises(ValueError, match="top-N"):
        Controls(top_pages=2)
    with pytest.raises(ValueError, match="time range"):
        Controls(time_range_label="2 hours")
    assert Controls(time_range_label="15 minutes").time_range == timedelta(minutes=15)
