"""The KPI row, computed from query results: pure functions, each KPI saying which window it covers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from reporting import health, labels
from reporting.bots import WithoutBots
from storage import contract as c
from storage.reads import LATEST_RULE, PageViews, Sessions

Doc = dict[str, Any]

RATE_SPAN = timedelta(minutes=1)
INVALID_SPAN = timedelta(minutes=15)
LAG_LABEL = "Consumer lag"

@dataclass(frozen=True)
class Kpi:
    """One figure of the KPI row: its value (number and text), the window it covers, and how it is computed."""

    label: str
    value: str
    window: str
    help: str
    number: float | None = None
    delta: str | None = None
    delta_description: str | None = None
    note: str = ""  # shown under the window (markdown, e.g. a coloured level)


def window_text(w: Doc | None) -> str:
    if w is None:
        return "no window yet"
    size = labels.as_utc(w[c.WINDOW_END]) - labels.as_utc(w[c.WINDOW_START])
    return f"{labels.minutes(size)} window {labels.window(w[c.WINDOW_START], w[c.WINDOW_END])}"


def active_users(latest: Doc | None, previous: Doc | None) -> Kpi:
    """Distinct users in the latest complete window, with the change from the window stored before it."""
    help_text = f"Distinct users with at least one valid event in the window. {LATEST_RULE}"
    if latest is None:
        return Kpi("Active users", "—", window_text(None), help_text)
    n = int(latest[c.ACTIVE_USERS_COUNT])
    if previous is None:
        return Kpi("Active users", labels.count(n), window_text(latest), help_text, float(n))
    delta = f"{n - int(previous[c.ACTIVE_USERS_COUNT]):+,d}"
    since = f"vs {labels.as_utc(previous[c.WINDOW_START]):%H:%M} UTC start"
    return Kpi("Active users", labels.count(n), window_text(latest), help_text, float(n), delta, since)


def page_views(views: PageViews | None) -> Kpi:
    """Page views summed over every page of the page-views window ending with the latest complete window."""
    help_text = ("Sum of page_view events over all pages in the page-views window that ends with the latest "
                 f"complete active-users window. {LATEST_RULE}")
    if views is None:
        return Kpi("Page views", "—", window_text(None), help_text)
    return Kpi("Page views", labels.count(views.total_views), window_text(views.window), help_text,
               float(views.total_views))


def sessions_per_user(sessions: Sessions | None) -> Kpi:
    """Average sessions per active user in the user-sessions window ending with the latest complete window."""
    help_text = f"Sum of sessions over the users of the window, divided by those users. {LATEST_RULE}"
    users = sum(n for _, n in sessions.histogram) if sessions else 0
    if sessions is None or users == 0:
        return Kpi("Sessions per active user", "—", window_text(sessions.window if sessions else None), help_text)
    avg = sum(k * n for k, n in sessions.histogram) / users
    return Kpi("Sessions per active user", f"{avg:.2f}", window_text(sessions.window), help_text, avg)


def _recent(points: Sequence[Doc], query: str, newest: datetime, span: timedelta) -> tuple[list[Doc], datetime]:
    """The query's per-minute points whose minute starts within `span` before its own newest batch, and that batch's
    time (`newest`, the newest batch of any query, when the query has none): each query is timed by its own batches.
    """
    mine = [p for p in points if p.get(c.QUERY) == query]
    until = max((labels.as_utc(p[c.TIMESTAMP]) for p in mine), default=labels.as_utc(newest))
    return [p for p in mine if until - span < labels.as_utc(p[c.MINUTE]) <= until], until


def _span_text(until: datetime, span: timedelta) -> str:
    first = c.minute_start(until - span) + timedelta(minutes=1)
    return f"batches from {labels.as_utc(first):%H:%M} to {labels.utc(until)}"


def events_per_second(points: Sequence[Doc], newest: datetime | None) -> Kpi:
    """Rows read from Kafka per second by the aggregates query in its batches of the newest minute."""
    help_text = ("Rows the aggregates query read from Kafka in its batches of the current minute (up to its newest "
                 "batch), divided by the time those batches covered (Spark's inputRowsPerSecond, time-weighted).")
    if newest is None:
        return Kpi("Events/s ingested", "—", "no batch yet", help_text)
    recent, until = _recent(points, c.AGGREGATES_QUERY, newest, RATE_SPAN)
    recent = [p for p in recent if p.get(c.INPUT_ROWS_PER_SECOND) and p.get(c.INPUT_ROWS)]
    span = _span_text(until, RATE_SPAN)
    if not recent:
        return Kpi("Events/s ingested", "0", span, help_text, 0.0)
    rows = sum(int(p[c.INPUT_ROWS]) for p in recent)
    seconds = sum(int(p[c.INPUT_ROWS]) / float(p[c.INPUT_ROWS_PER_SECOND]) for p in recent)
    rate = rows / seconds
    return Kpi("Events/s ingested", f"{rate:,.1f}", span, help_text, rate)


def invalid_rate(points: Sequence[Doc], newest: datetime | None) -> Kpi:
    """Share of Kafka records the job rejected as invalid in the batches of the last 15 minutes."""
    help_text = ("Invalid records divided by all records read by the invalid_events query in its batches of the "
                 "last 15 minutes (whole minutes, up to its newest batch).")
    if newest is None:
        return Kpi("Invalid-event rate", "—", "no batch yet", help_text)
    recent, until = _recent(points, c.INVALID_EVENTS_QUERY, newest, INVALID_SPAN)
    recent = [p for p in recent if c.INVALID_ROWS in p]
    span = _span_text(until, INVALID_SPAN)
    total = sum(int(p.get(c.INPUT_ROWS) or 0) for p in recent)
    if total == 0:
        return Kpi("Invalid-event rate", "—", span, help_text)
    rate = sum(int(p[c.INVALID_ROWS] or 0) for p in recent) / total
    return Kpi("Invalid-event rate", f"{rate:.1%}", span, help_text, rate)


def consumer_lag(lag: health.Lag, now: datetime, rule: health.LagRule = health.LAG_RULE) -> Kpi:
    """Records in Kafka the aggregates query had not read when its newest batch ran, and when that was."""
    limit = f"{rule.records:,} records"
    help_text = ("Records in Kafka past the offsets the aggregates query had read, summed over partitions, when its "
                 f"newest batch ran (Spark's offsetsBehindLatest). Amber above {limit}, red when above it in every "
                 f"batch for {labels.age(rule.lasting)}: where the alerts program's lag_records alert is pending and "
                 "fires. A stopped job writes no batch, so this figure stops too: see the batch age (the alerts "
                 "program measures lag against Kafka's latest offsets).")
    if lag.records is None:
        when = "no batch yet" if lag.at is None else f"the newest aggregates batch ({labels.utc(lag.at)}) reported none"
        return Kpi(LAG_LABEL, "—", when, help_text)
    measured = f"records behind Kafka at the newest aggregates batch, {labels.utc(lag.at)} ({labels.age(now - lag.at)} ago)"
    if lag.max_partition is not None:
        measured += f"; at most {lag.max_partition:,} in a partition"
    note = {health.Level.AMBER: f":orange[above {limit}: the lag_records alert is pending]",
            health.Level.RED: f":red[above {limit} for {labels.age(lag.lasted or rule.lasting)}: the lag_records "
                              "alert fires]"}.get(lag.level, "")
    return Kpi(LAG_LABEL, f"{lag.records:,}", measured, help_text, float(lag.records), note=note)


def without_bots_note(without: WithoutBots | None, latest: Doc | None) -> str:
    """"without its 2 bot users: 40" under the active-users KPI, when its window is the user-sessions window whose
    users were counted without bots (only there is the figure exact); empty otherwise."""
    if without is None or latest is None or without.bot_users == 0:
        return ""
    same = all(labels.as_utc(without.window[k]) == labels.as_utc(latest[k]) for k in (c.WINDOW_START, c.WINDOW_END))
    if not same:
        return ""
    return f"without its {without.bot_users:,} bot user{'s' if without.bot_users != 1 else ''}: {without.users:,}"
