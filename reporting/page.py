"""The Streamlit page: sidebar controls, KPI row, activity charts and pipeline health, with raw tables."""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import streamlit as st
from pymongo import MongoClient
from pymongo.errors import OperationFailure, PyMongoError
from streamlit_autorefresh import st_autorefresh

from clickpulse.cli import short_error
from reporting import alerts_view, bots, charts, controls, health, kpis, labels, tables
from reporting.controls import TOP_N, Controls
from reporting.loading import (
    BOT_LIMIT,
    DEAD_LETTER_LIMIT,
    DEAD_LETTER_SPAN,
    INVALID_LIMIT,
    POINT_HOURS,
    POINT_LIMIT,
    SAMPLE_LIMIT,
    PageData,
    PageRequest,
    load_page_data,
)
from reporting.settings import (
    REFRESH_SECONDS,
    TIME_RANGES,
    ReportSettings,
    SettingsError,
    main_parser,
    settings_from,
    wants_help,
)
from storage import contract as c
from storage.client import connect, mask_uri

APP_PATH = Path(__file__).resolve().parent / "app.py"
# Page data is shared between reruns and sessions for this long: the fastest auto-refresh.
DATA_BUCKET_SECONDS = REFRESH_SECONDS[0]


@st.cache_resource(show_spinner=False)
def mongo_client(uri: str, timeout_ms: int) -> MongoClient:
    """One client per URI for the whole Streamlit process (pymongo clients are thread-safe and pool)."""
    return connect(uri, "clickpulse-report", timeout_ms)


@st.cache_data(ttl=60, max_entries=64, show_spinner="Reading MongoDB…")
def page_data(uri: str, database: str, timeout_ms: int, range_seconds: int, top_pages: int, top_users: int,
              as_of: datetime) -> PageData:
    """Every query of one render, cached on all its inputs (`as_of` is rounded, so reruns share results)."""
    request = PageRequest(timedelta(seconds=range_seconds), top_pages, top_users)
    return load_page_data(mongo_client(uri, timeout_ms)[database], request, as_of)


def script_args(argv: Sequence[str]) -> list[str]:
    """The report's own arguments: those after `--` in `streamlit run reporting/app.py -- ...`.

    `streamlit run` sets argv to [script path, args...]; anywhere else (AppTest under pytest) argv belongs to
    another program, so there are none.
    """
    if argv and Path(argv[0]).resolve() == APP_PATH:
        return list(argv[1:])
    return []


URL_CHOICES = "choices_from_url"  # session state: the choices this browser session started from


def sidebar(settings: ReportSettings) -> Controls:
    """The sidebar's widgets; each new browser session (a reload) starts from the choices in the page's URL, and the
    choices that differ from the defaults are written back there."""
    defaults = Controls(refresh_seconds=settings.refresh_seconds)
    if URL_CHOICES not in st.session_state:
        st.session_state[URL_CHOICES] = controls.from_query(st.query_params.to_dict(), defaults)
    start: Controls = st.session_state[URL_CHOICES]
    with st.sidebar:
        st.header("Controls")
        auto = st.toggle("Auto-refresh", value=start.auto_refresh, key="auto_refresh")
        low, high = REFRESH_SECONDS
        every = st.slider("Refresh every (seconds)", low, high, start.refresh_seconds, key="refresh_seconds",
                          disabled=not auto)
        names = list(TIME_RANGES)
        time_range = st.selectbox("Time range", names, index=names.index(start.time_range_label), key="time_range",
                                  help="How far back the line and bar charts reach, from the latest complete window "
                                       "(or from now, for invalid events of live data).")
        top_pages = st.slider("Top pages", *TOP_N, start.top_pages, key="top_pages")
        top_users = st.slider("Top users", *TOP_N, start.top_users, key="top_users")
        st.divider()
        st.caption(f"Reading database `{settings.database}` at `{mask_uri(settings.mongo_uri)}`.")
        st.caption("Set with CLICKPULSE_MONGO_URI / CLICKPULSE_DATABASE, or "
                   "`streamlit run reporting/app.py -- --mongo-uri ... --database ...`.")
    chosen = Controls(auto, every, time_range, top_pages, top_users)
    wanted = controls.with_choices(st.query_params.to_dict(), chosen, defaults)
    if st.query_params.to_dict() != wanted:
        st.query_params.from_dict(wanted)
    return chosen


