"""The job's flags: sensible defaults, env fallbacks, and one clear line for a bad argument."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest

from clickpulse.cli import parse_duration
from streaming_job.main import PY4J_INTERRUPTED, StopNotError, main_parser, run_cli, settings_from_args
from streaming_job.settings import JobSettings, Trigger, WindowSpec


def settings(*args: str) -> JobSettings:
    return settings_from_args(main_parser().parse_args(list(args)))


def test_defaults_match_the_documented_contract(monkeypatch):
    for name in ("CLICKPULSE_BOOTSTRAP_SERVERS", "CLICKPULSE_TOPIC", "CLICKPULSE_MONGO_URI", "CLICKPULSE_DATABASE"):
        monkeypatch.delenv(name, raising=False)
    s = settings()
    assert (s.topic, s.database, s.starting_offsets, s.watermark) == ("clickstream", "clickpulse", "earliest",
                                                                      timedelta(minutes=10))
    assert s.trigger == Trigger(available_now=False, interval=timedelta(seconds=1))
    assert s.active_users_window == WindowSpec(timedelta(minutes=5), timedelta(minutes=1))
    assert s.page_views_window == WindowSpec(timedelta(minutes=15), timedelta(minutes=1))
    assert s.retention == timedelta(days=7)


def test_environment_fills_in_unset_flags(monkeypatch):
    monkeypatch.setenv("CLICKPULSE_BOOTSTRAP_SERVERS", "kafka:9092")
    monkeypatch.setenv("CLICKPULSE_TOPIC", "web")
    assert (settings().bootstrap_servers, settings().topic) == ("kafka:9092", "web")
    assert settings("--topic", "app").topic == "app"


def test_available_now_trigger_and_retention_none_are_understood():
    s = settings("--trigger", "available-now", "--retention", "none", "--max-offsets-per-trigger", "500")
    assert s.trigger.available_now and s.retention is None and s.max_offsets_per_trigger == 500


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--watermark", "soon"], "argument --watermark: bad duration 'soon'"),
        (["--trigger", "hourly"], "trigger must be 'available-now' or 'processing-time:<duration>'"),
        (["--starting-offsets", "middle"], "argument --starting-offsets: invalid choice"),
        (["--max-offsets-per-trigger", "0"], "must be positive, got 0"),
        (["--sessions-window", "5 minutes", "--sessions-slide", "2 minutes"], "must be a whole multiple of its slide"),
        (["--mongo-uri", "http://db"], "--mongo-uri must start with mongodb://"),
    ],
)
def test_a_bad_argument_exits_2_with_one_clear_line(capsys, args, message):
    with pytest.raises(SystemExit) as exit_:
        run_cli(args)
    err = capsys.readouterr().err
    assert exit_.value.code == 2
    assert message in err
    assert err.count("\n") == 1


def test_help_lists_every_flag(capsys):
    with pytest.raises(SystemExit) as exit_:
        run_cli(["--help"])
    out = capsys.readouterr().out
    assert exit_.value.code == 0
    for flag in ("--bootstrap-servers", "--topic", "--mongo-uri", "--database", "--checkpoint-dir", "--starting-offsets",
                 "--max-offsets-per-trigger", "--trigger", "--watermark"):
        assert flag in out


@pytest.mark.parametrize(("text", "value"), [("10 minutes", timedelta(minutes=10)), ("90s", timedelta(seconds=90)),
                                             ("1h", timedelta(hours=1)), ("7 days", timedelta(days=7)),
                                             ("500ms", timedelta(milliseconds=500))])
def test_durations_read_like_spark_intervals(text, value):
    assert parse_duration(text) == value


def test_each_query_gets_its_own_checkpoint_directory():
    s = settings("--checkpoint-dir", "s3a://bucket/ck/")
    assert s.query_checkpoint("aggregates") == "s3a://bucket/ck/aggregates"


def test_mongo_unreachable_exits_1_with_the_uri_masked(caplog):
    code = run_cli(["--mongo-uri", "mongodb://app:s3cret@127.0.0.1:1/", "--trigger", "available-now",
                    "--sink-retry-for", "0s"])
    assert code == 1
    assert "mongodb://app:***@127.0.0.1:1/" in caplog.text
    assert "s3cret" not in caplog.text


def test_writes_ride_out_five_minutes_of_outage_unless_told_otherwise(monkeypatch):
    monkeypatch.delenv("CLICKPULSE_SINK_RETRY_FOR", raising=False)
    assert settings().sink_retry_for == timedelta(minutes=5)
    monkeypatch.setenv("CLICKPULSE_SINK_RETRY_FOR", "30s")
    assert settings().sink_retry_for == timedelta(seconds=30)
    assert settings("--sink-retry-for", "1h").sink_retry_for == timedelta(hours=1)


def test_mongo_unreachable_at_start_is_waited_for_then_reported_in_one_line(caplog):
    # Given nothing listens at the URI, When the job may wait one second for it
    code = run_cli(["--mongo-uri", "mongodb://127.0.0.1:1/", "--trigger", "available-now", "--sink-retry-for", "1s"])
    # Then it said it was retrying, then gave up with one error line naming the server and the last error
    assert code == 1
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1
    assert errors[0].startswith("cannot prepare MongoDB: MongoDB at mongodb://127.0.0.1:1/ still failing after ")
    assert "Connection refused" in errors[0]
    assert any("retrying for up to 1 s" in r.getMessage() for r in caplog.records if r.levelname == "WARNING")


def test_the_interrupt_a_stop_signal_raises_is_not_logged_as_an_error():
    # Given py4j's record for a Java call that a stop signal interrupted, and any other error record
    def record(message: str) -> logging.LogRecord:
        return logging.LogRecord("root", logging.ERROR, __file__, 1, message, None, None)

    # Then the job's filter drops only py4j's
    assert not StopNotError().filter(record(PY4J_INTERRUPTED))
    assert StopNotError().filter(record("MongoDB at mongodb://db:27017/ unavailable"))
