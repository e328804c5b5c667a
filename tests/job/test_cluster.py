"""The same job on a local Spark standalone cluster (master + one worker on loopback) stores the same documents."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from devstack.paths import ROOT
from devstack.process import ManagedProcess
from devstack.stack import free_port
from streaming_job.packaging import build_zip
from tests.job.dataset import clicks, produce, read_back
from tests.job.jobrun import job_args, job_env, mismatches, run_job, spark_home, stored
from tests.reference import expected

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@dataclass(frozen=True)
class Cluster:
    url: str
    worker_log: Path


@pytest.fixture(scope="module")
def standalone(tmp_path_factory) -> Iterator[Cluster]:
    """`spark-class` Master and Worker on 127.0.0.1 (pyspark's pip package has no start-master.sh)."""
    work = tmp_path_factory.mktemp("standalone")
    port, ui, worker_ui = free_port(), free_port(), free_port()
    url = f"spark://127.0.0.1:{port}"
    spark_class = str(Path(spark_home()) / "bin" / "spark-class")
    env = {**job_env(), "SPARK_LOCAL_IP": "127.0.0.1", "SPARK_WORKER_DIR": str(work / "worker")}
    master = ManagedProcess("spark-master", work)
    worker = ManagedProcess("spark-worker", work)
    try:
        master.start([spark_class, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", str(port),
                      "--webui-port", str(ui)], env=env)
        master.wait_ready(lambda: "Starting Spark master" in master.log_file.read_text(), 120, "master start")
        worker.start([spark_class, "org.apache.spark.deploy.worker.Worker", url, "--host", "127.0.0.1", "--cores", "2",
                      "--memory", "2g", "--webui-port", str(worker_ui), "--work-dir", str(work / "worker")], env=env)
        master.wait_ready(lambda: "Registering worker" in master.log_file.read_text(), 120, "worker registration")
        yield Cluster(url, worker.log_file)
    finally:
        worker.stop()
        master.stop()


def test_the_job_on_a_standalone_cluster_matches_the_reference(
    standalone, kafka_bootstrap, mongo_uri, mongo_client, new_topic, tmp_path
):
    # Given traffic in a topic, and our packages zipped as for a real cluster (`make dist`)
    topic, database = new_topic(), "cluster"
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=1)
    produce(kafka_bootstrap, topic, clicks(seed=5, n=2000, start=start, span=timedelta(minutes=8)))
    dist = tmp_path / "clickpulse.zip"
    build_zip(dist)
    jars = job_env()["CLICKPULSE_SPARK_JARS"]
    log = tmp_path / "job.log"
    try:
        # When the job is submitted to the standalone master, as the cluster guide shows
        submit = [str(Path(spark_home()) / "bin" / "spark-submit"), "--master", standalone.url,
                  "--jars", jars, "--py-files", str(dist), "--conf", f"spark.pyspark.python={sys.executable}",
                  str(ROOT / "streaming_job" / "main.py")]
        run_job(job_args(kafka_bootstrap, topic, mongo_uri, database, tmp_path / "checkpoints",
                         "--trigger", "available-now"), log, timeout=400, launcher=submit)
        # Then its executors ran on the worker, not in local mode
        assert "Asked to launch executor" in standalone.worker_log.read_text()
        # And every stored document equals the reference
        assert mismatches(stored(mongo_client[database]), expected(read_back(kafka_bootstrap, topic))) == []
    finally:
        mongo_client.drop_database(database)
