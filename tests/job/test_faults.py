"""The running job rides out outages of its servers, and stores exactly what the reference computes afterwards.

One job runs through the module's faults in turn (FerretDB stopped for 30 s, PostgreSQL stopped and restarted, the
broker restarted), each followed by new traffic it must catch up with exactly; then a final drain. Every outage is
real, on a stack of this module's own (never the session's).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pymongo import MongoClient

from devstack.stack import LocalStack
from storage import contract as c
from storage.client import connect
from streaming_job.main import PY4J_INTERRUPTED
from tests.job.dataset import clicks, create_topic, produce, read_back
from tests.job.jobrun import job_args, kill_hard, mismatches, poll, run_job, start_job, stored
from tests.reference import expected

pytestmark = [pytest.mark.integration, pytest.mark.slow]

START = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=1)
SPAN = timedelta(minutes=5)  # every chunk of traffic in the same 5 minutes: nothing is ever behind the watermark


@dataclass
class Running:
    """The module's stack, topic and database, and the job running on them."""

    stack: LocalStack
    topic: str
    client: MongoClient
    database: str
    checkpoint: Path
    log: Path
    job: subprocess.Popen | None = None

    @property
    def db(self):
        return self.client[self.database]

    def args(self, *extra: str) -> list[str]:
        return job_args(self.stack.bootstrap_servers, self.topic, self.stack.mongo_uri, self.database, self.checkpoint,
                        *extra)

    def send(self, seed: int) -> dict[str, dict[str, dict]]:
        """Produce a chunk of traffic (every kind of record); return what the store must hold for the whole topic."""
        produce(self.stack.bootstrap_servers, self.topic,
                clicks(seed=seed, n=200, start=START, span=SPAN, users=15, prefix=f"s{seed}-"))
        return expected(read_back(self.stack.bootstrap_servers, self.topic))

    def catches_up(self, want: dict[str, dict[str, dict]], timeout: float = 300) -> None:
        """Poll until every stored document equals the reference (the job is continuous: no drain needed)."""
        try:
            poll(lambda: not mismatches(stored(self.db), want), timeout, "the job to store exactly the reference")
        except AssertionError:
            raise AssertionError(f"{mismatches(stored(self.db), want)[:6]}\n{self.tail()}") from None

    def log_lines(self, text: str) -> list[str]:
        return [line for line in self.log.read_text(errors="replace").splitlines() if text in line]

    def tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:]

    def alive(self) -> bool:
        return self.job is not None and self.job.poll() is None


@pytest.fixture(scope="module")
def own_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalStack, MongoClient]]:
    """A stack of the module's own (its tests stop its servers), and a client of its Mongo-wire server."""
    stack = LocalStack.on_free_ports(tmp_path_factory.mktemp("faults-stack"))
    client = None
    try:
        stack.up()
        client = connect(stack.mongo_uri, "clickpulse-tests")
        yield stack, client
    finally:
        if client is not None:
            client.close()
        stack.down()
        if stack.mongo.postgres is not None:
            stack.mongo.postgres.remove()