def _utc_row(doc: dict[str, Any], *fields: str) -> dict[str, Any]:
    """A raw-table row: the chosen fields, datetimes written as labelled UTC text."""
    return {(f"{f} (UTC)" if isinstance(doc.get(f), datetime) else f):
            (labels.utc(doc[f]) if isinstance(doc.get(f), datetime) else doc.get(f)) for f in fields}


def kpi_row(data: PageData) -> None:
    newest = labels.as_utc(data.health.newest[c.TIMESTAMP]) if data.health.newest else None
    row = [
        replace(kpis.active_users(data.latest_active, data.previous_active),
                note=kpis.without_bots_note(data.without_bots, data.latest_active)),
        kpis.page_views(data.pages),
        kpis.sessions_per_user(data.sessions),
        kpis.events_per_second(data.health.points, newest),
        kpis.invalid_rate(data.health.points, newest),
        kpis.consumer_lag(health.lag(data.health.newest_aggregates_batch, data.lag_history), data.now),
    ]
    for col, k in zip(st.columns(len(row)), row, strict=True):
        with col:
            st.metric(k.label, k.value, delta=k.delta, help=k.help, delta_description=k.delta_description,
                      border=True)
            st.caption(k.window)
            if k.note:
                st.caption(k.note)


def activity(data: PageData) -> None:
    st.subheader("Site activity")
    left, right = st.columns(2)
    with left:
        title = "**Active users over time**"
        if data.latest_active and data.layout:
            title += (f" — {labels.minutes(data.layout.active_users.size)} windows starting in the "
                      f"{labels.age(data.request.time_range)} up to {labels.utc(data.latest_active[c.WINDOW_START])}")
        st.markdown(title)
        if data.series:
            st.plotly_chart(charts.active_users_line(data.series), key="chart_active_users")
            with st.expander("Raw data: active users per window"):
                tables.show([_utc_row(d, c.WINDOW_START, c.WINDOW_END, c.ACTIVE_USERS_COUNT) for d in data.series],
                            "active-users")
        else:
            st.caption("No active-user windows in this range yet.")
    with right:
        n = data.request.top_pages
        pages = data.pages.pages if data.pages else []
        title = f"**Top {n} pages** — {kpis.window_text(data.pages.window if data.pages else None)}"
        st.markdown(title)
        if pages:
            st.plotly_chart(charts.top_pages_bar(pages, n), key="chart_top_pages")
            shown = "" if len(pages) == data.pages.distinct_pages else f" (the top {len(pages):,} of " \
                f"{data.pages.distinct_pages:,})"
            with st.expander(f"Raw data: page views in the window{shown}"):
                tables.show([_utc_row(p, c.PAGE_URL, c.VIEWS) for p in pages], "page-views")
        else:
            st.caption("No page views yet.")

    left, right = st.columns(2)
    with left:
        window = data.sessions.window if data.sessions else None
        histogram = data.sessions.histogram if data.sessions else []
        st.markdown(f"**Sessions per user** — {kpis.window_text(window)}")
        if histogram:
            st.plotly_chart(charts.sessions_histogram(histogram), key="chart_sessions")
            with st.expander("Raw data: users by session count"):
                tables.show([{"sessions": k, "users": n} for k, n in histogram], "sessions-per-user")
        else:
            st.caption("No user sessions yet.")
    with right:
        st.markdown(f"**Top {data.request.top_users} users** by events, then sessions — "
                    f"{kpis.window_text(window)}")
        tables.show([_utc_row(u, c.USER_ID, c.EVENTS, c.SESSIONS) for u in (data.sessions.top_users if data.sessions else [])],
                    "top-users", "No user sessions yet.")


