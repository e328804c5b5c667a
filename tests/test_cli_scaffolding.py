"""One CLI scaffolding (clickpulse/cli.py): every program parses, fails, versions and logs the same way."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from clickpulse import __version__
from clickpulse.cli import JsonFormatter, env, non_negative_int, parse_duration, positive_int, seconds, short_error

ROOT = Path(__file__).resolve().parent.parent


def _parsers() -> dict[str, Callable]:
    from checkpoint_tools.cli import main_parser as checkpoints
    from devstack.__main__ import main_parser as devstack
    from producer.cli import main_parser as producer
    from reporting.__main__ import main_parser as report
    from streaming_job.main import main_parser as job

    return {"producer": producer, "job": job, "checkpoints": checkpoints, "report": report, "devstack": devstack}


@pytest.mark.parametrize(("text", "value"), [
    ("90", timedelta(seconds=90)), ("90s", timedelta(seconds=90)), ("2m", timedelta(minutes=2)),
    ("1.5h", timedelta(minutes=90)), ("500ms", timedelta(milliseconds=500)), (" 3 min ", timedelta(minutes=3)),
    ("10 minutes", timedelta(minutes=10)), ("1 minute", timedelta(minutes=1)), ("1d", timedelta(days=1)),
    ("7 days", timedelta(days=7)), ("1h", timedelta(hours=1)), ("30 seconds", timedelta(seconds=30)),
])
def test_one_duration_syntax_takes_every_form_either_old_parser_took(text, value):
    assert parse_duration(text) == value


@pytest.mark.parametrize("text", ["", "soon", "two minutes", "-5s", "5 fortnights", "1h30m"])
def test_a_bad_duration_is_refused_with_the_syntax_in_the_message(text):
    with pytest.raises(ValueError, match=r"bad duration .*: use a number with an optional unit"):
        parse_duration(text)


def test_seconds_are_the_same_durations_as_float_seconds():
    assert seconds("1.5h") == 5400.0 and seconds("90") == 90.0


def test_positive_means_above_zero_and_non_negative_allows_zero():
    import argparse

    assert positive_int("1") == 1 and non_negative_int("0") == 0
    with pytest.raises(argparse.ArgumentTypeError, match="must be positive, got 0"):
        positive_int("0")


def test_a_bad_value_from_the_environment_names_its_variable(monkeypatch):
    import argparse

    # Given a flag default read from a variable holding a bad value
    monkeypatch.setenv("CLICKPULSE_SOMETHING", "many")
    # When it is converted
    with pytest.raises(argparse.ArgumentTypeError) as e:
        positive_int(env("CLICKPULSE_SOMETHING", "1"))
    # Then the message says where the value came from
    assert str(e.value) == "not a whole number: 'many' (from env CLICKPULSE_SOMETHING)"


def test_values_from_the_environment_are_plain_text_after_parsing(monkeypatch):
    import pickle

    from streaming_job.main import main_parser

    # Given a setting taken from the environment (the job pickles its settings to Spark's executors)
    monkeypatch.setenv("CLICKPULSE_TOPIC", "web")
    # When the flags are parsed
    topic = main_parser().parse_args([]).topic
    # Then it is a plain str, which pickles and unpickles like any other
    assert type(topic) is str and pickle.loads(pickle.dumps(topic)) == "web"  # noqa: S301 - our own bytes
    assert type(pickle.loads(pickle.dumps(env("CLICKPULSE_TOPIC", "x")))) is str  # noqa: S301 - our own bytes


@pytest.mark.parametrize("program", ["producer", "job", "checkpoints", "report", "devstack"])
def test_every_program_prints_its_version(program, capsys):
    # When a program is asked for its version
    with pytest.raises(SystemExit) as exited:
        _parsers()[program]().parse_args(["--version"])
    # Then it prints its name and the package version, and exits 0
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip().endswith(f" {__version__}")


@pytest.mark.parametrize("program", ["producer", "job", "checkpoints", "report", "devstack"])
def test_every_program_takes_log_level_and_log_format(program):
    parser = _parsers()[program]()
    args = ["--log-level", "debug", "--log-format", "json"]
    ns = parser.parse_args(["inspect", *args] if program == "checkpoints" else
                           ["status", *args] if program == "devstack" else args)
    assert (ns.log_level, ns.log_format) == ("DEBUG", "json")


def test_a_json_log_line_has_the_text_lines_fields():
    # Given a record, as a program logs it
    record = logging.LogRecord("clickpulse.job", logging.WARNING, __file__, 1, "lag %d rows", (5,), None)
    # When it is formatted as JSON
    doc = json.loads(JsonFormatter().format(record))
    # Then it carries time, level, logger and message, like "%(asctime)s %(levelname)s %(name)s: %(message)s"
    assert set(doc) == {"time", "level", "logger", "message"}
    assert (doc["level"], doc["logger"], doc["message"]) == ("WARNING", "clickpulse.job", "lag 5 rows")


def test_driver_errors_are_trimmed_to_their_first_human_part():
    e = RuntimeError("localhost:1: [Errno 111] Connection refused (configured timeouts: socketTimeoutMS: 20000.0ms), "
                     "Timeout: 2.0s, Topology Description: <TopologyDescription ...>")
    assert short_error(e) == "localhost:1: [Errno 111] Connection refused"
    assert short_error(RuntimeError("first line\n\tat org.apache.spark.Something")) == "first line"
    assert short_error(KeyError()) == "KeyError"


def _stderr_lines(argv: list[str], tmp_path: Path) -> list[str]:
    result = subprocess.run([sys.executable, *argv], cwd=ROOT, capture_output=True, text=True, timeout=120,
                            check=False, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    return [line for line in result.stderr.splitlines() if line.strip()]


def test_log_format_json_lines_parse_as_json(tmp_path: Path):
    from tests.checkpoint_tools.synthetic import job_checkpoint, write_lock

    # Given a checkpoint whose job died (its stale lock makes the checkpoint CLI log a warning)
    ckpt = job_checkpoint(tmp_path / "ckpt")
    write_lock(ckpt, age=timedelta(hours=1))
    # When programs run with --log-format json
    producer = _stderr_lines(["-m", "producer", "--dry-run", "--count", "3", "--log-format", "json"], tmp_path)
    checkpoints = _stderr_lines(["-m", "checkpoint_tools", "clean", "--checkpoint-dir", str(ckpt), "--json",
                                 "--log-format", "json"], tmp_path)
    # Then every line they log is one JSON object
    assert producer and checkpoints
    for line in producer + checkpoints:
        assert isinstance(json.loads(line), dict), line
    # And a log line says what it said as text
    assert any(json.loads(line).get("message", "").startswith("producing to stdout") for line in producer)
    assert any("stale lock" in json.loads(line).get("message", "") for line in checkpoints)


def test_the_report_launcher_and_streamlit_log_json_lines_when_asked(tmp_path: Path):
    from devstack.stack import free_port
    from tests.job.jobrun import poll, stop_gracefully

    # Given the report launcher started with --log-format json (debug, so Streamlit's own loggers speak too)
    err = tmp_path / "report.err"
    with err.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "reporting", "--port", str(free_port()), "--log-format", "json",
                                 "--log-level", "debug"], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=out,
                                start_new_session=True)
    try:
        # When Streamlit has started and logged
        poll(lambda: '"logger": "streamlit' in err.read_text(), timeout=60, what="Streamlit's first log line")
    finally:
        stop_gracefully(proc, timeout=20)
    # Then every log line, ours and Streamlit's, is one JSON object
    lines = [line for line in err.read_text().splitlines() if line.strip()]
    loggers = {json.loads(line)["logger"].split(".")[0] for line in lines}
    assert {"reporting", "streamlit"} <= loggers


@pytest.mark.parametrize("program", sorted(_parsers()))
def test_help_never_shows_a_default_of_none_or_a_default_twice(program):
    # Given a program's --help text
    text = " ".join(_parsers()[program]().format_help().split())
    # Then a flag without a default says nothing of one, and no flag names its default twice
    assert "(default: None)" not in text
    assert not re.search(r"\(default[^)]*\) \(default", text)
