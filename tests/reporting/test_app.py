"""The page itself, run by Streamlit's AppTest against the real Mongo-wire server."""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime, timedelta

import pytest
from streamlit.testing.v1 import AppTest

from reporting.page import APP_PATH
from storage import contract as c
from storage.layout import write_layout
from tests.reporting.documents import DEFAULT_LAYOUT, MIN, T0, active, batch, bot_second, dead_letter, insert

pytestmark = pytest.mark.integration


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def chart(at: AppTest, key: str) -> list[dict]:
    """The traces a plotly chart was given (AppTest sees it as an element with the figure's JSON spec)."""
    found = [e for e in at.get("plotly_chart") if e.proto.id.endswith(key)]
    assert found, f"no chart {key}"
    return json.loads(found[0].proto.spec)["data"]


def texts(elements) -> list[str]:
    return [e.value for e in elements]


def test_kpis_show_the_seeded_values(report, known_db):
    # Given the known site; When the report renders
    at = report(known_db.name)
    # Then the KPI row shows the figures derived by hand in seed_known_site
    assert not at.exception
    got = metrics(at)
    assert got["Active users"] == "42"
    assert got["Page views"] == "56"
    assert got["Sessions per active user"] == "1.60"
    assert got["Events/s ingested"] == "100.0"
    assert got["Invalid-event rate"] == "2.0%"
    assert next(m for m in at.metric if m.label == "Active users").delta == "+2"


def test_each_kpi_says_which_window_it_covers(report, known_db):
    at = report(known_db.name)
    captions = texts(at.caption)
    assert "5-min window 2026-01-15 10:10–10:15 UTC" in captions  # active users and sessions per user
    assert "15-min window 2026-01-15 10:00–10:15 UTC" in captions  # page views, ending with them
    assert "batches from 10:15 to 2026-01-15 10:15:30 UTC" in captions
    assert "batches from 10:01 to 2026-01-15 10:15:30 UTC" in captions
    assert any(t.startswith("All times are UTC.") for t in captions)


def test_charts_receive_the_seeded_data(report, known_db):
    at = report(known_db.name)
    line = chart(at, "chart_active_users")[0]
    assert line["y"] == [30, 31, 33, 35, 34, 36, 37, 38, 39, 40, 42]
    assert line["x"][0] == "2026-01-15T10:00:00+00:00"
    bars = chart(at, "chart_top_pages")[0]
    assert (bars["y"], bars["x"]) == (["/checkout", "/cart", "/products", "/home"], [1, 5, 20, 30])
    hist = chart(at, "chart_sessions")[0]
    assert (hist["x"], hist["y"]) == ([1, 2, 3], [3, 1, 1])
    # One point for minute 10:15: 400 rows that took 2 s + 2 s to arrive and 251 + 252 ms to process
    throughput = chart(at, "chart_throughput")
    assert [t["y"] for t in throughput] == [[100.0], [pytest.approx(400 / 0.503)]]
    invalid = {t["name"]: t["y"] for t in chart(at, "chart_invalid")}
    assert invalid == {"malformed_json": [2], "missing_field": [1]}


def test_top_users_table_ranks_the_latest_window_by_events(report, known_db):
    at = report(known_db.name)
    table = next(df.value for df in at.dataframe if "user_id" in df.value.columns)
    assert list(table["user_id"]) == ["u4", "u2", "u1", "u3", "u5"]
    assert list(table["events"]) == [20, 9, 5, 4, 1]


def test_latest_invalid_events_show_reason_detail_and_raw_excerpt(report, known_db):
    at = report(known_db.name)
    table = next(df.value for df in at.dataframe if "detail" in df.value.columns)
    first = table.iloc[0]
    assert (first["reason"], first["detail"]) == ("missing_field", "missing: page_url")
    assert first["raw (excerpt)"].startswith('{"user_id": "u1"')
    assert first["Kafka timestamp (UTC)"] == "2026-01-15 10:14:00 UTC"


def test_the_top_pages_slider_sets_how_many_bars_are_drawn(report, known_db):
    at = report(known_db.name)
    at.slider(key="top_pages").set_value(3).run()
    assert chart(at, "chart_top_pages")[0]["y"] == ["/cart", "/products", "/home"]


def test_the_time_range_bounds_the_active_users_line(report, known_db):
    # Given windows back to 09:30 besides the known 10:00..10:10 ones
    insert(known_db, c.ACTIVE_USERS, [active(T0 - i * MIN, 1) for i in range(1, 31)])
    at = report(known_db.name)
    assert len(chart(at, "chart_active_users")[0]["y"]) == 41  # 1 hour: starts 09:30..10:10
    # When the range is cut to 15 minutes
    at.selectbox(key="time_range").set_value("15 minutes").run()
    # Then the line keeps the windows ending in the 15 minutes before 10:15 (starts 09:56..10:10)
    assert chart(at, "chart_active_users")[0]["x"][0] == "2026-01-15T09:56:00+00:00"
    assert len(chart(at, "chart_active_users")[0]["y"]) == 15