def bot_traffic(data: PageData) -> None:
    """Bot seconds over the range, the top bot users, and the KPI window's figures without its bot users."""
    st.subheader("Bot traffic")
    st.caption("A bot second is one user's second of event time in which the job counted more valid events from that "
               "user than its `--bot-max-events-per-second` (the job records them in `bot_activity`).")
    start, end = data.bot_range or (data.now, data.now)
    seconds = data.bot_seconds
    cut = f" (the newest {BOT_LIMIT:,} only)" if len(seconds) >= BOT_LIMIT else ""
    left, right = st.columns(2)
    with left:
        st.markdown(f"**Bot seconds** — event times {labels.utc(start)} to {labels.utc(end)}{cut}")
        if seconds:
            size = charts.bucket_size(end - start)
            counts = bots.per_bucket(seconds, size)
            st.plotly_chart(charts.bot_seconds_bars(counts, size), key="chart_bot_seconds")
            with st.expander("Raw data: bot seconds and their events per bucket"):
                tables.show([{"bucket start (UTC)": labels.utc(t), "bot seconds": n, "events": events}
                             for t, (n, events) in counts.items()], "bot-seconds")
        else:
            st.caption("No bot activity in this range.")
    with right:
        n = data.request.top_users
        st.markdown(f"**Top {n} bot users** by bot seconds, then events — the same range{cut}")
        tables.show([{c.USER_ID: u[c.USER_ID], "bot seconds": u["seconds"], "events": u[c.EVENTS],
                      "first second (UTC)": labels.utc(u["first"]), "last second (UTC)": labels.utc(u["last"])}
                     for u in bots.top_bots(seconds, n)], "top-bot-users", "No bot users in this range.")
    without = data.without_bots
    if without is None:
        return
    window = kpis.window_text(without.window)
    if without.bot_users == 0:
        st.caption(f"No user was a bot in the user-sessions {window}: its active users and sessions per user above "
                   "need no figures without bots.")
        return
    cols = st.columns(3)
    figures = [
        ("Active users without bots", f"{without.users:,}", f"user-sessions {window}"),
        ("Sessions per user without bots",
         "—" if without.sessions_per_user is None else f"{without.sessions_per_user:.2f}", f"user-sessions {window}"),
        ("Bot users left out", f"{without.bot_users:,}", "users who were a bot in at least one second of the window"),
    ]
    for col, (label, value, note) in zip(cols, figures, strict=True):
        with col:
            st.metric(label, value, border=True)
            st.caption(note)
    st.caption("Page views are not shown without bots: page-view panes do not keep users, so they cannot be "
               "recomputed exactly.")


_ALERT = {health.Level.OK: st.success, health.Level.AMBER: st.warning, health.Level.RED: st.error,
          health.Level.UNKNOWN: st.info}


