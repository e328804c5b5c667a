"""The job as operators run it: `make job` from a plain shell, spark-submit `--conf`, Prometheus, JSON logs.

One module-scoped run shares the expensive part: `make job` started from a shell with no venv activated (no
VIRTUAL_ENV, no .venv/bin on PATH), `--conf spark.sql.shuffle.partitions=3` and `--metrics prometheus` in JOB_ARGS,
and CLICKPULSE_LOG_FORMAT=json, against the session's stack, until its first batch.
"""

from __future__ import annotations

import json
import os
import subprocess
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from devstack.paths import ROOT
from devstack.stack import LocalStack
from storage import contract as c
from streaming_job.session import COMPILE_HUGE_METHODS
from tests.job.dataset import clicks, create_topic, produce
from tests.job.jobrun import poll, stop_gracefully

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# What an activated venv, the test run or a previous job put in the environment, and a plain shell does not have.
# Lines no logging formats: make's echo of the command, and what the JVM and log4j print while they start.
TEXT_ALLOWED = (".venv/bin/clickpulse-job ", "WARNING: Using incubator modules", "Using Spark's default log4j profile")
NOT_IN_A_PLAIN_SHELL = ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "SPARK_HOME", "PYSPARK_PYTHON",
                        "PYSPARK_DRIVER_PYTHON", "SPARK_LOCAL_IP", "PYSPARK_GATEWAY_PORT", "PYSPARK_GATEWAY_SECRET")


@dataclass(frozen=True)
class MadeJob:
    proc: subprocess.Popen
    log: Path
    checkpoint: Path
    database: str


def plain_shell_env(stack: LocalStack, **settings: str) -> dict[str, str]:
    """The environment of a new terminal: the venv neither activated nor on PATH; the job's settings in CLICKPULSE_*."""
    env = {k: v for k, v in os.environ.items() if k not in NOT_IN_A_PLAIN_SHELL and not k.startswith("CLICKPULSE_")}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep)
                                  if p and ".venv" not in Path(p).parts)
    env.update({"KAFKA_PORT": str(stack.kafka_port), "MONGO_PORT": str(stack.mongo_port),
                "CLICKPULSE_BOOTSTRAP_SERVERS": stack.bootstrap_servers, "CLICKPULSE_MONGO_URI": stack.mongo_uri,
                **settings})
    return env


def log_records(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]


def job_says(log: Path, prefix: str) -> str | None:
    """The message of the job's first log record starting with `prefix` (None while there is none)."""
    return next((r["message"] for r in log_records(log) if str(r.get("message", "")).startswith(prefix)), None)


@pytest.fixture(scope="module")
def made_job(stack: LocalStack, mongo_client, tmp_path_factory) -> Iterator[MadeJob]:
    work = tmp_path_factory.mktemp("make-job")
    topic = create_topic(stack.bootstrap_servers, f"ops-{uuid.uuid4().hex[:8]}")
    database, checkpoint, log = f"ops_{uuid.uuid4().hex[:8]}", work / "checkpoints", work / "job.log"
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=30)
    produce(stack.bootstrap_servers, topic, clicks(seed=13, n=400, start=start, span=timedelta(minutes=5)))
    env = plain_shell_env(stack, CLICKPULSE_TOPIC=topic, CLICKPULSE_DATABASE=database,
                          CLICKPULSE_CHECKPOINT_DIR=str(checkpoint), CLICKPULSE_LOG_FORMAT="json")
    # `-o setup`: `make test` has just run setup; this test must not build the venv, jars or FerretDB again.
    argv = ["make", "--no-print-directory", "-o", "setup", "job",
            "JOB_ARGS=--conf spark.sql.shuffle.partitions=3 --metrics prometheus --trigger processing-time:2s "
            f"--conf spark.driver.defaultJavaOptions={COMPILE_HUGE_METHODS}"]
    with log.open("w") as out:
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        db = mongo_client[database]
        poll(lambda: proc.poll() is None and db[c.PIPELINE_METRICS].count_documents({c.QUERY: c.AGGREGATES_QUERY}) > 0,
             timeout=300, what=f"make job's first batch (log: {log})", interval=1)
        yield MadeJob(proc, log, checkpoint, database)
    finally:
        stop_gracefully(proc)
        mongo_client.drop_database(database)


