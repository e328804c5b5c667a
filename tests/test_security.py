"""Security of the running pipeline: a password never shows, and every server listens on loopback only.

One module-scoped run shares the expensive part: the real job (password in CLICKPULSE_MONGO_URI) past its first batch,
the report launcher (password in --mongo-uri-file) and the session's stack, all at once.
"""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from devstack.paths import ROOT
from devstack.stack import LocalStack, free_port
from storage import contract as c
from tests.job.dataset import clicks, create_topic, produce
from tests.job.jobrun import job_env, poll, start_job, stop_gracefully

pytestmark = [pytest.mark.integration, pytest.mark.slow]

HELP_COMMANDS = [
    ["producer", "--help"], ["streaming_job", "--help"], ["reporting", "--help"], ["devstack", "--help"],
    ["checkpoint_tools", "--help"], ["checkpoint_tools", "inspect", "--help"], ["checkpoint_tools", "clean", "--help"],
    ["checkpoint_tools", "reset", "--help"],
]


@dataclass(frozen=True)
class Pipeline:
    secret: str
    uri: str
    database: str
    job: subprocess.Popen
    job_log: Path
    report: subprocess.Popen
    report_log: Path
    report_port: int
    stack: LocalStack


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - our own report on loopback
            return response.status == 200
    except OSError:
        return False


@pytest.fixture(scope="module")
def pipeline(stack: LocalStack, mongo_client, tmp_path_factory) -> Iterator[Pipeline]:
    work = tmp_path_factory.mktemp("security")
    secret = f"pl4nted-{uuid.uuid4().hex[:12]}"
    # FerretDB hands PLAIN credentials to PostgreSQL, which trusts loopback: any password of the stack's user works.
    uri = f"mongodb://clickpulse:{secret}@127.0.0.1:{stack.mongo_port}/?authMechanism=PLAIN"
    database = f"sec_{uuid.uuid4().hex[:8]}"
    topic = create_topic(stack.bootstrap_servers, f"sec-{uuid.uuid4().hex[:8]}")
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=30)
    produce(stack.bootstrap_servers, topic, clicks(seed=11, n=300, start=start, span=timedelta(minutes=5)))
    uri_file = work / "mongo-uri"
    uri_file.write_text(uri + "\n")
    uri_file.chmod(0o600)
    job_log, report_log, port = work / "job.log", work / "report.log", free_port()
    job = start_job(["--bootstrap-servers", stack.bootstrap_servers, "--topic", topic, "--database", database,
                     "--checkpoint-dir", str(work / "checkpoints"), "--shuffle-partitions", "2",
                     "--trigger", "processing-time:2s"], job_log, extra_env={"CLICKPULSE_MONGO_URI": uri})
    with report_log.open("w") as out:
        report = subprocess.Popen([sys.executable, "-m", "reporting", "--port", str(port), "--mongo-uri-file",
                                   str(uri_file), "--database", database], cwd=ROOT, env=job_env(), stdout=out,
                                  stderr=subprocess.STDOUT, start_new_session=True)
    try:
        db = mongo_client[database]
        poll(lambda: job.poll() is None and db[c.PIPELINE_METRICS].count_documents({c.QUERY: c.AGGREGATES_QUERY}) > 0,
             timeout=300, what=f"the job's first batch (log: {job_log})", interval=1)
        poll(lambda: _answers(f"http://127.0.0.1:{port}/_stcore/health"), timeout=120,
             what=f"the report (log: {report_log})")
        yield Pipeline(secret, uri, database, job, job_log, report, report_log, port, stack)
    finally:
        stop_gracefully(report)
        stop_gracefully(job)
        mongo_client.drop_database(database)


def _help(command: list[str], uri: str) -> str:
    result = subprocess.run([sys.executable, "-m", *command], cwd=ROOT, capture_output=True, text=True, timeout=120,
                            check=False, env={**os.environ, "CLICKPULSE_MONGO_URI": uri})
    assert result.returncode == 0, result.stderr
    return result.stdout + result.stderr