def pipeline_health(data: PageData) -> None:
    st.subheader("Pipeline health")
    newest_write = data.newest_active.get(c.UPDATED_AT) if data.newest_active else None
    newest_batch = data.health.newest[c.TIMESTAMP] if data.health.newest else None
    points = data.health.points
    left, right = st.columns(2)
    for col, f in ((left, health.freshness("aggregate", newest_write, data.now, health.AGGREGATE_RULE)),
                   (right, health.freshness("batch", newest_batch, data.now, health.BATCH_RULE))):
        with col:
            _ALERT[f.level](f.message)

    spark_ui(data)
    fig = health.batch_figures(data.health.newest_aggregates_batch, points)
    span = max(data.request.time_range, timedelta(minutes=15))
    cols = st.columns(6)
    figures = [
        ("Input rows/s", "—" if fig.at is None else f"{fig.input_rows_per_second:,.1f}", "newest aggregates batch"),
        ("Processed rows/s", "—" if fig.at is None else f"{fig.processed_rows_per_second:,.1f}",
         "newest aggregates batch"),
        ("Batch duration", "—" if fig.at is None else f"{fig.batch_duration_ms:,} ms", "newest aggregates batch"),
        ("Watermark (UTC)", "—" if fig.watermark is None else f"{labels.as_utc(fig.watermark):%H:%M:%S}",
         labels.utc(fig.watermark) if fig.watermark else "no watermark yet"),
        ("State rows", "—" if fig.at is None else f"{fig.state_rows:,}", "newest aggregates batch"),
        ("Late rows dropped", f"{fig.dropped_late:,}",
         f"{fig.batches:,} batches in the last {labels.age(span)} (+{fig.duplicates_dropped:,} duplicates)"),
    ]
    for col, (label, value, note) in zip(cols, figures, strict=True):
        with col:
            st.metric(label, value, border=True)
            st.caption(note)

    left, right = st.columns(2)
    with left:
        cut = (f" (the newest {POINT_HOURS} hours only)" if len(points) >= POINT_LIMIT else "")
        st.markdown(f"**Rows/s in and processed** — aggregates batches per minute, the last {labels.age(span)} "
                    f"to {labels.utc(newest_batch)}{cut}")
        if points:
            st.plotly_chart(charts.throughput_lines(points), key="chart_throughput")
            with st.expander("Raw data: rows/s per minute of aggregates batches"):
                tables.show([_utc_row(b, c.MINUTE, c.BATCHES, c.INPUT_ROWS, c.INPUT_ROWS_PER_SECOND,
                                      c.PROCESSED_ROWS_PER_SECOND) for b in points
                             if b.get(c.QUERY) == c.AGGREGATES_QUERY], "throughput")
        else:
            st.caption("No batches yet.")
    with right:
        st.markdown("**Batch duration** — mean per minute, per streaming query")
        if points:
            st.plotly_chart(charts.batch_duration_lines(points), key="chart_batch_duration")
            with st.expander(f"Raw data: {len(points):,} minutes of both queries' batches (newest first)"):
                tables.show([_utc_row(b, c.QUERY, c.MINUTE, c.BATCHES, c.BATCH_ID, c.TIMESTAMP, c.INPUT_ROWS,
                                      c.BATCH_DURATION_MS, c.MAX_BATCH_DURATION_MS, c.WATERMARK, c.STATE_ROWS,
                                      c.DROPPED_BY_WATERMARK, c.DUPLICATES_DROPPED, c.VALID_ROWS, c.INVALID_ROWS)
                             for b in points], "batches")
        else:
            st.caption("No batches yet.")

    start, end = data.invalid_range or (data.now, data.now)
    cut = f" (the newest {INVALID_LIMIT:,} only)" if len(data.invalid_events) >= INVALID_LIMIT else ""
    st.markdown(f"**Invalid events by reason** — Kafka timestamps {labels.utc(start)} to {labels.utc(end)}{cut}")
    if data.invalid_events:
        size = charts.bucket_size(end - start)
        counts = charts.invalid_counts(data.invalid_events, size)
        st.plotly_chart(charts.invalid_by_reason(counts, size), key="chart_invalid")
        with st.expander("Raw data: invalid events per reason and bucket"):
            tables.show([{"reason": r, "bucket start (UTC)": labels.utc(t), "events": n}
                         for r, per in counts.items() for t, n in per.items()], "invalid-by-reason")
    else:
        st.caption("No invalid events in this range.")

    st.markdown(f"**Latest invalid events** — the newest {SAMPLE_LIMIT} of the range above")
    tables.show([{"Kafka timestamp (UTC)": labels.utc(e.get(c.KAFKA_TIMESTAMP)), "reason": e.get(c.REASON),
                  "detail": e.get(c.DETAIL), "raw (excerpt)": e.get(c.RAW),
                  "where": f"{e.get(c.TOPIC)}-{e.get(c.PARTITION)}@{e.get(c.OFFSET)}"} for e in data.invalid_samples],
                "latest-invalid-events", "No invalid events in this range.")
    dead_letters(data)


def spark_ui(data: PageData) -> None:
    """A link to the Spark UI of the job that started last, when it reported one."""
    if data.spark_ui is None:
        return
    left, right = st.columns([1, 5], vertical_alignment="center")
    with left:
        st.link_button("Spark UI", data.spark_ui.url, icon=":material/open_in_new:")
    with right:
        st.caption(f"`{data.spark_ui.url}`, as the job that started {labels.utc(data.spark_ui.reported_at)} "
                   "reported it (it answers while that job runs, on the job's host: from another machine, use "
                   "an SSH tunnel).")