@pytest.fixture(scope="module")
def running(own_stack: tuple[LocalStack, MongoClient], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """A job reading a topic of the module's stack with a 1 s processing-time trigger, caught up with its traffic."""
    stack, client = own_stack
    base = tmp_path_factory.mktemp("faults-job")
    topic = create_topic(stack.bootstrap_servers, "faults", partitions=3)
    run = Running(stack, topic, client, "faults", base / "checkpoints", base / "job.log")
    try:
        run.job = start_job(run.args("--trigger", "processing-time:1s"), run.log)
        run.catches_up(run.send(seed=1))
        yield run
    finally:
        if run.job is not None and run.job.poll() is None:
            kill_hard(run.job)


def sink_outages(run: Running) -> list[str]:
    return run.log_lines(f"clickpulse.sink: MongoDB at {run.stack.mongo_uri} is failing")


def test_the_job_rides_out_ferretdb_stopped_for_30_seconds(running: Running):
    before = len(sink_outages(running))
    # Given the job runs, When FerretDB stops (PostgreSQL keeps running) and traffic arrives meanwhile
    stopped = time.monotonic()
    running.stack.mongo.process.stop()
    try:
        want = running.send(seed=2)
        # Then the job's writes wait, saying so
        poll(lambda: len(sink_outages(running)) > before, timeout=120, what="the sink to report the outage")
        # And the outage lasts 30 seconds
        time.sleep(max(0.0, 30 - (time.monotonic() - stopped)))
        assert running.alive(), running.tail()
    finally:
        running.stack.mongo.start()
    # And when FerretDB is back the job, which never exited, stores exactly the reference
    running.catches_up(want)
    assert running.alive()
    assert running.log_lines("clickpulse.sink: MongoDB at") and running.log_lines("answers again")


def test_the_job_rides_out_postgresql_stopped_and_restarted(running: Running):
    if running.stack.mongo.postgres is None:
        pytest.skip("mongod stores its own data: no PostgreSQL to stop")
    before = len(sink_outages(running))
    # Given the job runs, When FerretDB's PostgreSQL stops and traffic arrives meanwhile
    running.stack.mongo.postgres.stop()
    try:
        want = running.send(seed=3)
        poll(lambda: len(sink_outages(running)) > before, timeout=120, what="the sink to report the outage")
        assert running.alive(), running.tail()
    finally:
        # And PostgreSQL is started again (as `devstack up` does)
        running.stack.mongo.start()
    # Then the job stores exactly the reference, and never exited
    running.catches_up(want)
    assert running.alive()


def test_the_job_rides_out_a_broker_restart(running: Running):
    # Given the job is reading new traffic, When the broker restarts under it
    running.send(seed=4)
    running.stack.kafka.stop()
    running.stack.kafka.start()
    # And more traffic arrives after the restart
    want = running.send(seed=5)
    # Then the job stores exactly the reference, and never exited
    running.catches_up(want)
    assert running.alive(), running.tail()


def test_after_the_faults_a_final_drain_leaves_exactly_the_reference(running: Running):
    # Given the job that ran through the faults is stopped the way an operator stops it (SIGTERM to the job)
    assert running.job is not None
    os.kill(running.job.pid, signal.SIGTERM)
    assert running.job.wait(timeout=120) == 0, running.tail()
    # (and its log says it stopped on a signal, without a traceback for the interrupted Java call)
    said = running.log.read_text()
    assert "stopping (signal received)" in said and PY4J_INTERRUPTED not in said
    # When a drain reads whatever it had not yet
    run_job(running.args("--trigger", "available-now"), running.log)
    # Then every document equals the reference over the whole topic, and nothing was dead-lettered
    assert mismatches(stored(running.db), expected(read_back(running.stack.bootstrap_servers, running.topic))) == []
    assert running.db[c.DEAD_LETTERS].count_documents({}) == 0


def test_past_sink_retry_for_the_job_exits_1_and_says_why_in_its_last_line(own_stack, tmp_path: Path):
    # Given a job that may wait 10 s for MongoDB, on a topic of its own, that has stored its first batch
    stack, client = own_stack
    topic = create_topic(stack.bootstrap_servers, "giveup", partitions=1)
    log = tmp_path / "job.log"
    args = job_args(stack.bootstrap_servers, topic, stack.mongo_uri, "giveup", tmp_path / "checkpoints",
                    "--trigger", "processing-time:1s", "--sink-retry-for", "10s")
    produce(stack.bootstrap_servers, topic, clicks(seed=6, n=20, start=START, span=SPAN))
    job = start_job(args, log)
    try:
        metrics = client["giveup"][c.PIPELINE_METRICS]
        poll(lambda: metrics.count_documents({c.INPUT_ROWS: {"$gt": 0}}) > 0, timeout=240, what=f"a batch (log: {log})")
        # When FerretDB stops for good and traffic arrives
        stack.mongo.process.stop()
        produce(stack.bootstrap_servers, topic, clicks(seed=7, n=20, start=START, span=SPAN, prefix="g"))
        # Then the job exits 1
        code = job.wait(timeout=300)
    finally:
        if job.poll() is None:
            kill_hard(job)
        stack.mongo.start()
        client.drop_database("giveup")
    assert code == 1, log.read_text()[-3000:]
    # And its last line says why, in one line: no Java stack, no Python traceback
    last = log.read_text().rstrip().splitlines()[-1]
    assert " ERROR clickpulse.job: " in last, last
    assert f"MongoDB at {stack.mongo_uri} still failing after" in last
    assert last.endswith("(see --sink-retry-for)")
