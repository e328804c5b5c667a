"""Building the job's SparkSession and shipping our packages to the executors."""

from __future__ import annotations

import logging
import os
import re
import shlex
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

import pyspark
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
    # Every batch looks up each event's dedup key and each slot's state: an 8 MB block cache (Spark's default) holds
    # little of a state of a million keys.
    "spark.sql.streaming.stateStore.rocksdb.blockCacheSizeMB": "64",
}

# HotSpot leaves a method of more than 8,000 bytes of bytecode to its interpreter (its DontCompileHugeMethods), and
# the code Spark generates to parse and validate an event is larger: on 2 cores, parsing and validating 1M events took
# 13.3 s interpreted. With Spark's codegen limit at HotSpot's, Spark runs such a stage operator by operator, compiled:
# 8.5 s; with the JVM compiling huge methods (`-XX:-DontCompileHugeMethods` in `spark.driver.defaultJavaOptions` on a
# local master, `spark.executor.defaultJavaOptions` on a cluster), 6.8 s (bench/job.py --stages --huge-methods). The
# job sets the limit unless its task JVMs compile huge methods or the user set one. Compiling is not the default: at
# 2,000 events/s a batch's p95 was 0.5 s longer with it, in both of two pairs of 300 s runs (see `huge_method_confs`).
COMPILE_HUGE_METHODS = "-XX:-DontCompileHugeMethods"
HUGE_METHOD_LIMIT = "spark.sql.codegen.hugeMethodLimit"
HOTSPOT_HUGE_METHOD_BYTES = 8000

# The JVMs that run the tasks collect garbage with HotSpot's Parallel collector. On any machine of 2 cores and 2 GB
# HotSpot picks G1, which keeps pauses short with concurrent threads of its own, and on 2 cores those threads compete
# with the tasks. At 2,000 events/s (bench/pipeline.py, 300 s) a batch's p95 was 4.9 and 5.6 s with Parallel against
# 7.6 and 8.8 s with G1, the freshness p95 9.4 and 10.7 s against 14.9 and 15.9 s (the second G1 run overlapped a
# minute of tests); the hot path (bench/job.py, three pairs) was faster in two. The job sets it as the task JVMs'
# default options (the driver's on a local master, the executors' on a cluster) unless the user set those options or
# names a collector anywhere: a JVM given two collectors refuses to start.
PARALLEL_GC = "-XX:+UseParallelGC"
_COLLECTOR = re.compile(r"-XX:\+Use\w*GC\b")
# Where the JVM also reads options from the environment.
_JVM_OPTION_VARIABLES = ("JAVA_TOOL_OPTIONS", "JDK_JAVA_OPTIONS", "_JAVA_OPTIONS")


# Spark writes each checkpoint file (a batch's offsets and commit, each state store's changelog) under a temporary name
# and renames it into place. Its default manager renames through Hadoop's FileContext, which on a local file system
# runs `readlink` twice per rename, each a process of its own (Hadoop has no native library here). Hadoop's FileSystem
# API renames with the same rename(2) and no process (both still create a file with a `chmod` process). At 2,000
# events/s (two pairs of 300 s runs of bench/pipeline.py, p50) writing a batch's offsets took 22 and 23 ms against 95
# and 96, its commit 28 and 27 ms against 96 and 88, and each state operator's commit 4 to 6 ms against 154 to 164.
# That manager checks that a batch's file is new just before the rename rather than in it, which only matters to two
# jobs on one checkpoint (the job warns of another job's fresh lock file, streaming_job/lock.py). Remote checkpoints
# (hdfs://, s3a://) keep Spark's choice; a `--conf` given wins.
CHECKPOINT_FILE_MANAGER = "spark.sql.streaming.checkpointFileManagerClass"
LOCAL_CHECKPOINT_FILE_MANAGER = "org.apache.spark.sql.execution.streaming.checkpointing.FileSystemBasedCheckpointFileManager"

