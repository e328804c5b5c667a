"""The KPI row's figures, from query results (pure)."""

from __future__ import annotations

from datetime import timedelta

from reporting import health, kpis
from storage import contract as c
from storage.reads import PageViews, Sessions
from tests.reporting.documents import MIN, T0, active, batch, points

S = timedelta(seconds=1)


def test_active_users_kpi_shows_count_change_and_window():
    # Given a latest window of 42 users and a previous one of 40
    kpi = kpis.active_users(active(T0 + 10 * MIN, 42), active(T0 + 9 * MIN, 40))
    # Then the KPI reads 42, +2 against the window starting 10:09, for the 10:10-10:15 window
    assert (kpi.value, kpi.number, kpi.delta) == ("42", 42.0, "+2")
    assert kpi.delta_description == "vs 10:09 UTC start"
    assert kpi.window == "5-min window 2026-01-15 10:10–10:15 UTC"
    assert "newest one whose end is at or before now" in kpi.help


def test_active_users_kpi_without_data_says_so():
    kpi = kpis.active_users(None, None)
    assert (kpi.value, kpi.window, kpi.delta) == ("—", "no window yet", None)


def test_active_users_kpi_has_no_change_without_a_previous_window():
    assert kpis.active_users(active(T0, 7), None).delta is None


def test_page_views_kpi_is_the_total_over_every_page_of_the_window():
    # Given a window whose listed pages are cut to one, but whose total counts all of them
    window = {c.WINDOW_START: T0, c.WINDOW_END: T0 + 15 * MIN}
    views = PageViews(window, [{c.PAGE_URL: "/a", c.VIEWS: 1200}], total_views=1234, distinct_pages=2)
    # When the KPI is built
    kpi = kpis.page_views(views)
    # Then it shows the total, exact, with its window
    assert (kpi.value, kpi.number, kpi.window) == ("1,234", 1234.0, "15-min window 2026-01-15 10:00–10:15 UTC")


def test_page_views_kpi_without_a_window_is_a_dash():
    assert kpis.page_views(None).value == "—"


def test_sessions_per_user_is_total_sessions_over_users():
    # Given three users with 1 session, one with 2 and one with 3: 8 sessions over 5 users
    window = {c.WINDOW_START: T0, c.WINDOW_END: T0 + 5 * MIN}
    kpi = kpis.sessions_per_user(Sessions(window, [(1, 3), (2, 1), (3, 1)], users=5))
    # Then the KPI reads 8/5
    assert (kpi.value, kpi.number) == ("1.60", 1.6)


def test_sessions_per_user_without_users_is_a_dash():
    assert kpis.sessions_per_user(None).value == "—"
    assert kpis.sessions_per_user(Sessions({c.WINDOW_START: T0, c.WINDOW_END: T0 + 5 * MIN})).value == "—"


def test_events_per_second_is_time_weighted_over_the_aggregates_batches_of_the_current_minute():
    # Given aggregates batches of 100 rows at 50/s (2 s) and 300 rows at 150/s (2 s) in the minute of the newest,
    # an older one in an earlier minute, and an invalid_events batch (not counted)
    newest = T0 + 10 * MIN + 40 * S
    batches = [batch(c.AGGREGATES_QUERY, newest, 3, 300, 150.0), batch(c.AGGREGATES_QUERY, newest - 30 * S, 2, 100, 50.0),
               batch(c.AGGREGATES_QUERY, newest - 2 * MIN, 1, 10_000, 10_000.0),
               batch(c.INVALID_EVENTS_QUERY, newest, 3, 999, 999.0)]
    # When the rate is computed from their per-minute points
    kpi = kpis.events_per_second(points(batches), newest)
    # Then 400 rows over 4 seconds: 100 rows/s, and the KPI says which batches
    assert kpi.number == 100.0 and kpi.value == "100.0"
    assert kpi.window == "batches from 10:10 to 2026-01-15 10:10:40 UTC"


