"""docs/cluster.md ("Running on a cluster"): its commands use real flags and the versions this repository pins."""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

import pytest

from tests.docker.documented import (
    CLUSTER_GUIDE,
    DOCKER,
    KAFKA_CONNECTOR,
    README,
    ROOT,
    SPARK_VERSION,
    help_text,
    make_dist,
    mentions_flag,
    pinned_version,
    run_here,
    shell_commands,
)

APP = "streaming_job/main.py"


def guide() -> str:
    return CLUSTER_GUIDE.read_text()


def spark_submits() -> list[list[str]]:
    """Every `spark-submit ... streaming_job/main.py ...` of the guide, as argv (leading VAR=value dropped)."""
    out = []
    for line in shell_commands(guide()):
        words = shlex.split(line)
        while words and re.match(r"^[A-Z_]+=", words[0]):
            words = words[1:]
        if words and words[0] == "spark-submit" and APP in words:
            out.append(words)
    return out


def option_value(argv: list[str], option: str) -> str:
    return argv[argv.index(option) + 1]


def test_the_guide_submits_to_standalone_yarn_and_kubernetes_masters():
    masters = {option_value(argv, "--master").split(":")[0] for argv in spark_submits()}
    assert masters == {"spark", "yarn", "k8s"}


def test_every_submit_brings_the_pinned_connector_and_the_dist_zip():
    assert spark_submits(), "the guide shows no spark-submit of the job"
    for argv in spark_submits():
        assert KAFKA_CONNECTOR in option_value(argv, "--packages").split(","), argv
        assert option_value(argv, "--py-files") == "dist/clickpulse.zip", argv


def test_every_connector_named_anywhere_is_the_pinned_spark_version():
    # Given every text that names a Spark artifact with a version
    texts = [CLUSTER_GUIDE, README, ROOT / "Makefile", *DOCKER.glob("*")]
    found = []
    for path in texts:
        if path.is_file():
            found += re.findall(r"org\.apache\.spark:spark-[\w.-]+_2\.13:([\w.-]+)", path.read_text())
    # Then each is the pyspark version pinned in requirements.txt
    assert found
    assert set(found) == {SPARK_VERSION}


def test_hadoop_aws_is_the_hadoop_version_that_pyspark_ships():
    # Given the Hadoop client jars inside the installed pyspark
    import pyspark

    jars = Path(pyspark.__file__).parent / "jars"
    (api,) = jars.glob("hadoop-client-api-*.jar")
    shipped = api.name.removeprefix("hadoop-client-api-").removesuffix(".jar")
    # Then every hadoop-aws the guide adds has that version
    versions = set(re.findall(r"org\.apache\.hadoop:hadoop-aws:([\w.-]+)", guide()))
    assert versions == {shipped}


def test_the_guide_pins_the_same_pymongo_as_requirements():
    versions = set(re.findall(r"pymongo==([\w.]+)", guide()))
    assert versions == {pinned_version("pymongo")}


def test_every_job_flag_in_the_guide_is_a_flag_of_the_job():
    # Given the job's --help
    text = help_text("job")
    for argv in spark_submits():
        # Then every flag after streaming_job/main.py is the job's own
        for word in argv[argv.index(APP) + 1:]:
            if word.startswith("--"):
                assert mentions_flag(text, word.split("=")[0]), f"the job has no {word}"


def test_every_spark_submit_option_in_the_guide_is_a_spark_submit_option():
    # Given spark-submit's own --help
    text = help_text("spark-submit")
    for argv in spark_submits():
        # Then every option before the application file is one spark-submit lists
        for word in argv[1:argv.index(APP)]:
            if word.startswith("--"):
                assert mentions_flag(text, word.split("=")[0]), f"spark-submit has no {word}"


def test_every_producer_flag_in_the_guide_is_a_flag_of_the_producer():
    text = help_text("producer")
    commands = [c for c in shell_commands(guide()) + re.findall(r"`([^`\n]+)`", guide())
                if c.startswith("python -m producer")]
    assert commands
    for command in commands:
        for word in shlex.split(command):
            if word.startswith("--"):
                assert mentions_flag(text, word), f"the producer has no {word}"


@pytest.mark.parametrize("daemon", ["org.apache.spark.deploy.master.Master", "org.apache.spark.deploy.worker.Worker"])
def test_the_local_cluster_starts_with_spark_class_and_options_it_knows(daemon: str):
    # Given the guide's command that starts the daemon (pip's pyspark has spark-class, not start-master.sh)
    (line,) = [c for c in shell_commands(guide()) if c.startswith(f"spark-class {daemon}")]
    # When the daemon prints its usage
    usage = run_here([str(Path(sys.executable).parent / "spark-class"), daemon, "--help"])
    text = usage.stdout + usage.stderr
    assert "Usage:" in text, text[-2000:]
    # Then every option the guide gives it is one it knows
    for word in shlex.split(line.rstrip("&").strip()):
        if word.startswith("--"):
            assert mentions_flag(text, word), f"{daemon} has no {word}"


def test_the_local_cluster_job_submits_to_the_master_the_guide_starts():
    (master_line,) = [c for c in shell_commands(guide()) if "deploy.master.Master" in c]
    argv = shlex.split(master_line.rstrip("&"))
    url = f"spark://{option_value(argv, '--host')}:{option_value(argv, '--port')}"
    assert url in {option_value(a, "--master") for a in spark_submits()}


def test_the_guide_builds_the_zip_with_make_dist():
    assert "python scripts/make_dist.py" in guide()
    assert "make dist" in guide()
    assert make_dist().DEFAULT_OUTPUT == Path("dist/clickpulse.zip")


@pytest.mark.parametrize("topic", ["HDFS", "S3", "s3a://", "replicaSet=", "--partitions", "--max-offsets-per-trigger",
                                   "pymongo", "--archives", "PYSPARK_PYTHON"])
def test_the_guide_covers(topic: str):
    assert topic in guide()
