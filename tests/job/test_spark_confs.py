"""The Spark properties the job sets, and the spark-submit command clickpulse-job runs: the user's choice wins."""

from __future__ import annotations

import os
from pathlib import Path

from streaming_job.launcher import MAIN, main_parser, spark_home, submit_command
from streaming_job.session import (
    CHECKPOINT_FILE_MANAGER,
    COMPILE_HUGE_METHODS,
    CONSTRAINT_PROPAGATION,
    DATAFRAME_DEBUGGING,
    HUGE_METHOD_LIMIT,
    KAFKA_PACKAGE,
    LOCAL_CHECKPOINT_FILE_MANAGER,
    PARALLEL_GC,
    checkpoint_file_confs,
    compiles_huge_methods,
    gc_confs,
    huge_method_confs,
    job_confs,
    named_collectors,
)
from streaming_job.settings import JobSettings


def settings(**overrides) -> JobSettings:
    return JobSettings(bootstrap_servers="k:9092", mongo_uri="mongodb://m:27017/", checkpoint_dir="/tmp/c", **overrides)


def test_the_job_defaults_apply_when_the_user_set_nothing():
    confs = job_confs(settings(), {})
    assert confs["spark.sql.shuffle.partitions"] == str(os.cpu_count())  # local[*]: one state partition per core
    assert confs["spark.ui.killEnabled"] == "false"
    assert confs["spark.sql.session.timeZone"] == "UTC"


def test_a_users_conf_wins_over_every_job_default():
    # Given properties the user passed to spark-submit --conf
    user = {"spark.sql.shuffle.partitions": "3", "spark.ui.killEnabled": "true", "spark.driver.bindAddress": "10.0.0.5",
            "spark.sql.streaming.stateStore.providerClass": "x.HDFSBackedStateStoreProvider"}
    # When the job works out what to set
    confs = job_confs(settings(), user)
    # Then it sets none of them (the session keeps the user's values)
    assert not set(confs) & set(user)


def test_each_batch_is_planned_without_inferring_constraints_unless_the_user_asks():
    # Given a user who set nothing, and one who turned Spark's constraint propagation back on
    # When the job works out what to set
    # Then the optimizer infers no constraints by default (planning a micro-batch took up to twice as long), and the
    # user's choice is kept
    assert job_confs(settings(), {})[CONSTRAINT_PROPAGATION] == "false"
    assert CONSTRAINT_PROPAGATION not in job_confs(settings(), {CONSTRAINT_PROPAGATION: "true"})


def test_pyspark_records_no_python_call_site_per_dataframe_call_unless_the_user_asks():
    # Given a user who set nothing, and one who turned PySpark's DataFrame debugging back on
    # When the job works out what to set
    # Then PySpark skips its per-call stack walk and round trips by default (building the plans took 1.7x as long with
    # them), and the user's choice is kept
    assert job_confs(settings(), {})[DATAFRAME_DEBUGGING] == "false"
    assert DATAFRAME_DEBUGGING not in job_confs(settings(), {DATAFRAME_DEBUGGING: "true"})


def test_the_shuffle_partitions_flag_wins_when_given():
    assert job_confs(settings(shuffle_partitions=5), {"spark.sql.shuffle.partitions": "3"})[
        "spark.sql.shuffle.partitions"] == "5"


def test_a_local_master_binds_to_loopback_and_a_cluster_master_is_left_alone():
    local = job_confs(settings(), {"spark.master": "local[2]"})
    cluster = job_confs(settings(), {"spark.master": "spark://10.0.0.1:7077"})
    assert (local["spark.driver.bindAddress"], local["spark.driver.host"]) == ("127.0.0.1", "127.0.0.1")
    assert "spark.driver.bindAddress" not in cluster and "spark.driver.host" not in cluster


def test_metrics_prometheus_switches_on_the_servlet_and_the_streaming_metrics():
    plain, metered = job_confs(settings(), {}), job_confs(settings(metrics="prometheus"), {})
    assert "spark.sql.streaming.metricsEnabled" not in plain
    assert metered["spark.sql.streaming.metricsEnabled"] == "true"
    assert metered["spark.metrics.conf.*.sink.prometheusServlet.class"] == "org.apache.spark.metrics.sink.PrometheusServlet"
    assert metered["spark.metrics.conf.*.sink.prometheusServlet.path"] == "/metrics/prometheus"


def command(*args: str, environ: dict[str, str] | None = None) -> tuple[list[str], dict[str, str]]:
    ns, job_args = main_parser().parse_known_args(list(args))
    return submit_command(ns, job_args, environ if environ is not None else {})