def test_events_per_second_is_zero_when_recent_batches_read_nothing():
    newest = T0
    assert kpis.events_per_second(points([batch(c.AGGREGATES_QUERY, newest, 1, 0, 0.0)]), newest).number == 0.0


def test_events_per_second_follows_the_aggregates_querys_own_newest_minute():
    # Given an aggregates batch at 10:10:55 and a newer invalid_events batch in the next minute (10:11:01)
    newest = T0 + 11 * MIN + S
    batches = [batch(c.AGGREGATES_QUERY, newest - 6 * S, 1, 100, 50.0), batch(c.INVALID_EVENTS_QUERY, newest, 1, 5, 5.0)]
    # Then the rate is that of the aggregates query's minute, not a zero for the minute it has not reached yet
    kpi = kpis.events_per_second(points(batches), newest)
    assert kpi.number == 50.0 and kpi.window == "batches from 10:10 to 2026-01-15 10:10:55 UTC"


def test_invalid_rate_is_invalid_rows_over_rows_read_in_the_last_15_minutes():
    # Given invalid_events batches: 2 of 100 and 6 of 300 invalid in the last 15 minutes, 50 of 50 before that
    newest = T0 + 30 * MIN
    batches = [batch(c.INVALID_EVENTS_QUERY, newest, 3, 300, 1.0, **{c.INVALID_ROWS: 6}),
               batch(c.INVALID_EVENTS_QUERY, newest - 10 * MIN, 2, 100, 1.0, **{c.INVALID_ROWS: 2}),
               batch(c.INVALID_EVENTS_QUERY, newest - 20 * MIN, 1, 50, 1.0, **{c.INVALID_ROWS: 50})]
    kpi = kpis.invalid_rate(points(batches), newest)
    assert (kpi.value, kpi.number) == ("2.0%", 0.02)
    assert kpi.window == "batches from 10:16 to 2026-01-15 10:30:00 UTC"


def test_invalid_rate_is_unknown_when_batches_carry_no_invalid_count():
    newest = T0
    assert kpis.invalid_rate(points([batch(c.INVALID_EVENTS_QUERY, newest, 1, 100, 1.0)]), newest).value == "—"
    assert kpis.invalid_rate([], None).window == "no batch yet"


def test_the_lag_kpi_says_which_batch_measured_it_and_how_long_ago():
    lag = health.Lag(health.Level.OK, 1234, 600, T0)
    kpi = kpis.consumer_lag(lag, T0 + 12 * S)
    assert (kpi.label, kpi.value, kpi.number, kpi.note) == ("Consumer lag", "1,234", 1234.0, "")
    assert kpi.window == ("records behind Kafka at the newest aggregates batch, 2026-01-15 10:00:00 UTC (12 s ago); "
                          "at most 600 in a partition")
    assert "offsetsBehindLatest" in kpi.help and "10,000" in kpi.help


def test_the_lag_kpi_names_the_alert_its_colour_stands_for():
    amber = kpis.consumer_lag(health.Lag(health.Level.AMBER, 20_000, None, T0), T0)
    red = kpis.consumer_lag(health.Lag(health.Level.RED, 20_000, None, T0, lasted=7 * MIN), T0)
    assert amber.note == ":orange[above 10,000 records: the lag_records alert is pending]"
    assert red.note == ":red[above 10,000 records for 7 min: the lag_records alert fires]"
    assert amber.window == "records behind Kafka at the newest aggregates batch, 2026-01-15 10:00:00 UTC (0 s ago)"


def test_the_lag_kpi_without_a_measurement_says_why():
    assert kpis.consumer_lag(health.Lag(health.Level.UNKNOWN), T0).window == "no batch yet"
    unreported = kpis.consumer_lag(health.Lag(health.Level.UNKNOWN, at=T0), T0)
    assert (unreported.value, unreported.window) == ("—", "the newest aggregates batch (2026-01-15 10:00:00 UTC) "
                                                           "reported none")