def _page_text(uri: str, database: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Everything the report page shows (Streamlit AppTest: every element of the rendered tree)."""
    from streamlit.testing.v1 import AppTest

    from reporting.page import APP_PATH
    from reporting.settings import main_parser

    monkeypatch.setenv("CLICKPULSE_MONGO_URI", uri)
    monkeypatch.setenv("CLICKPULSE_DATABASE", database)
    at = AppTest.from_file(APP_PATH, default_timeout=60).run()
    assert not at.exception

    def walk(node) -> Iterator[object]:
        yield node
        for child in getattr(node, "children", {}).values():
            yield from walk(child)

    return "\n".join(str(getattr(n, "proto", "")) for n in walk(at._tree)) + main_parser().format_help()


def test_a_planted_password_shows_in_no_help_log_command_line_or_page(pipeline: Pipeline, monkeypatch):
    # Given a password in CLICKPULSE_MONGO_URI (job) and in a --mongo-uri-file (report), with both running
    secret = pipeline.secret
    # When every program's --help is printed with the password in the environment
    helps = {" ".join(cmd): _help(cmd, pipeline.uri) for cmd in HELP_COMMANDS}
    # Then none shows it, and the URI options say how to keep it out of `ps`
    assert [cmd for cmd, text in helps.items() if secret in text] == []
    assert "--mongo-uri-file" in helps["streaming_job --help"] and "--mongo-uri-file" in helps["reporting --help"]
    # And the job's and the report's logs do not hold it, though the job logs where it writes (masked)
    job_log, report_log = pipeline.job_log.read_text(), pipeline.report_log.read_text()
    assert secret not in job_log and secret not in report_log
    assert f"mongodb://clickpulse:***@127.0.0.1:{pipeline.stack.mongo_port}" in job_log
    # And no process of theirs has it on its command line (what `ps` shows)
    for proc in (pipeline.job, pipeline.report):
        assert all(secret not in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
                   for pid in _session_pids(proc.pid))
    # And the report page, which shows where it reads, shows the URI masked
    page = _page_text(pipeline.uri, pipeline.database, monkeypatch)
    assert secret not in page
    assert "clickpulse:***@" in page


def _session_pids(session: int) -> set[int]:
    """Every live process in a session (a process started with start_new_session=True, and its children)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # Fields after the command name (in parentheses): state, ppid, pgrp, session, ...
            if int(stat.rsplit(")", 1)[1].split()[3]) == session:
                found.add(int(entry.name))
    return found


def _listeners() -> list[tuple[str, int, int]]:
    """(address, port, pid) of every listening TCP socket on the machine (`ss -ltnp`)."""
    out = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=True, timeout=30).stdout
    rows = []
    for line in out.splitlines():
        fields = line.split()
        address, _, port = fields[3].rpartition(":")
        for pid in (int(p.split("=")[1]) for p in line.split(",") if p.startswith("pid=")):
            rows.append((address.strip("[]"), int(port), pid))
    return rows


def _loopback(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%")[0])
    mapped = getattr(ip, "ipv4_mapped", None)
    return ip.is_loopback or bool(mapped and mapped.is_loopback)


def test_the_job_the_stack_and_the_report_listen_on_loopback_only(pipeline: Pipeline):
    # Given the job, the report and the stack's servers running (each in a session of its own)
    stack = pipeline.stack
    servers = [stack.kafka.process.pid(), stack.mongo.process.pid()]
    if stack.mongo.postgres is not None:
        servers.append(stack.mongo.postgres.process.pid())
    ours = {pid for session in (pipeline.job.pid, pipeline.report.pid, *servers) if session
            for pid in _session_pids(session)}
    # When the machine's listening sockets are listed
    mine = [(address, port) for address, port, pid in _listeners() if pid in ours]
    # Then every one of ours is on loopback
    assert mine, "found none of our listeners: the test proves nothing"
    assert [(a, p) for a, p in mine if not _loopback(a)] == []
    # And the ones users reach are among them: Kafka, Mongo, the report and the Spark UI the job logged
    ports = {p for _, p in mine}
    assert {stack.kafka_port, stack.mongo_port, pipeline.report_port} <= ports
    ui = next(line for line in pipeline.job_log.read_text().splitlines() if " UI http://" in line)
    assert ui.split(" UI http://")[1].startswith("127.0.0.1:")
    assert int(ui.rsplit(":", 1)[1]) in ports
    # And the UI's kill buttons are off (Spark's own REST API reports the session's properties)
    base = f"http://{ui.split(' UI http://')[1].strip()}/api/v1/applications"
    (app,) = _json(base)
    properties = dict(_json(f"{base}/{app['id']}/environment")["sparkProperties"])
    assert properties.get("spark.ui.killEnabled") == "false"


def _json(url: str):
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - the job's UI on loopback
        return json.loads(response.read())
