"""The alerts program against the real pipeline: producer -> Kafka -> the job (Spark) -> MongoDB.

One producer and one job serve the module (starting Spark is the expensive part); each test runs its own alerts
program with only the rules it is about, and looks only at those.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from alerts.offsets import read_kafka
from alerts.readings import read_job
from alerts.snapshot import lag_records
from devstack.paths import ROOT
from storage import contract as c
from tests.alerts.jobrecords import start_alerts
from tests.alerts.receivers import HttpReceiver
from tests.job.jobrun import job_args, kill_hard, poll, start_job

pytestmark = [pytest.mark.integration, pytest.mark.slow]


class Pipeline:
    """A producer sending half invalid events, and the job reading them; `restart_job` after `kill_job`."""

    def __init__(self, bootstrap: str, mongo_uri: str, db, workdir: Path) -> None:
        self.bootstrap, self.mongo_uri, self.db, self.workdir = bootstrap, mongo_uri, db, workdir
        self.topic = f"alerts-{uuid.uuid4().hex[:8]}"
        self.job_log = workdir / "job.log"
        self._job_args = [*job_args(bootstrap, self.topic, mongo_uri, db.name, workdir / "checkpoints"),
                          "--trigger", "processing-time:1s"]
        with (workdir / "producer.log").open("w") as out:
            self.producer = subprocess.Popen(
                [sys.executable, "-m", "producer", "--bootstrap-servers", bootstrap, "--topic", self.topic,
                 "--rate", "20", "--invalid-ratio", "0.5", "--late-ratio", "0", "--duplicate-ratio", "0",
                 "--users", "50", "--pages", "20", "--seed", "14"], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
        self.job = start_job(self._job_args, self.job_log)

    def both_queries_batching(self) -> bool:
        """True once each of the job's queries has stored a batch, the newest less than 15 s ago."""
        job = read_job(self.db, datetime.now(UTC), timedelta(minutes=2))
        fresh = job.newest_batch_at is not None and (datetime.now(UTC) - job.newest_batch_at).total_seconds() < 15
        return fresh and {p.query for p in job.positions} == set(c.QUERIES)

    def wait_until_batching(self, timeout: float = 300) -> None:
        # Either query alone makes the newest batch fresh; the tests need both to have stored where they stand.
        poll(self.both_queries_batching, timeout, f"fresh batches of both queries (log: {self.job_log})", 1)

    def kill_job(self) -> None:
        kill_hard(self.job)

    def restart_job(self) -> None:
        self.job = start_job(self._job_args, self.job_log)

    def stop(self) -> None:
        kill_hard(self.job)
        self.producer.send_signal(signal.SIGTERM)
        try:
            self.producer.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.producer.kill()


@pytest.fixture(scope="module")
def pipeline(kafka_bootstrap, mongo_uri, mongo_client, tmp_path_factory):
    db = mongo_client[f"alerts_{uuid.uuid4().hex[:8]}"]
    running = Pipeline(kafka_bootstrap, mongo_uri, db, tmp_path_factory.mktemp("pipeline"))
    try:
        running.wait_until_batching()
        yield running
    finally:
        running.stop()
        mongo_client.drop_database(db.name)


def alerts_args(p: Pipeline, hook: HttpReceiver, *rules: str) -> list[str]:
    return ["--mongo-uri", p.mongo_uri, "--database", p.db.name, "--bootstrap-servers", p.bootstrap,
            "--interval", "1s", "--webhook-url", hook.url(), "--rules", ",".join(rules)]


def episodes(p: Pipeline, rule: str) -> list[dict]:
    return sorted(p.db[c.ALERTS].find({c.RULE: rule}), key=lambda d: d[c.STARTED_AT])


def kinds(hook: HttpReceiver, rule: str, since: int = 0) -> list[str]:
    """The kinds of notification the webhook received for `rule`, from its `since`-th post on."""
    return [b["alert"]["kind"] for b in list(hook.bodies)[since:] if b["alert"]["rule"] == rule]