# A local master keeps every Spark socket on this machine unless asked otherwise: the driver's RPC endpoint and block
# manager bind to loopback here, and the UI (which has no login) binds to $SPARK_LOCAL_IP, else to every interface,
# so the job sets that variable for the JVM it starts. The UI's kill buttons are off on every master.
LOOPBACK = "127.0.0.1"
LOCAL_NETWORK_DEFAULTS = {"spark.driver.bindAddress": LOOPBACK, "spark.driver.host": LOOPBACK}
UI_DEFAULTS = {"spark.ui.killEnabled": "false"}
CONSTRAINT_PROPAGATION = "spark.sql.constraintPropagation.enabled"
DATAFRAME_DEBUGGING = "spark.python.sql.dataFrameDebugging.enabled"
# State partitions when neither --shuffle-partitions nor --conf spark.sql.shuffle.partitions says (Spark's 200 would
# make 200 tiny state stores per batch): 8 on a cluster, one per core on a local master (see `local_cores`).
SESSION_DEFAULTS = {
    "spark.sql.shuffle.partitions": "8",
    # The aggregation keeps a set (of users) per key, so Spark runs it as an ObjectHashAggregate, which switches to
    # sorting once a task holds 128 keys (its default): with a key per (pane, user, session) a batch has thousands.
    # Hashing up to 200k keys a task made the hot path 1.6x faster (bench/job.py); past that it still sorts.
    "spark.sql.objectHashAggregate.sortBased.fallbackThreshold": "200000",
    # Spark plans every micro-batch anew, and its optimizer infers constraints (such as not-null filters) from every
    # condition and alias of the plan, which holds validation's many conditions once per stream (one per partition).
    # At 2,000 events/s, planning a batch took 355 and 394 ms without them against 707 and 480 ms (p50, two pairs of
    # 300 s runs of bench/pipeline.py; bench/job.py --planning times it alone). Nothing here needs the filters it
    # infers: they only let Spark skip rows early.
    CONSTRAINT_PROPAGATION: "false",
    # PySpark wraps each DataFrame function it is called through: it looks up the session and a Spark property and
    # walks the Python stack, in round trips to the JVM, so that an error can name the Python line that built the
    # failing expression. Building the job's plans (validation's thousands of columns, once per stream) took 11.3 s
    # with it and 6.6 s without (7.4 and 2.8 s when built again); a batch's writes run through it too. The job's
    # expressions raise no errors (every conversion is a `try_*`), so the line would name the job's own code.
    DATAFRAME_DEBUGGING: "false",
    "spark.sql.streaming.stopGracefullyOnShutdown": "true",
    "spark.ui.showConsoleProgress": "false",
}
# `--metrics prometheus`: Spark's PrometheusServlet on the UI's port, with the streaming queries' own metrics and a
# fixed namespace (instead of the application id), so metric names stay the same across runs.
PROMETHEUS_PATH = "/metrics/prometheus"
PROMETHEUS_DEFAULTS = {
    "spark.metrics.conf.*.sink.prometheusServlet.class": "org.apache.spark.metrics.sink.PrometheusServlet",
    "spark.metrics.conf.*.sink.prometheusServlet.path": PROMETHEUS_PATH,
    "spark.metrics.namespace": "clickpulse",
    "spark.sql.streaming.metricsEnabled": "true",
    "spark.ui.prometheus.enabled": "true",
}
# `--log-format json`: Spark's own log lines as JSON too (its log4j2 JSON layout).
JSON_LOG_DEFAULTS = {"spark.log.structuredLogging.enabled": "true"}


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


def local_cores(master: str) -> int:
    """The threads of a local master (`local`, `local[N]`, `local[*]`, `local[N,F]`): on one machine, one state partition
    per core made a batch at 2,000 events/s 35% shorter than 8 partitions (bench/pipeline.py, 2 cores)."""
    m = re.match(r"^local(?:\[\s*(\*|\d+)\s*(?:,\s*\d+\s*)?\])?$", master.strip())
    if m is None or m.group(1) is None:
        return 1 if m is not None else os.cpu_count() or 2
    return os.cpu_count() or 2 if m.group(1) == "*" else int(m.group(1))


def job_confs(s: JobSettings, user: Mapping[str, str], json_logs: bool = False) -> dict[str, str]:
    """The Spark properties the job sets on its session, given those the user set (spark-submit --conf, defaults file).

    A property the user set always wins over the job's defaults; a job flag the user gave (`--shuffle-partitions`)
    wins over both. Window bounds need UTC, so the session time zone is not a default.
    """
    defaults = {**STATE_STORE_DEFAULTS, **SESSION_DEFAULTS, **UI_DEFAULTS}
    master = user.get("spark.master", "local[*]")  # without one, the job runs local[*] (see local_master)
    if master.startswith("local"):
        defaults.update(LOCAL_NETWORK_DEFAULTS)
        defaults["spark.sql.shuffle.partitions"] = str(local_cores(master))
    if s.metrics == "prometheus":
        defaults.update(PROMETHEUS_DEFAULTS)
    if json_logs:
        defaults.update(JSON_LOG_DEFAULTS)
    confs = {key: value for key, value in defaults.items() if key not in user}
    if s.shuffle_partitions is not None:
        confs["spark.sql.shuffle.partitions"] = str(s.shuffle_partitions)
    confs["spark.sql.session.timeZone"] = "UTC"  # window bounds and naive timestamps are UTC
    return confs


