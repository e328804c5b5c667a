"""Plotly figures of the report, built from query results (pure: no Streamlit, no database)."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import plotly.graph_objects as go

from reporting import labels
from storage import contract as c

Doc = dict[str, Any]
_HEIGHT = 320


def _layout(fig: go.Figure, x_title: str, y_title: str, **extra: Any) -> go.Figure:
    fig.update_layout(height=_HEIGHT, margin={"l": 10, "r": 10, "t": 30, "b": 10},
                      xaxis_title=x_title, yaxis_title=y_title,
                      legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 0}, **extra)
    return fig


def active_users_line(series: Sequence[Doc]) -> go.Figure:
    """Active users per window over time, x = window start (UTC)."""
    fig = go.Figure(go.Scatter(
        x=[labels.as_utc(d[c.WINDOW_START]) for d in series],
        y=[int(d[c.ACTIVE_USERS_COUNT]) for d in series],
        mode="lines", name="active users", line={"width": 2},
        hovertemplate="%{x|%Y-%m-%d %H:%M} UTC<br>%{y:,} active users<extra></extra>",
    ))
    return _layout(fig, "window start (UTC)", "active users")


def top_pages_bar(pages: Sequence[Doc], n: int) -> go.Figure:
    """The `n` most viewed pages, most viewed on top."""
    top = sorted(pages, key=lambda p: (-int(p[c.VIEWS]), str(p[c.PAGE_URL])))[:n]
    fig = go.Figure(go.Bar(
        x=[int(p[c.VIEWS]) for p in reversed(top)],
        y=[str(p[c.PAGE_URL]) for p in reversed(top)],
        orientation="h", name="views", hovertemplate="%{y}<br>%{x:,} views<extra></extra>",
    ))
    return _layout(fig, "page views", "", yaxis={"automargin": True})


def sessions_histogram(histogram: Sequence[tuple[int, int]]) -> go.Figure:
    """How many users had 1, 2, 3, ... sessions in the window."""
    fig = go.Figure(go.Bar(
        x=[k for k, _ in histogram], y=[n for _, n in histogram], name="users",
        hovertemplate="%{y:,} users with %{x} sessions<extra></extra>",
    ))
    return _layout(fig, "sessions per user", "users", xaxis={"dtick": 1}, bargap=0.1)


def _by_time(batches: Sequence[Doc], query: str) -> list[Doc]:
    return sorted((b for b in batches if b.get(c.QUERY) == query), key=lambda b: labels.as_utc(b[c.TIMESTAMP]))


def throughput_lines(batches: Sequence[Doc]) -> go.Figure:
    """Rows/s read from Kafka and processed by the aggregates query, per minute of batches (time-weighted)."""
    agg = _by_time(batches, c.AGGREGATES_QUERY)
    x = [labels.as_utc(b[c.TIMESTAMP]) for b in agg]
    fig = go.Figure([
        go.Scatter(x=x, y=[float(b.get(c.INPUT_ROWS_PER_SECOND) or 0) for b in agg], mode="lines", name="input rows/s"),
        go.Scatter(x=x, y=[float(b.get(c.PROCESSED_ROWS_PER_SECOND) or 0) for b in agg], mode="lines",
                   name="processed rows/s"),
    ])
    return _layout(fig, "newest batch of the minute (UTC)", "rows/s")


def batch_duration_lines(batches: Sequence[Doc]) -> go.Figure:
    """Mean batch duration of each streaming query, per minute of batches."""
    traces = []
    for query in (c.AGGREGATES_QUERY, c.INVALID_EVENTS_QUERY):
        rows = _by_time(batches, query)
        if rows:
            traces.append(go.Scatter(x=[labels.as_utc(b[c.TIMESTAMP]) for b in rows],
                                     y=[int(b.get(c.BATCH_DURATION_MS) or 0) for b in rows], mode="lines", name=query))
    return _layout(go.Figure(traces), "newest batch of the minute (UTC)", "mean batch duration (ms)")


def bucket_size(span: timedelta) -> timedelta:
    """Bar width for a time range: at most a few hundred bars whatever the range."""
    for limit, size in ((timedelta(hours=1), timedelta(minutes=1)), (timedelta(hours=6), timedelta(minutes=5)),
                        (timedelta(hours=24), timedelta(minutes=15))):
        if span <= limit:
            return size
    return timedelta(hours=1)


def bucket_start(ts: datetime, size: timedelta) -> datetime:
    """The start of the `size` bucket (aligned to the Unix epoch) holding `ts`."""
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    t = labels.as_utc(ts)
    return t - (t - epoch) % size


def invalid_counts(events: Sequence[Doc], size: timedelta) -> dict[str, dict[datetime, int]]:
    """Invalid events per reason per time bucket: {reason: {bucket start: count}}."""
    counts: dict[str, Counter[datetime]] = defaultdict(Counter)
    for e in events:
        counts[str(e[c.REASON])][bucket_start(e[c.KAFKA_TIMESTAMP], size)] += 1
    return {reason: dict(sorted(per.items())) for reason, per in sorted(counts.items())}


def invalid_by_reason(counts: dict[str, dict[datetime, int]], size: timedelta) -> go.Figure:
    """Stacked bars of invalid events per reason over time (by Kafka timestamp)."""
    # Each bar starts at its bucket's start and spans the bucket (plotly would centre it on x otherwise).
    width_ms = size.total_seconds() * 1000 * 0.9
    fig = go.Figure([go.Bar(x=list(per), y=list(per.values()), name=reason, width=width_ms, offset=0)
                     for reason, per in counts.items()])
    width = f"{labels.minutes(size)} buckets" if size < timedelta(hours=1) else "1-h buckets"
    return _layout(fig, f"Kafka timestamp (UTC), {width}", "invalid events", barmode="stack")


def bot_seconds_bars(counts: dict[datetime, tuple[int, int]], size: timedelta) -> go.Figure:
    """Bars of bot seconds per time bucket (by event time), each bar spanning its bucket."""
    width_ms = size.total_seconds() * 1000 * 0.9
    fig = go.Figure(go.Bar(
        x=list(counts), y=[n for n, _ in counts.values()], customdata=[events for _, events in counts.values()],
        name="bot seconds", width=width_ms, offset=0,
        hovertemplate="%{x|%Y-%m-%d %H:%M} UTC<br>%{y:,} bot seconds, %{customdata:,} events<extra></extra>",
    ))
    width = f"{labels.minutes(size)} buckets" if size < timedelta(hours=1) else "1-h buckets"
    return _layout(fig, f"event time (UTC), {width}", "bot seconds")