def test_every_chart_has_its_raw_table_in_an_expander(report, known_db):
    at = report(known_db.name)
    raw = [e.label for e in at.expander if e.label.startswith("Raw data")]
    assert len(raw) == len(at.get("plotly_chart")) == 6
    assert all(len(e.dataframe) == 1 for e in at.expander)


def test_the_sidebar_offers_auto_refresh_every_2_to_60_seconds(report, known_db):
    at = report(known_db.name)
    interval = at.sidebar.slider(key="refresh_seconds")
    assert (interval.min, interval.max, interval.value) == (2, 60, 10)
    at.sidebar.toggle(key="auto_refresh").set_value(False).run()
    assert at.sidebar.slider(key="refresh_seconds").disabled


def test_an_old_pipeline_is_flagged_red(report, known_db):
    at = report(known_db.name)
    errors = texts(at.error)
    assert any(t.startswith("Newest aggregate written") and "is the job or the producer running?" in t for t in errors)
    assert any(t.startswith("Newest batch written") for t in errors)


def test_a_live_pipeline_is_green(report, mongo_db):
    # Given a window written 5 s ago and a batch 5 s ago
    now = datetime.now(UTC)
    start = now.replace(second=0, microsecond=0) - 6 * MIN
    insert(mongo_db, c.ACTIVE_USERS, [active(start, 3, written=now - timedelta(seconds=5))])
    insert(mongo_db, c.PIPELINE_METRICS, [batch(c.AGGREGATES_QUERY, now - timedelta(seconds=5), 1, 10, 10.0)])
    at = report(mongo_db.name)
    assert [t.split(" written")[0] for t in texts(at.success)] == ["Newest aggregate", "Newest batch"]
    assert metrics(at)["Active users"] == "3"


def test_an_empty_database_says_what_to_run(report, mongo_db):
    at = report(mongo_db.name)
    assert not at.exception and not at.metric
    (info,) = texts(at.info)
    assert "No data yet" in info and f"`{mongo_db.name}`" in info and "make demo" in info


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_an_unreachable_server_is_named_with_its_password_masked(monkeypatch):
    # Given a URI with a password, on a port nobody listens on
    uri = f"mongodb://report:s3cret@127.0.0.1:{free_port()}/"
    monkeypatch.setattr("sys.argv", [str(APP_PATH), "--mongo-uri", uri, "--timeout-ms", "500"])
    # When the report renders
    at = AppTest.from_file(APP_PATH, default_timeout=60).run()
    # Then it says which server it tried, without the password and without a traceback
    assert not at.exception
    (error,) = texts(at.error)
    assert error.startswith(f"Cannot reach MongoDB at mongodb://report:***@127.0.0.1:{uri.rsplit(':', 1)[1]}")
    assert "s3cret" not in error and "make stack-up" in error


def test_arguments_after_the_double_dash_choose_the_server_and_database(monkeypatch, mongo_uri, known_db):
    # Given the environment points elsewhere, but `-- --mongo-uri ... --database ...` at the known site
    monkeypatch.setenv("CLICKPULSE_DATABASE", "elsewhere")
    monkeypatch.setattr("sys.argv", [str(APP_PATH), "--mongo-uri", mongo_uri, "--database", known_db.name])
    at = AppTest.from_file(APP_PATH, default_timeout=60).run()
    assert metrics(at)["Active users"] == "42"


def test_a_bad_argument_is_shown_on_the_page(monkeypatch):
    monkeypatch.setattr("sys.argv", [str(APP_PATH), "--refresh-seconds", "99"])
    at = AppTest.from_file(APP_PATH, default_timeout=60).run()
    assert not at.exception
    assert texts(at.error) == ["Bad report setting: refresh interval must be 2..60 s, got 99"]


RAW_TABLES = ("active-users", "page-views", "sessions-per-user", "top-users", "throughput", "batches",
              "invalid-by-reason", "latest-invalid-events")


def test_every_raw_table_offers_its_rows_as_a_csv_download(report, known_db):
    # Given the known site; When the report renders
    at = report(known_db.name)
    # Then each table has its own download button (tables.csv_bytes writes the very frame shown)
    buttons = at.get("download_button")
    assert sorted(b.key for b in buttons) == sorted(f"csv_{name}" for name in RAW_TABLES)
    assert len(buttons) == len(at.dataframe)
    assert all(len(e.get("download_button")) == 1 for e in at.expander if e.label.startswith("Raw data"))
    assert all(b.proto.url.endswith(".csv") for b in buttons)


