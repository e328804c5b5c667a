"""Shared fixtures: one Spark session, and one real local stack (Kafka KRaft + Mongo-wire) per test run."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from devstack.paths import SPARK_JARS
from devstack.stack import LocalStack

os.environ.setdefault("TZ", "UTC")
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # the venv interpreter, with pymongo


def spark_jars() -> str:
    """Comma-separated Kafka connector jars resolved by `make setup` (empty when absent)."""
    return ",".join(str(p) for p in sorted(SPARK_JARS.glob("*.jar")))


@pytest.fixture(scope="session")
def spark():
    """The one Spark session of the test run: local[2], 2 shuffle partitions, no UI, UTC, Kafka connector."""
    from pyspark.sql import SparkSession

    from streaming_job.session import CONSTRAINT_PROPAGATION, DATAFRAME_DEBUGGING, PARALLEL_GC, SESSION_DEFAULTS

    builder = (
        SparkSession.builder.master("local[2]")
        .appName("clickpulse-tests")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.default.parallelism", "2")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config(CONSTRAINT_PROPAGATION, SESSION_DEFAULTS[CONSTRAINT_PROPAGATION])  # steps are planned as in the job
        .config(DATAFRAME_DEBUGGING, SESSION_DEFAULTS[DATAFRAME_DEBUGGING])  # and built as quickly
        .config("spark.driver.defaultJavaOptions", PARALLEL_GC)  # and collects garbage as the job's JVM does
        .config("spark.driver.extraJavaOptions", "-Duser.timezone=UTC")
        .config("spark.executor.extraJavaOptions", "-Duser.timezone=UTC")
        .config("spark.sql.streaming.stateStore.providerClass",
                "org.apache.spark.sql.execution.streaming.state.HDFSBackedStateStoreProvider")
    )
    if jars := spark_jars():
        builder = builder.config("spark.jars", jars)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("WARN")
    try:
        yield session
    finally:
        session.stop()


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """A real Kafka broker and Mongo-wire server on free loopback ports, for the whole test run."""
    local = LocalStack.on_free_ports(tmp_path_factory.mktemp("stack"))
    try:
        local.up()
        yield local
    finally:
        local.down()
        if local.mongo.postgres is not None:
            local.mongo.postgres.remove()


@pytest.fixture(scope="session")
def kafka_bootstrap(stack: LocalStack) -> str:
    return stack.bootstrap_servers


@pytest.fixture(scope="session")
def mongo_uri(stack: LocalStack) -> str:
    return stack.mongo_uri


@pytest.fixture(scope="session")
def mongo_client(mongo_uri: str):
    from storage.client import connect

    client = connect(mongo_uri, "clickpulse-tests")
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def mongo_db(mongo_client):
    """A fresh, uniquely named database, dropped after the test."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    try:
        yield mongo_client[name]
    finally:
        mongo_client.drop_database(name)


@pytest.fixture
def new_topic(kafka_bootstrap: str) -> Callable[..., str]:
    """Create uniquely named topics on the real broker: `new_topic(partitions=3) -> name`."""
    from kafka.admin import KafkaAdminClient, NewTopic

    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    made: list[str] = []

    def make(partitions: int = 3, prefix: str = "t") -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:10]}"
        admin.create_topics([NewTopic(name, partitions, 1)])
        made.append(name)
        return name

    try:
        yield make
    finally:
        admin.close()


@pytest.fixture
def checkpoint_dir(tmp_path: Path) -> Path:
    return tmp_path / "checkpoints"
