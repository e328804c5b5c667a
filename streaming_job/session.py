"""Building the job's SparkSession and shipping our packages to the executors."""

from __future__ import annotations

import logging
import os
import re
import sys
import tempfile
from pathlib import Path

from pyspark import SparkConf, SparkContext
from pyspark.sql import SparkSession

from streaming_job.packaging import PACKAGES, build_zip, running_from_source
from streaming_job.settings import JobSettings

log = logging.getLogger(__name__)

SPARK_VERSION = "4.2.0"
KAFKA_PACKAGE = f"org.apache.spark:spark-sql-kafka-0-10_2.13:{SPARK_VERSION}"

# State in RocksDB, off the executor heap, checkpointed as a changelog per batch (a snapshot every few batches)
# instead of a copy of every changed key. `--conf` given to spark-submit wins. A checkpoint made with another
# provider keeps it: Spark stores the provider in the checkpoint and restores it from there.
STATE_STORE_DEFAULTS = {
    "spark.sql.streaming.stateStore.providerClass":
        "org.apache.spark.sql.execution.streaming.state.RocksDBStateStoreProvider",
    "spark.sql.streaming.stateStore.rocksdb.changelogCheckpointing.enabled": "true",
}


# Spark gives a task on a local master one attempt, and reads no `spark.task.maxFailures` there: only the master
# string `local[N,F]` allows F attempts. The job's Mongo writes ride out outages themselves; task attempts cover the
# rest (a Kafka fetch during a broker restart, a Python worker that died).
LOCAL_TASK_ATTEMPTS = 4
_LOCAL = re.compile(r"^local(?:\[\s*(\*|\d+)\s*\])?$")


def local_master(master: str | None, max_failures: str | None = None) -> str | None:
    """The master to use instead of `master` so that failed tasks are retried; None to keep `master` as it is.

    No master becomes `local[*,F]`; `local` and `local[N]` (spark-submit's default is `local[*]`) keep their threads
    and get F attempts: `spark.task.maxFailures` when given, else LOCAL_TASK_ATTEMPTS. A master that names its attempts
    (`local[N,F]`, so `local[N,1]` for none) and cluster masters are kept.
    """
    attempts = int(max_failures) if max_failures and max_failures.strip().isdigit() else LOCAL_TASK_ATTEMPTS
    if master is None:
        return f"local[*,{attempts}]"
    m = _LOCAL.match(master.strip())
    if m is None:
        return None
    return f"local[{m.group(1) or 1},{attempts}]"


def build_session(s: JobSettings, app_name: str = "clickpulse") -> SparkSession:
    """The job's session. spark-submit's --master/--packages/--jars win; otherwise local[*,4] + the connector.

    `CLICKPULSE_SPARK_JARS` (comma-separated jar paths) replaces the Ivy download of the connector,
    for offline machines and tests.
    """
    if "PYSPARK_GATEWAY_PORT" in os.environ:
        # Started by spark-submit: its JVM already runs and holds --master/--packages/--jars; read them.
        SparkContext._ensure_initialized()
    conf = SparkConf()
    builder = SparkSession.builder.appName(app_name)
    master = local_master(conf.get("spark.master", None), conf.get("spark.task.maxFailures", None))
    if master is not None:
        builder = builder.master(master)
    if conf.get("spark.master", "local").startswith("local") and not (
        os.environ.get("PYSPARK_PYTHON") or conf.contains("spark.pyspark.python")
    ):
        # Local Python workers must use this interpreter (the one with pymongo), not whatever is on PATH.
        os.environ["PYSPARK_PYTHON"] = sys.executable
    has_connector = "spark-sql-kafka" in conf.get("spark.jars", "") + conf.get("spark.jars.packages", "")
    if not has_connector:
        jars = os.environ.get("CLICKPULSE_SPARK_JARS", "")
        if jars:
            builder = builder.config("spark.jars", jars)
        else:
            builder = builder.config("spark.jars.packages", KAFKA_PACKAGE)
    for key, value in STATE_STORE_DEFAULTS.items():
        if not conf.contains(key):
            builder = builder.config(key, value)
    return (
        builder.config("spark.sql.session.timeZone", "UTC")  # window bounds and naive timestamps are UTC
        .config("spark.sql.shuffle.partitions", str(s.shuffle_partitions))
        .config("spark.sql.streaming.stopGracefullyOnShutdown", "true")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )


def ship_packages(spark: SparkSession) -> Path | None:
    """Send our packages to the executors unless they came as a zip (--py-files) already.

    Executors import `storage` and `streaming_job` to run the Mongo writer; on a cluster (or a local
    standalone worker, whose working directory is elsewhere) they are not on its path otherwise.
    """
    if not running_from_source():
        return None
    if "clickpulse" in spark.sparkContext.getConf().get("spark.submit.pyFiles", ""):
        return None  # shipped with --py-files dist/clickpulse.zip already
    # A name of its own: Spark refuses a second file called like one it has with other contents.
    out = Path(tempfile.mkdtemp(prefix="clickpulse-")) / "clickpulse_job_src.zip"
    build_zip(out)
    spark.sparkContext.addPyFile(str(out))
    log.info("shipped %s to executors as %s", ", ".join(PACKAGES), out)
    return out
