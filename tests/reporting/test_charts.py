"""The report's figures receive exactly the data they should draw (pure)."""

from __future__ import annotations

from datetime import timedelta

from reporting import charts
from storage import contract as c
from tests.reporting.documents import MIN, T0, active, batch

S = timedelta(seconds=1)


def test_active_users_line_draws_one_point_per_window_start():
    fig = charts.active_users_line([active(T0, 3), active(T0 + MIN, 5)])
    assert list(fig.data[0].x) == [T0, T0 + MIN] and list(fig.data[0].y) == [3, 5]
    assert fig.layout.xaxis.title.text == "window start (UTC)"


def test_top_pages_bar_keeps_the_n_most_viewed_with_the_most_viewed_on_top():
    pages = [{c.PAGE_URL: "/a", c.VIEWS: 1}, {c.PAGE_URL: "/b", c.VIEWS: 9}, {c.PAGE_URL: "/c", c.VIEWS: 5}]
    fig = charts.top_pages_bar(pages, 2)
    # Plotly draws horizontal bars bottom-up, so the most viewed page comes last
    assert list(fig.data[0].y) == ["/c", "/b"] and list(fig.data[0].x) == [5, 9]


def test_sessions_histogram_draws_users_per_session_count():
    fig = charts.sessions_histogram([(1, 3), (2, 1), (3, 1)])
    assert list(fig.data[0].x) == [1, 2, 3] and list(fig.data[0].y) == [3, 1, 1]


def test_throughput_lines_draw_the_aggregates_query_in_time_order():
    batches = [batch(c.AGGREGATES_QUERY, T0 + S, 2, 30, 30.0), batch(c.INVALID_EVENTS_QUERY, T0, 1, 9, 9.0),
               batch(c.AGGREGATES_QUERY, T0, 1, 10, 10.0)]
    fig = charts.throughput_lines(batches)
    assert [t.name for t in fig.data] == ["input rows/s", "processed rows/s"]
    assert list(fig.data[0].x) == [T0, T0 + S] and list(fig.data[0].y) == [10.0, 30.0]
    assert list(fig.data[1].y) == [20.0, 60.0]


def test_batch_duration_has_one_line_per_query():
    batches = [batch(c.AGGREGATES_QUERY, T0, 1, 1, 1.0), batch(c.INVALID_EVENTS_QUERY, T0, 5, 1, 1.0)]
    fig = charts.batch_duration_lines(batches)
    assert [(t.name, list(t.y)) for t in fig.data] == [(c.AGGREGATES_QUERY, [251]), (c.INVALID_EVENTS_QUERY, [255])]


def test_bucket_size_keeps_bars_to_a_few_hundred():
    assert charts.bucket_size(timedelta(minutes=15)) == MIN
    assert charts.bucket_size(timedelta(hours=6)) == 5 * MIN
    assert charts.bucket_size(timedelta(hours=24)) == 15 * MIN
    assert charts.bucket_size(timedelta(days=7)) == timedelta(hours=1)


def test_invalid_events_are_counted_per_reason_and_bucket():
    events = [{c.REASON: "missing_field", c.KAFKA_TIMESTAMP: T0 + 14 * MIN + 59 * S},
              {c.REASON: "malformed_json", c.KAFKA_TIMESTAMP: T0 + 2 * MIN},
              {c.REASON: "missing_field", c.KAFKA_TIMESTAMP: T0 + 5 * MIN}]
    counts = charts.invalid_counts(events, 15 * MIN)
    assert counts == {"malformed_json": {T0: 1}, "missing_field": {T0: 2}}
    fig = charts.invalid_by_reason(counts, 15 * MIN)
    assert [(t.name, list(t.y)) for t in fig.data] == [("malformed_json", [1]), ("missing_field", [2])]
    assert fig.layout.barmode == "stack"