def test_clickpulse_job_runs_spark_submit_of_the_installed_pyspark_with_this_python():
    # When clickpulse-job builds its command from a bare environment
    argv, env = command("--topic", "web")
    # Then it runs pyspark's own spark-submit on the job's main.py, with the job's flags after it
    assert argv[0] == str(spark_home() / "bin" / "spark-submit") and Path(argv[0]).is_file()
    assert argv[-3:] == [str(MAIN), "--topic", "web"]
    assert env["SPARK_HOME"] == str(spark_home())
    assert Path(env["PYSPARK_PYTHON"]).name.startswith("python")
    # And a local master keeps its UI on loopback
    assert argv[argv.index("--master") + 1] == "local[*]" and env["SPARK_LOCAL_IP"] == "127.0.0.1"


def test_clickpulse_job_passes_confs_through_and_finds_the_connector():
    argv, _ = command("--conf", "spark.sql.shuffle.partitions=3", environ={"CLICKPULSE_SPARK_JARS": "/j/a.jar,/j/b.jar"})
    assert argv[argv.index("--conf") + 1] == "spark.sql.shuffle.partitions=3"
    assert argv[argv.index("--jars") + 1] == "/j/a.jar,/j/b.jar"
    # Without jars anywhere it asks spark-submit to resolve the connector package
    bare, _ = command(environ={"CLICKPULSE_CACHE": "/nonexistent"})
    assert bare[bare.index("--packages") + 1] == KAFKA_PACKAGE


def test_json_logs_ask_spark_for_json_from_its_start():
    argv, _ = command("--log-format", "json")
    assert "spark.log.structuredLogging.enabled=true" in argv
    # unless the user said otherwise
    argv, _ = command("--log-format", "json", "--conf", "spark.log.structuredLogging.enabled=false")
    assert "spark.log.structuredLogging.enabled=true" not in argv


def test_the_master_of_pyspark_submit_args_is_read_for_where_spark_binds():
    # Given PYSPARK_SUBMIT_ARGS as users write them for `python -m streaming_job`
    from streaming_job.session import launch_master

    # Then the master they name is found, in either spelling, and none when they name none
    assert launch_master("--master spark://h:7077 --conf a=b pyspark-shell") == "spark://h:7077"
    assert launch_master("--master=local[2] pyspark-shell") == "local[2]"
    assert launch_master("--conf spark.sql.shuffle.partitions=3 pyspark-shell") is None


def test_state_partitions_default_to_a_local_masters_threads_and_to_8_on_a_cluster():
    # Given no --shuffle-partitions and no --conf for it
    # Then a local master gets one state partition per thread, a cluster master 8
    assert job_confs(settings(), {"spark.master": "local[3]"})["spark.sql.shuffle.partitions"] == "3"
    assert job_confs(settings(), {"spark.master": "local[4,2]"})["spark.sql.shuffle.partitions"] == "4"
    assert job_confs(settings(), {"spark.master": "spark://10.0.0.1:7077"})["spark.sql.shuffle.partitions"] == "8"


def test_the_last_dont_compile_huge_methods_option_of_a_jvm_decides():
    assert compiles_huge_methods(f"-Xmx1g {COMPILE_HUGE_METHODS} -Duser.timezone=UTC")
    assert not compiles_huge_methods("-Xmx1g -Duser.timezone=UTC")  # HotSpot's default: left to the interpreter
    assert not compiles_huge_methods(f"{COMPILE_HUGE_METHODS} -XX:+DontCompileHugeMethods")
    assert not compiles_huge_methods("-XX:-DontCompileHugeMethodsX")


def test_a_jvm_that_leaves_huge_methods_interpreted_gets_sparks_codegen_limit_at_hotspots(spark):
    # Given the tests' session, whose JVM was started without the option, When the job works out its codegen limit
    # Then Spark is told to split generated code above HotSpot's 8,000 bytes
    assert huge_method_confs(spark, {}) == {HUGE_METHOD_LIMIT: "8000"}
    # unless the user set a limit of their own
    assert huge_method_confs(spark, {HUGE_METHOD_LIMIT: "65535"}) == {}


