"""The command line without a broker: dry runs, replays, stopping, bad arguments, and an unreachable broker."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime

import pytest

from devstack.stack import free_port
from producer.cli import main_parser, run_cli
from producer.generator import generate
from producer.settings import ProducerSettings

START = "2026-11-23T10:00:00Z"


def dry_run(capsysbinary, *args: str) -> tuple[list[bytes], dict]:
    assert run_cli(["--dry-run", "--progress-interval", "0.2s", *args]) == 0
    captured = capsysbinary.readouterr()
    summary = json.loads(captured.err.decode().strip().splitlines()[-1])
    return captured.out.splitlines(), summary


def test_a_dry_run_prints_exactly_the_generated_events_and_summarises_on_stderr(capsysbinary):
    # Given a pinned seed and start time, When the CLI runs dry, Then stdout holds the very events generate() makes.
    lines, summary = dry_run(capsysbinary, "--count", "3000", "--rate", "max", "--seed", "3", "--start-time", START,
                             "--invalid-ratio", "0.05", "--late-ratio", "0.02", "--duplicate-ratio", "0.01")
    expected = ProducerSettings(seed=3, count=3000, rate=0, start_time=datetime(2026, 11, 23, 10, tzinfo=UTC),
                                invalid_ratio=0.05, late_ratio=0.02, duplicate_ratio=0.01)
    assert lines == [e.value for e in generate(expected)]
    assert summary["generated"] == summary["sent"] == 3000 and summary["failed"] == 0
    assert summary["injected"] == {"malformed_json": 30, "missing_field": 30, "wrong_type": 30,
                                   "unknown_event_type": 30, "future_timestamp": 30, "late": 60, "duplicate": 30}
    assert summary["valid"] == 3000 - 150 - 60 - 30
    assert summary["stopped_by"] == "count"


def test_a_dry_run_with_bots_counts_them_and_their_events_in_the_summary(capsysbinary):
    # Given 2% bots among 500 users, bursting 25 events at a time
    lines, summary = dry_run(capsysbinary, "--count", "5000", "--rate", "max", "--seed", "5", "--start-time", START,
                             "--users", "500", "--bot-ratio", "0.02", "--bot-burst", "25")
    expected = list(generate(ProducerSettings(
        seed=5, count=5000, rate=0, start_time=datetime(2026, 11, 23, 10, tzinfo=UTC), users=500, bot_ratio=0.02,
        bot_burst=25, invalid_ratio=0.02, late_ratio=0.01, duplicate_ratio=0.01)))  # the CLI's fault defaults
    assert lines == [e.value for e in expected]
    # Then the summary counts the bots that burst and their events, apart from the other valid events
    assert 0 < summary["bots"] == len({e.key for e in expected if e.kind == "bot"}) <= 10
    assert summary["bot_events"] == sum(e.kind == "bot" for e in expected) > 25
    assert summary["valid"] + summary["bot_events"] + sum(summary["injected"].values()) == 5000


def test_two_dry_runs_with_the_same_seed_are_byte_identical(capsysbinary):
    args = ("--count", "2000", "--rate", "max", "--seed", "77", "--start-time", START)
    assert dry_run(capsysbinary, *args)[0] == dry_run(capsysbinary, *args)[0]


def test_a_paced_dry_run_keeps_to_its_rate(capsysbinary):
    # Given 400 events at 2000 ev/s, Then the run takes about 0.2 s (the schedule), not as fast as possible.
    lines, summary = dry_run(capsysbinary, "--count", "400", "--rate", "2000", "--seed", "1")
    assert len(lines) == 400
    assert summary["target_rate"] == 2000.0
    assert summary["achieved_rate"] < 2000 * 1.2


def test_a_max_rate_run_stops_after_its_duration(capsysbinary):
    lines, summary = dry_run(capsysbinary, "--rate", "max", "--duration", "300ms", "--seed", "1")
    assert summary["stopped_by"] == "duration"
    assert len(lines) == summary["generated"] > 0
    assert summary["elapsed_seconds"] < 5


def test_bursts_send_the_requested_count(capsysbinary):
    lines, summary = dry_run(capsysbinary, "--burst", "5000:20000", "--batch-size", "50", "--pause-seconds", "10ms",
                             "--count", "300", "--seed", "2")
    assert len(lines) == 300 and summary["target_rate"] is None


def test_a_file_is_replayed_as_is(tmp_path, capsysbinary):
    # Given a JSON-lines file with a blank line and a malformed line, Then every non-blank line is sent unchanged.
    src = tmp_path / "events.jsonl"
    rows = [b'{"user_id":"usr_1","event_type":"click"}', b"{oops", b'{"user_id":"usr_2","x":1}']
    src.write_bytes(rows[0] + b"\n\n" + rows[1] + b"\r\n" + rows[2] + b"\n")
    lines, summary = dry_run(capsysbinary, "--from-file", str(src), "--rate", "max")
    assert lines == rows
    assert summary["replayed"] == 3 and summary["stopped_by"] == "end_of_file"
    assert sum(summary["injected"].values()) == 0


def test_a_stop_request_ends_an_endless_run_and_reports_everything_sent(capsysbinary):
    # Given an endless dry run in a thread, When stop is requested once output flows, Then it exits 0 and the
    # summary counts exactly the lines written.
    stop = threading.Event()
    result: list[int] = []
    worker = threading.Thread(target=lambda: result.append(run_cli(
        ["--dry-run", "--rate", "5000", "--seed", "4"], stop=stop)))
    worker.start()
    out, err = b"", b""
    deadline = time.monotonic() + 20
    try:
        while not out and time.monotonic() < deadline:  # poll until events flow
            captured = capsysbinary.readouterr()
            out, err = out + captured.out, err + captured.err
            time.sleep(0.05)
    finally:
        stop.set()
        worker.join(timeout=20)
    assert result == [0]
    captured = capsysbinary.readouterr()
    out, err = out + captured.out, err + captured.err
    summary = json.loads(err.decode().strip().splitlines()[-1])
    assert summary["stopped_by"] == "signal"
    assert summary["generated"] == len(out.splitlines()) > 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rate", "fast"], "bad rate 'fast'"),
        (["--count", "5", "--duration", "1s"], "not allowed with argument"),
        (["--late-by", "soon"], "bad duration 'soon'"),
        (["--invalid-kinds", "teleport"], "unknown invalid kind"),
        (["--bootstrap-servers", "nohostport"], "bad bootstrap servers"),
        (["--invalid-ratio", "0.8", "--late-ratio", "0.5"], "must not exceed 1"),
        (["--bot-ratio", "2"], "not a ratio between 0 and 1"),
        (["--bot-ratio", "0.1", "--bot-burst", "1"], "bot-burst must be at least 2"),
    ],
)
def test_a_bad_argument_exits_2_with_one_clear_line(capsys, args, message):
    with pytest.raises(SystemExit) as exited:
        code = run_cli([*args, "--dry-run"])
        raise SystemExit(code)
    assert exited.value.code == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_environment_variables_are_the_defaults(monkeypatch):
    monkeypatch.setenv("CLICKPULSE_BOOTSTRAP_SERVERS", "kafka.example:19092")
    monkeypatch.setenv("CLICKPULSE_TOPIC", "clicks-env")
    monkeypatch.setenv("CLICKPULSE_RATE", "max")
    monkeypatch.setenv("CLICKPULSE_LATE_BY", "90s")
    ns = main_parser().parse_args([])
    assert (ns.bootstrap_servers, ns.topic, ns.rate, ns.late_by) == ("kafka.example:19092", "clicks-env", 0.0, 90.0)
    assert main_parser().parse_args(["--topic", "flag-wins"]).topic == "flag-wins"


def test_an_unreachable_broker_is_retried_then_reported_in_one_line_with_exit_1(caplog):
    # Given nothing listening on the port, When the producer starts with a short connect timeout,
    # Then it exits 1 and says which broker it could not reach.
    port = free_port()
    code = run_cli(["--bootstrap-servers", f"127.0.0.1:{port}", "--connect-timeout", "1s", "--count", "5"])
    assert code == 1
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert any(f"Kafka at 127.0.0.1:{port} not reachable" in m for m in errors)