def dead_letters(data: PageData) -> None:
    """The documents the store refused (the rest of their batches was written), newest first."""
    span = f"{DEAD_LETTER_SPAN.days} days"
    letters = data.dead_letters
    if not letters:
        st.caption(f"No dead letters in the last {span}: the store took every document the job wrote.")
        return
    more = "+" if len(letters) >= DEAD_LETTER_LIMIT else ""
    st.warning(f"{len(letters)}{more} document{'s' if len(letters) != 1 else ''} refused by the store in the last "
               f"{span}: what they held is missing from this report (set aside in `dead_letters`).")
    shown = f" (the newest {DEAD_LETTER_LIMIT})" if more else ""
    with st.expander(f"Dead letters of the last {span}{shown}"):
        tables.show([{"failed at (UTC)": labels.utc(d.get(c.FAILED_AT)), "collection": d.get(c.TARGET_COLLECTION),
                      "document id": d.get(c.DOCUMENT_ID), "field": d.get(c.FIELD), "error": d.get(c.ERROR)}
                     for d in letters], "dead-letters")


def refresh_interval(chosen_seconds: int, load_seconds: float) -> int:
    """The chosen interval, or twice the load time when loading is slower (so a refresh never cuts a load short)."""
    return max(chosen_seconds, math.ceil(2 * load_seconds))


def auto_refresh(chosen_seconds: int, load_seconds: float) -> None:
    # A cache hit loads in microseconds; remember the last real load so the interval does not flip back and forth.
    if load_seconds >= 0.05:
        st.session_state["last_load_seconds"] = load_seconds
    interval = refresh_interval(chosen_seconds, st.session_state.get("last_load_seconds", 0.0))
    if interval > chosen_seconds:
        st.sidebar.caption(f"Refreshing every {interval} s: loading the data took "
                           f"{st.session_state['last_load_seconds']:.1f} s.")
    st_autorefresh(interval=interval * 1000, key="autorefresh")


def unreachable(settings: ReportSettings, e: PyMongoError) -> None:
    where = f"{mask_uri(settings.mongo_uri)} (database `{settings.database}`)"
    if isinstance(e, OperationFailure):
        st.error(f"MongoDB at {where} refused the report's query: {short_error(e)}")
        return
    st.error(f"Cannot reach MongoDB at {where} within {settings.timeout_ms} ms: {short_error(e)}. "
             "Start the local stack with `make stack-up` (or everything with `make demo`), or point the report "
             "at another server with CLICKPULSE_MONGO_URI or `-- --mongo-uri`.")


def no_data(settings: ReportSettings) -> None:
    st.info(f"No data yet in database `{settings.database}` at {mask_uri(settings.mongo_uri)}: the streaming job "
            "has written no window, batch or invalid event. Run `make demo` to start everything, or start the "
            "producer (`python -m producer`) and the job (`make job`) against this database; this page refreshes "
            "by itself.")


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> None:
    """Render the page (Streamlit runs this on every rerun)."""
    st.set_page_config(page_title="clickpulse report", page_icon="📈", layout="wide")
    args = script_args(sys.argv if argv is None else argv)
    env = os.environ if env is None else env
    st.title("clickpulse — site activity and pipeline health")
    if wants_help(args):
        st.code(main_parser().format_help())
        return
    try:
        settings = settings_from(args, env)
    except SettingsError as e:
        st.error(f"Bad report setting: {e}")
        return
    controls = sidebar(settings)

    now = datetime.now(UTC)
    as_of = now - timedelta(seconds=now.timestamp() % DATA_BUCKET_SECONDS)
    started = time.perf_counter()
    data: PageData | None = None
    try:
        data = page_data(settings.mongo_uri, settings.database, settings.timeout_ms,
                         int(controls.time_range.total_seconds()), controls.top_pages, controls.top_users, as_of)
    except PyMongoError as e:
        unreachable(settings, e)
    if controls.auto_refresh:
        auto_refresh(controls.refresh_seconds, time.perf_counter() - started)
    if data is None:
        return
    st.caption(f"All times are UTC. Data as of {labels.utc(as_of)}; database `{settings.database}`.")
    alerts_view.show(mongo_client(settings.mongo_uri, settings.timeout_ms)[settings.database], settings.mongo_uri, as_of)
    if data.empty:
        no_data(settings)
        return
    kpi_row(data)
    activity(data)
    bot_traffic(data)
    pipeline_health(data)