def test_a_local_checkpoint_is_renamed_through_hadoops_file_system_api_unless_the_user_chose(spark, tmp_path):
    # Given the tests' session, whose default file system is the local one
    # When the job picks the manager of a local checkpoint, named with or without file://
    # Then it is Spark's FileSystem-based one (no `readlink` process per rename)
    local = {CHECKPOINT_FILE_MANAGER: LOCAL_CHECKPOINT_FILE_MANAGER}
    assert checkpoint_file_confs(spark, str(tmp_path), {}) == local
    assert checkpoint_file_confs(spark, f"file://{tmp_path}", {}) == local
    # and a manager the user chose is kept
    assert checkpoint_file_confs(spark, str(tmp_path), {CHECKPOINT_FILE_MANAGER: "com.example.Manager"}) == {}


def test_a_remote_checkpoint_keeps_sparks_file_manager(spark):
    # Given checkpoints on HDFS: one named by its scheme, one a path on a default file system that is HDFS
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    previous = conf.get("fs.defaultFS")
    conf.set("fs.defaultFS", "hdfs://namenode:8020")
    try:
        # When the job picks their manager, Then it sets none: Spark's default stays
        assert checkpoint_file_confs(spark, "hdfs://namenode:8020/checkpoints", {}) == {}
        assert checkpoint_file_confs(spark, "/checkpoints", {}) == {}
    finally:
        if previous is None:
            conf.unset("fs.defaultFS")
        else:
            conf.set("fs.defaultFS", previous)


def test_the_jvms_that_run_the_tasks_collect_garbage_with_parallel_gc_by_default():
    # Given a user who chose no JVM options
    # When the job works out the task JVMs' options, for a local master and for a cluster
    # Then the driver (which runs a local master's tasks), or the executors, get HotSpot's Parallel collector
    assert gc_confs({}, "local[*]") == {"spark.driver.defaultJavaOptions": PARALLEL_GC}
    assert gc_confs({}, "local[2,4]") == {"spark.driver.defaultJavaOptions": PARALLEL_GC}
    assert gc_confs({}, "spark://10.0.0.1:7077") == {"spark.executor.defaultJavaOptions": PARALLEL_GC}


def test_a_collector_or_default_options_the_user_chose_are_kept():
    # Given users who chose the task JVMs' default options, or named a collector in their extra options or elsewhere
    # Then the job adds no collector (its value would replace theirs, and a JVM given two collectors fails to start)
    assert gc_confs({"spark.driver.defaultJavaOptions": "-Xss4m"}, "local[*]") == {}
    assert gc_confs({"spark.driver.extraJavaOptions": "-Dx=1 -XX:+UseG1GC"}, "local[*]") == {}
    assert gc_confs({"spark.executor.extraJavaOptions": "-XX:+UseZGC"}, "spark://h:7077") == {}
    assert gc_confs({}, "local[*]", "--driver-java-options -XX:+UseSerialGC pyspark-shell") == {}
    # And options of the other JVMs, or flags that name no collector, change nothing
    assert gc_confs({"spark.executor.extraJavaOptions": "-XX:+UseG1GC"}, "local[*]") != {}
    assert gc_confs({"spark.driver.extraJavaOptions": "-XX:+UseGCOverheadLimit"}, "local[*]") != {}


def test_collectors_named_in_the_jvms_environment_or_spark_defaults_are_seen(tmp_path: Path):
    # Given a collector in JAVA_TOOL_OPTIONS, and one in the spark-defaults.conf Spark would read
    (tmp_path / "spark-defaults.conf").write_text("spark.driver.extraJavaOptions -XX:+UseShenandoahGC\n")
    # Then both are found, and nothing is where nothing is set
    assert "-XX:+UseSerialGC" in named_collectors({"JAVA_TOOL_OPTIONS": "-XX:+UseSerialGC"})
    assert gc_confs({}, "local[*]", named_collectors({"SPARK_CONF_DIR": str(tmp_path)})) == {}
    assert gc_confs({}, "local[*]", named_collectors({"SPARK_HOME": str(tmp_path / "none")})) != {}


def test_clickpulse_job_starts_a_local_driver_with_parallel_gc_unless_the_user_chose():
    # When clickpulse-job builds its command for a local master, with nothing chosen
    argv, _ = command()
    # Then spark-submit starts the driver's JVM with the Parallel collector (the job itself is too late for that)
    assert f"spark.driver.defaultJavaOptions={PARALLEL_GC}" in argv
    # But not over the user's own options or collector
    for given in (command("--conf", "spark.driver.extraJavaOptions=-XX:+UseG1GC"),
                  command("--conf", "spark.driver.defaultJavaOptions=-Xss4m"),
                  command(environ={"JDK_JAVA_OPTIONS": "-XX:+UseSerialGC"})):
        assert f"spark.driver.defaultJavaOptions={PARALLEL_GC}" not in given[0]