def test_the_job_records_its_kafka_position_and_lag_is_measured_against_kafka(pipeline):
    # Given the running job; When lag is read as the alerts program reads it
    job = read_job(pipeline.db, datetime.now(UTC), timedelta(minutes=2))
    kafka = read_kafka(pipeline.bootstrap, job.positions, timedelta(seconds=10))
    # Then both queries stored where they stand in each partition of the topic, and their lag is known
    assert {p.query for p in job.positions} == set(c.QUERIES)
    for position in job.positions:
        assert position.end_offsets is not None and {t for t, _ in position.end_offsets} == {pipeline.topic}
        assert lag_records(position, kafka) is not None and lag_records(position, kafka) >= 0
    stored = pipeline.db[c.PIPELINE_METRICS].find_one({c.QUERY: c.AGGREGATES_QUERY, c.INPUT_ROWS: {"$gt": 0}})
    assert stored[c.OFFSETS_BEHIND_LATEST] >= 0 and len(stored[c.END_OFFSETS]) == 3


def test_the_invalid_rate_alert_fires_once_when_the_producer_injects_half_invalid_events(pipeline, tmp_path):
    # Given the producer sending 50% invalid events, and an invalid-rate rule at 30% over the last minute
    log = tmp_path / "alerts.log"
    with HttpReceiver() as hook:
        program = start_alerts([*alerts_args(pipeline, hook, "invalid_rate"), "--invalid-rate-threshold", "30%",
                                "--invalid-rate-for", "3s", "--invalid-rate-window", "1m"], log)
        try:
            # When the alerts program watches
            poll(lambda: kinds(hook, "invalid_rate") == ["firing"], 120, f"the invalid-rate alert (log: {log})")
            # Then it fires, saying what it measured
            fired = next(b for b in hook.bodies if b["alert"]["rule"] == "invalid_rate")
            assert 0.3 < fired["alert"]["value"] < 0.7
            assert "records read in the last 1 min were invalid" in fired["text"]
            # And it does not notify again while it keeps firing (five more rounds)
            checks = episodes(pipeline, "invalid_rate")[-1][c.CHECKS]
            poll(lambda: episodes(pipeline, "invalid_rate")[-1][c.CHECKS] >= checks + 5, 60, "five more rounds")
            assert kinds(hook, "invalid_rate") == ["firing"]
            assert episodes(pipeline, "invalid_rate")[-1][c.STATE] == "firing"
        finally:
            program.terminate()
            assert program.wait(timeout=30) == 0


def test_the_staleness_alerts_fire_when_the_job_is_killed_and_resolve_when_it_runs_again(pipeline, tmp_path):
    # Given a running job and an alerts program whose staleness rules fire after 20 s without a batch or a write
    pipeline.wait_until_batching()
    log = tmp_path / "alerts.log"
    rules = ("batch_age", "window_age")
    with HttpReceiver() as hook:
        program = start_alerts([*alerts_args(pipeline, hook, *rules),
                                "--batch-age-threshold", "20s", "--batch-age-for", "2s",
                                "--window-age-threshold", "20s", "--window-age-for", "2s"], log)
        try:
            # When the job's process is killed (kill -9: no goodbye)
            pipeline.wait_until_batching()
            before = len(hook.bodies)  # a slow machine may have had a stale moment before: only what follows counts
            pipeline.kill_job()
            # Then both staleness alerts fire
            for rule in rules:
                poll(lambda r=rule: kinds(hook, r, before) == ["firing"], 120, f"{rule} to fire (log: {log})")
            # When the job runs again from its checkpoint
            pipeline.restart_job()
            # Then both resolve, and each was notified once firing and once resolved
            for rule in rules:
                poll(lambda r=rule: kinds(hook, r, before) == ["firing", "resolved"], 300,
                     f"{rule} to resolve (alerts log: {log}, job log: {pipeline.job_log})", 1)
                episode = episodes(pipeline, rule)[-1]
                assert [t[c.STATE] for t in episode[c.TRANSITIONS]] == ["pending", "firing", "resolved"]
        finally:
            program.terminate()
            assert program.wait(timeout=30) == 0