SIDEBAR = {"time_range": "6 hours", "top_pages": 5, "top_users": 7, "refresh_seconds": 30, "auto_refresh": False}


def choose(at: AppTest) -> AppTest:
    """Set every sidebar control away from its default, as a user would."""
    at.selectbox(key="time_range").set_value(SIDEBAR["time_range"]).run()
    at.slider(key="top_pages").set_value(SIDEBAR["top_pages"]).run()
    at.slider(key="top_users").set_value(SIDEBAR["top_users"]).run()
    at.slider(key="refresh_seconds").set_value(SIDEBAR["refresh_seconds"]).run()
    return at.toggle(key="auto_refresh").set_value(SIDEBAR["auto_refresh"]).run()


def sidebar_values(at: AppTest) -> dict[str, object]:
    return {"time_range": at.selectbox(key="time_range").value, "top_pages": at.slider(key="top_pages").value,
            "top_users": at.slider(key="top_users").value, "refresh_seconds": at.slider(key="refresh_seconds").value,
            "auto_refresh": at.toggle(key="auto_refresh").value}


def test_a_rerun_keeps_every_sidebar_choice(report, known_db):
    # Given a user's choices in the sidebar
    at = choose(report(known_db.name))
    # When the page reruns in the same browser session (what an auto-refresh does), twice
    at.run().run()
    # Then every choice is still there, and the figures follow them
    assert sidebar_values(at) == SIDEBAR
    assert len(chart(at, "chart_top_pages")[0]["y"]) == 4  # the known site has 4 pages, under the 5 chosen


def test_the_choices_go_into_the_url_and_a_reload_opens_with_them(report, known_db):
    # Given a user's choices in the sidebar
    at = choose(report(known_db.name))
    # Then the page's URL carries them
    url = dict(at.query_params)
    assert url == {"range": "6h", "pages": "5", "users": "7", "every": "30", "refresh": "off"}
    # When the page is loaded again from that URL (a reload is a new session)
    again = report(known_db.name, query=url)
    # Then it opens with the same choices
    assert sidebar_values(again) == SIDEBAR


def test_a_page_left_at_its_defaults_keeps_a_clean_url(report, known_db):
    at = report(known_db.name)
    at.run()
    assert dict(at.query_params) == {}