def _connector() -> dict[str, str]:
    """Spark's Kafka connector: the jars in CLICKPULSE_SPARK_JARS (offline machines, tests), else the Maven package."""
    jars = os.environ.get("CLICKPULSE_SPARK_JARS", "")
    return {"spark.jars": jars} if jars else {"spark.jars.packages": KAFKA_PACKAGE}


def launch_master(launch_args: str) -> str | None:
    """The --master of spark-submit style arguments (PYSPARK_SUBMIT_ARGS), if they name one."""
    words = shlex.split(launch_args)
    for i, word in enumerate(words):
        if word == "--master" and i + 1 < len(words):
            return words[i + 1]
        if word.startswith("--master="):
            return word.split("=", 1)[1]
    return None


def build_session(s: JobSettings, app_name: str = "clickpulse", json_logs: bool = False) -> SparkSession:
    """The job's session. spark-submit's --master/--packages/--jars/--conf win; otherwise local[*] + the connector.

    `CLICKPULSE_SPARK_JARS` (comma-separated jar paths) replaces the Ivy download of the connector,
    for offline machines and tests.
    """
    submitted = "PYSPARK_GATEWAY_PORT" in os.environ
    launch_args = os.environ.get("PYSPARK_SUBMIT_ARGS", "")
    if submitted:
        # Started by spark-submit: its JVM already runs and holds --master/--packages/--jars/--conf; read them.
        SparkContext._ensure_initialized()
    elif launch_args.strip():
        # `python -m streaming_job` with spark-submit's arguments in PYSPARK_SUBMIT_ARGS: start the JVM with them now,
        # so their --conf values are the user's (they win over the job's defaults, as under spark-submit).
        if (launch_master(launch_args) or "local").startswith("local"):
            os.environ.setdefault("SPARK_LOCAL_IP", LOOPBACK)
        # The connector must be on the driver's class path from the JVM's start (the arguments win where they say).
        launch = SparkConf(loadDefaults=False)
        if "spark-sql-kafka" not in launch_args:
            launch.setAll(_connector().items())
        # The JVM's collector too: the arguments' own --conf and --driver-java-options follow these and win.
        launch.setAll(gc_confs({}, launch_master(launch_args) or "local[*]",
                               f"{launch_args} {named_collectors(os.environ)}").items())
        SparkContext._ensure_initialized(conf=launch)
    user = dict(SparkConf().getAll())
    builder = SparkSession.builder.appName(app_name)
    master = local_master(user.get("spark.master"), user.get("spark.task.maxFailures"))
    if master is not None:
        builder = builder.master(master)
    confs = job_confs(s, user, json_logs)
    if not (submitted and user.get("spark.master", "local").startswith("local")):
        # The task JVMs start after this (a local driver's is running under spark-submit: clickpulse-job sets it there).
        confs.update(gc_confs(user, user.get("spark.master", "local[*]"), named_collectors(os.environ)))
    if user.get("spark.master", "local").startswith("local"):
        if not (os.environ.get("PYSPARK_PYTHON") or "spark.pyspark.python" in user):
            # Local Python workers must use this interpreter (the one with pymongo), not whatever is on PATH.
            os.environ["PYSPARK_PYTHON"] = sys.executable
        confs.update(_loopback_ui(user, submitted))
    if "spark-sql-kafka" not in user.get("spark.jars", "") + user.get("spark.jars.packages", ""):
        confs.update(_connector())
    for key, value in confs.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    for key, value in {**huge_method_confs(spark, user), **checkpoint_file_confs(spark, s.checkpoint_dir, user)}.items():
        spark.conf.set(key, value)
    log_collectors(spark)
    return spark


def jvm_options(spark: SparkSession) -> str:
    """The options of the JVMs that run the tasks: the driver's own on a local master, else the executors' settings."""
    conf = spark.sparkContext.getConf()
    if (conf.get("spark.master") or "local").startswith("local"):
        bean = spark.sparkContext._jvm.java.lang.management.ManagementFactory.getRuntimeMXBean()
        return " ".join(bean.getInputArguments())
    return " ".join(conf.get(f"spark.executor.{k}JavaOptions") or "" for k in ("default", "extra"))


def compiles_huge_methods(options: str) -> bool:
    """Whether JVMs started with `options` compile huge methods (the last DontCompileHugeMethods given says)."""
    flags = re.findall(r"-XX:([+-])DontCompileHugeMethods\b", options)
    return bool(flags) and flags[-1] == "-"