def test_make_job_runs_from_a_shell_without_the_venv_until_its_first_batch(made_job: MadeJob):
    # Given `make job` started from a shell with no venv activated (the fixture waited for its first batch)
    # Then it is still running, and it found Spark without help (no "Could not find valid SPARK_HOME")
    assert made_job.proc.poll() is None
    assert "SPARK_HOME" not in made_job.log.read_text()
    # And pyspark found the pandas it supports (requirements.txt pins 2.x: it warns about 3.x)
    assert "fully support pandas" not in made_job.log.read_text()


def test_a_driver_jvm_asked_to_compile_huge_methods_keeps_sparks_whole_stage_code(made_job: MadeJob):
    # Given `make job` with the JVM option that compiles huge methods, passed through as a spark-submit --conf
    # Then the job found its driver's JVM compiling them, and set no codegen limit of its own
    assert job_says(made_job.log, "generated code: huge methods are compiled by the JVM") is not None


def test_a_driver_jvm_given_its_default_options_by_the_user_keeps_its_collector(made_job: MadeJob):
    # Given `make job` with the user's own spark.driver.defaultJavaOptions (the huge-methods option above)
    # Then clickpulse-job did not replace them with its collector: the driver runs HotSpot's own choice (G1 on 2 cores)
    said = job_says(made_job.log, "the driver's JVM (it runs the tasks) collects garbage with")
    assert said is not None and "PS Scavenge" not in said


def test_a_spark_submit_conf_wins_over_the_jobs_default(made_job: MadeJob):
    # Given `--conf spark.sql.shuffle.partitions=3` passed through make job's JOB_ARGS (the job's default is 8)
    # When the first batch's offsets entry records the session's settings
    first = made_job.checkpoint / c.AGGREGATES_QUERY / "offsets" / "0"
    poll(first.is_file, timeout=60, what=f"{first}")
    metadata = json.loads(first.read_text().splitlines()[1])
    # Then the query runs with the user's value
    assert metadata["conf"]["spark.sql.shuffle.partitions"] == "3"


def test_json_log_lines_parse_as_json(made_job: MadeJob):
    # Given the job logging with CLICKPULSE_LOG_FORMAT=json
    lines = [line for line in made_job.log.read_text().splitlines() if line.strip()]
    records = log_records(made_job.log)
    # Then the job's own lines are JSON objects with the text lines' fields
    ours = [r for r in records if str(r.get("logger", "")).startswith("clickpulse")]
    assert ours and all({"time", "level", "logger", "message"} <= set(r) for r in ours)
    # And so are Spark's log records (its own JSON layout: ts, level, msg, logger)
    assert any(r.get("logger") == "SparkContext" and {"ts", "level", "msg"} <= set(r) for r in records)
    # And the only text lines are make's echo of the command and the JVM's start-up notices, printed before
    # there is any logging to format
    text = [line for line in lines if not line.startswith("{")]
    assert [line for line in text if not line.startswith(TEXT_ALLOWED)] == [], text


def test_a_prometheus_scrape_returns_the_streaming_metrics(made_job: MadeJob):
    # Given the job started with --metrics prometheus, which logs where the endpoint is
    poll(lambda: job_says(made_job.log, "Prometheus metrics at http://127.0.0.1:") is not None, timeout=60,
         what="the endpoint in the log")
    url = job_says(made_job.log, "Prometheus metrics at ").split(" at ", 1)[1]

    def scrape() -> str:
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - the job's UI on loopback
            return response.read().decode()

    # When Prometheus scrapes it
    poll(lambda: "spark_streaming_aggregates_" in scrape(), timeout=60, what=f"streaming metrics at {url}")
    body = scrape()
    # Then it returns each streaming query's rates, latency and state, under the fixed clickpulse namespace
    for query in ("aggregates", "invalid_events"):
        for metric in ("inputRate", "processingRate", "latency"):
            assert any(line.startswith("metrics_clickpulse_driver_spark_streaming_" + query + "_" + metric)
                       for line in body.splitlines()), (query, metric, body[:2000])