def lag_batches(db, lags: list[int]) -> None:
    """Aggregates batches one minute apart (the newest at 10:15), each with its Kafka lag, oldest first."""
    newest = T0 + 15 * MIN
    insert(db, c.PIPELINE_METRICS, [
        batch(c.AGGREGATES_QUERY, newest - (len(lags) - 1 - i) * MIN, 10 + i, 100, 50.0,
              **{c.OFFSETS_BEHIND_LATEST: n, c.MAX_OFFSETS_BEHIND_LATEST: n // 3})
        for i, n in enumerate(lags)])


def lag_kpi(at: AppTest) -> tuple[str, list[str]]:
    """The lag KPI's value and the captions under it."""
    (column,) = [col for col in at.columns if any(m.label == "Consumer lag" for m in col.metric)]
    return column.metric[0].value, [t.value for t in column.caption]


def test_the_lag_kpi_shows_the_newest_batchs_lag_and_when_it_was_measured(report, mongo_db):
    # Given aggregates batches whose newest (10:15) had 1,234 records to read, 411 of them in one partition
    lag_batches(mongo_db, [5000, 1234])
    # When the report renders
    value, captions = lag_kpi(report(mongo_db.name))
    # Then the KPI reads 1,234, measured by that batch, without a warning
    assert value == "1,234"
    assert captions[0].startswith("records behind Kafka at the newest aggregates batch, 2026-01-15 10:15:00 UTC (")
    assert captions[0].endswith("; at most 411 in a partition")
    assert len(captions) == 1


def test_a_lag_above_the_alerts_threshold_is_amber(report, mongo_db):
    # Given a newest batch 12,000 records behind, after batches that were not
    lag_batches(mongo_db, [100, 100, 100, 100, 100, 12_000])
    _, captions = lag_kpi(report(mongo_db.name))
    assert captions[1] == ":orange[above 10,000 records: the lag_records alert is pending]"


def test_a_lag_above_the_alerts_threshold_for_five_minutes_is_red(report, mongo_db):
    # Given the last batch of every minute from 10:10 to 10:15 over 10,000 records behind
    lag_batches(mongo_db, [20_000] * 6)
    _, captions = lag_kpi(report(mongo_db.name))
    assert captions[1] == ":red[above 10,000 records for 5 min: the lag_records alert fires]"


def test_a_batch_without_lag_figures_shows_no_lag(report, known_db):
    value, captions = lag_kpi(report(known_db.name))
    assert value == "—"
    assert captions == ["the newest aggregates batch (2026-01-15 10:15:30 UTC) reported none"]


def at_links(at: AppTest) -> list:
    return list(at.get("link_button"))


def test_the_spark_ui_the_job_reported_is_a_link(report, known_db):
    # Given a job that reported its Spark UI at start
    write_layout(known_db, DEFAULT_LAYOUT, spark_ui="http://127.0.0.1:4041")
    # When the report renders, Then the health section links to it
    (link,) = at_links(report(known_db.name))
    assert (link.proto.label, link.proto.url) == ("Spark UI", "http://127.0.0.1:4041")


def test_without_a_spark_ui_there_is_no_link(report, known_db):
    # Given a job whose UI is off (the known site's layout has none)
    assert at_links(report(known_db.name)) == []


def test_dead_letters_are_listed_newest_first_with_a_warning(report, known_db):
    # Given two documents the store refused in the last hour
    now = datetime.now(UTC)
    insert(known_db, c.DEAD_LETTERS, [
        dead_letter(c.USER_SESSIONS, "2026-01-15T10:10:00Z|07", now - 30 * MIN, field="events.u%00|s1"),
        dead_letter(c.INVALID_EVENTS, "clickstream-0-9", now - 5 * MIN),
    ])
    # When the report renders
    at = report(known_db.name)
    # Then a warning counts them and a table lists them with collection, document, field and error
    assert any(t.startswith("2 documents refused by the store in the last 7 days") for t in texts(at.warning))
    table = next(df.value for df in at.dataframe if "document id" in df.value.columns)
    assert list(table["collection"]) == [c.INVALID_EVENTS, c.USER_SESSIONS]
    assert list(table["field"])[1] == "events.u%00|s1"
    assert "SQLSTATE 22P05" in table["error"][0]
    assert "csv_dead-letters" in [b.key for b in at.get("download_button")]


def test_without_dead_letters_the_report_says_the_store_took_everything(report, known_db):
    at = report(known_db.name)
    assert "No dead letters in the last 7 days: the store took every document the job wrote." in texts(at.caption)


S = timedelta(seconds=1)


@pytest.fixture
def site_with_bots(known_db):
    """The known site, where u4 was a bot at 10:12:03 (inside the 10:10-10:15 user-sessions window), bot9 at 10:02:00
    and 10:02:01, and bot9 again at 08:00 (outside the hour before 10:15)."""
    insert(known_db, c.BOT_ACTIVITY, [
        bot_second("u4", T0 + 12 * MIN + 3 * S, 25), bot_second("bot9", T0 + 2 * MIN, 40),
        bot_second("bot9", T0 + 2 * MIN + S, 35), bot_second("bot9", T0 - 2 * 60 * MIN, 99),
    ])
    return known_db


def test_bot_seconds_of_the_range_are_charted_by_minute(report, site_with_bots):
    at = report(site_with_bots.name)
    (bars,) = chart(at, "chart_bot_seconds")
    assert (bars["x"], bars["y"]) == (["2026-01-15T10:02:00+00:00", "2026-01-15T10:12:00+00:00"], [2, 1])
    assert bars["customdata"] == [75, 25]


def test_the_top_bot_users_of_the_range_are_listed(report, site_with_bots):
    at = report(site_with_bots.name)
    table = next(df.value for df in at.dataframe if "bot seconds" in df.value.columns and "user_id" in df.value.columns)
    assert list(table["user_id"]) == ["bot9", "u4"]
    assert list(table["bot seconds"]) == [2, 1] and list(table["events"]) == [75, 25]
    assert list(table["first second (UTC)"]) == ["2026-01-15 10:02:00 UTC", "2026-01-15 10:12:03 UTC"]


def test_the_kpi_windows_users_are_also_shown_without_their_bot_users(report, site_with_bots):
    # Given u4 (3 sessions) was a bot in the user-sessions window of u1..u5 (sessions 1, 1, 2, 3, 1)
    at = report(site_with_bots.name)
    got = metrics(at)
    # Then four users are left, with (1 + 1 + 2 + 1) / 4 sessions each, and the KPI notes it for its own window
    assert (got["Active users without bots"], got["Sessions per user without bots"], got["Bot users left out"]) == (
        "4", "1.25", "1")
    assert "without its 1 bot user: 4" in texts(at.caption)
    # And page views are not offered without bots
    assert not any("Page views without bots" in label for label in got)


def test_without_bot_activity_the_bot_section_says_so(report, known_db):
    at = report(known_db.name)
    captions = texts(at.caption)
    assert "No bot activity in this range." in captions and "No bot users in this range." in captions
    assert "No user was a bot in the user-sessions 5-min window 2026-01-15 10:10–10:15 UTC: its active users and " \
           "sessions per user above need no figures without bots." in captions
    assert "Active users without bots" not in metrics(at)