def huge_method_confs(spark: SparkSession, user: Mapping[str, str]) -> dict[str, str]:
    """Spark's codegen limit at HotSpot's when the task JVMs leave huge methods interpreted (and the user set none)."""
    if HUGE_METHOD_LIMIT in user:
        return {}
    if compiles_huge_methods(jvm_options(spark)):
        log.info("generated code: huge methods are compiled by the JVM (%s)", COMPILE_HUGE_METHODS)
        return {}
    log.info("generated code: the JVM leaves methods over %d bytes interpreted (no %s), so Spark splits its code "
             "at that size (%s)", HOTSPOT_HUGE_METHOD_BYTES, COMPILE_HUGE_METHODS, HUGE_METHOD_LIMIT)
    return {HUGE_METHOD_LIMIT: str(HOTSPOT_HUGE_METHOD_BYTES)}


def named_collectors(environ: Mapping[str, str]) -> str:
    """JVM options given outside Spark's properties: the environment's and a `spark-defaults.conf` Spark would read."""
    spark_home = environ.get("SPARK_HOME") or str(Path(pyspark.__file__).resolve().parent)  # as pyspark finds it
    home = environ.get("SPARK_CONF_DIR") or str(Path(spark_home) / "conf")
    defaults = Path(home) / "spark-defaults.conf"
    return " ".join([*(environ.get(v, "") for v in _JVM_OPTION_VARIABLES),
                     defaults.read_text(errors="replace") if defaults.is_file() else ""])


def gc_confs(user: Mapping[str, str], master: str, elsewhere: str = "") -> dict[str, str]:
    """Parallel GC as the default options of the JVMs that run the tasks (see PARALLEL_GC): the driver's on a local
    master, the executors' on a cluster. None when the user set those options, or names a collector in `user`'s
    extra options or in `elsewhere` (spark-submit arguments, the JVM's environment)."""
    role = "driver" if master.startswith("local") else "executor"
    default = f"spark.{role}.defaultJavaOptions"
    if default in user or _COLLECTOR.search(f"{user.get(f'spark.{role}.extraJavaOptions', '')} {elsewhere}"):
        return {}
    return {default: PARALLEL_GC}


def log_collectors(spark: SparkSession) -> None:
    """Say which collector the task JVMs run: the driver's own on a local master, else the executors' options."""
    conf = spark.sparkContext.getConf()
    if (conf.get("spark.master") or "local").startswith("local"):
        beans = spark.sparkContext._jvm.java.lang.management.ManagementFactory.getGarbageCollectorMXBeans()
        log.info("the driver's JVM (it runs the tasks) collects garbage with %s",
                 ", ".join(sorted(str(b.getName()) for b in beans)))
    else:
        log.info("executors' JVM options: %s", jvm_options(spark).strip() or "(none)")


def checkpoint_scheme(spark: SparkSession, checkpoint_dir: str) -> str:
    """The file system scheme Hadoop resolves `checkpoint_dir` to (a path without one is on the default file system)."""
    jvm = spark.sparkContext._jvm
    fs = jvm.org.apache.hadoop.fs
    uri = fs.Path(checkpoint_dir).toUri()
    return (uri.getScheme() or fs.FileSystem.getDefaultUri(spark.sparkContext._jsc.hadoopConfiguration()).getScheme()
            or "file")


def checkpoint_file_confs(spark: SparkSession, checkpoint_dir: str, user: Mapping[str, str]) -> dict[str, str]:
    """Spark's FileSystem-based checkpoint file manager for a checkpoint on the local file system (unless the user
    chose a manager): see LOCAL_CHECKPOINT_FILE_MANAGER."""
    if CHECKPOINT_FILE_MANAGER in user or checkpoint_scheme(spark, checkpoint_dir) != "file":
        return {}
    log.info("checkpoint files in %s are renamed through Hadoop's FileSystem API (%s)", checkpoint_dir,
             CHECKPOINT_FILE_MANAGER)
    return {CHECKPOINT_FILE_MANAGER: LOCAL_CHECKPOINT_FILE_MANAGER}


def _loopback_ui(user: Mapping[str, str], submitted: bool) -> dict[str, str]:
    """Keep a local master's UI on loopback: through the JVM's environment, or (too late for that) switch it off."""
    if not submitted:
        os.environ.setdefault("SPARK_LOCAL_IP", LOOPBACK)  # the JVM that getOrCreate() starts inherits it
        return {}
    if SparkContext._jvm.java.lang.System.getenv("SPARK_LOCAL_IP") or "spark.ui.enabled" in user:
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
