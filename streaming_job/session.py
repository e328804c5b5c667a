"""Building the job's SparkSession and shipping our packages to the executors."""

from __future__ import annotations

import logging
import os
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


# A local master keeps every Spark socket on this machine unless asked otherwise: the driver's RPC endpoint and block
# manager bind to loopback here, and the UI (which has no login) binds to $SPARK_LOCAL_IP, else to every interface,
# so the job sets that variable for the JVM it starts. The UI's kill buttons are off on every master.
LOOPBACK = "127.0.0.1"
LOCAL_NETWORK_DEFAULTS = {"spark.driver.bindAddress": LOOPBACK, "spark.driver.host": LOOPBACK}
UI_DEFAULTS = {"spark.ui.killEnabled": "false"}


def build_session(s: JobSettings, app_name: str = "clickpulse") -> SparkSession:
    """The job's session. spark-submit's --master/--packages/--jars/--conf win; otherwise local[*] + the connector.

    `CLICKPULSE_SPARK_JARS` (comma-separated jar paths) replaces the Ivy download of the connector,
    for offline machines and tests.
    """
    submitted = "PYSPARK_GATEWAY_PORT" in os.environ
    if submitted:
        # Started by spark-submit: its JVM already runs and holds --master/--packages/--jars/--conf; read them.
        SparkContext._ensure_initialized()
    conf = SparkConf()
    builder = SparkSession.builder.appName(app_name)
    if not conf.contains("spark.master"):
        builder = builder.master("local[*]")
    defaults = {**STATE_STORE_DEFAULTS, **UI_DEFAULTS}
    if conf.get("spark.master", "local").startswith("local"):
        if not (os.environ.get("PYSPARK_PYTHON") or conf.contains("spark.pyspark.python")):
            # Local Python workers must use this interpreter (the one with pymongo), not whatever is on PATH.
            os.environ["PYSPARK_PYTHON"] = sys.executable
        defaults.update(LOCAL_NETWORK_DEFAULTS)
        defaults.update(_loopback_ui(conf, submitted))
    has_connector = "spark-sql-kafka" in conf.get("spark.jars", "") + conf.get("spark.jars.packages", "")
    if not has_connector:
        jars = os.environ.get("CLICKPULSE_SPARK_JARS", "")
        if jars:
            builder = builder.config("spark.jars", jars)
        else:
            builder = builder.config("spark.jars.packages", KAFKA_PACKAGE)
    for key, value in defaults.items():
        if not conf.contains(key):
            builder = builder.config(key, value)
    return (
        builder.config("spark.sql.session.timeZone", "UTC")  # window bounds and naive timestamps are UTC
        .config("spark.sql.shuffle.partitions", str(s.shuffle_partitions))
        .config("spark.sql.streaming.stopGracefullyOnShutdown", "true")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )


def _loopback_ui(conf: SparkConf, submitted: bool) -> dict[str, str]:
    """Keep a local master's UI on loopback: through the JVM's environment, or (too late for that) switch it off."""
    if not submitted:
        os.environ.setdefault("SPARK_LOCAL_IP", LOOPBACK)  # the JVM that getOrCreate() starts inherits it
        return {}
    if SparkContext._jvm.java.lang.System.getenv("SPARK_LOCAL_IP") or conf.contains("spark.ui.enabled"):
        return {}  # the user chose where the UI listens (SPARK_LOCAL_IP) or whether it runs
    log.warning("Spark UI off: this spark-submit's JVM would serve it on every interface. Set SPARK_LOCAL_IP=%s "
                "before spark-submit (make job and clickpulse-job do), or pass --conf spark.ui.enabled=true to "
                "serve it on every interface on purpose", LOOPBACK)
    return {"spark.ui.enabled": "false"}


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
