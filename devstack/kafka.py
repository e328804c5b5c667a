"""A single-node Apache Kafka broker in KRaft mode (combined broker + controller), run with `java`."""

from __future__ import annotations

import base64
import os
import socket
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from devstack.paths import KAFKA_LIBS
from devstack.process import ManagedProcess, StackError

LOG4J2 = """\
status = warn
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = {log}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = {level}
rootLogger.appenderRef.file.ref = FILE
logger.kafka.name = kafka
logger.kafka.level = {level}
"""


def _server_properties(port: int, controller_port: int, log_dir: Path) -> str:
    return f"""\
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:{controller_port}
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}
advertised.listeners=PLAINTEXT://127.0.0.1:{port}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs={log_dir}
num.partitions=3
auto.create.topics.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.retention.hours=168
"""


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def cluster_id() -> str:
    """A random KRaft cluster id, never starting with '-' (the format tool would take it for an option, 1 in 64)."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):
            return text


@dataclass(frozen=True)
class KafkaBroker:
    """One KRaft broker whose storage, config and logs live under `data_dir`."""

    data_dir: Path
    port: int = 9092
    controller_port: int = 9093
    heap: str = "512m"

    def __post_init__(self) -> None:
        if self.port == self.controller_port:
            raise ValueError("Kafka's client port and controller port must differ")

    @property
    def process(self) -> ManagedProcess:
        return ManagedProcess("kafka", self.data_dir)

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _java(self, *args: str) -> list[str]:
        java = os.path.join(os.environ["JAVA_HOME"], "bin", "java") if "JAVA_HOME" in os.environ else "java"
        return [
            java,
            f"-Xmx{self.heap}",
            f"-Dlog4j2.configurationFile={self.data_dir / 'log4j2.properties'}",
            "-Djava.awt.headless=true",
            "-cp",
            f"{KAFKA_LIBS}/*",
            *args,
        ]

    def _configure(self) -> Path:
        if not KAFKA_LIBS.is_dir() or not any(KAFKA_LIBS.glob("kafka_2.13-*.jar")):
            raise StackError(f"Kafka jars not found in {KAFKA_LIBS}: run `make setup` first")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        props = self.data_dir / "server.properties"
        props.write_text(_server_properties(self.port, self.controller_port, self.data_dir / "kafka-logs"))
        (self.data_dir / "log4j2.properties").write_text(
            LOG4J2.format(log=self.data_dir / "kafka-server.log", level="INFO")
        )
        return props

    def _format_once(self, props: Path) -> None:
        if (self.data_dir / "kafka-logs" / "meta.properties").exists():
            return
        import subprocess

        done = subprocess.run(
            self._java("kafka.tools.StorageTool", "format", "-t", cluster_id(), "-c", str(props)),
            capture_output=True,
            text=True,
            timeout=120,
        )
        if done.returncode != 0:
            raise StackError(f"formatting Kafka storage failed:\n{done.stdout}\n{done.stderr}")

    def start(self, timeout: float = 90.0) -> bool:
        """Start the broker unless it runs already; return whether it was started now."""
        if self.process.pid() is not None:
            return False
        for p in (self.port, self.controller_port):
            if port_open(p):
                raise StackError(f"port {p} is already in use by another process: set KAFKA_PORT/KAFKA_CONTROLLER_PORT")
        props = self._configure()
        self._format_once(props)
        self.process.start(self._java("kafka.Kafka", str(props)))
        self.process.wait_ready(self.round_trip, timeout, f"produce/consume round trip on {self.bootstrap_servers}")
        return True

    def round_trip(self) -> bool:
        """Produce one record and read it back; True when the broker serves clients."""
        if not port_open(self.port):
            return False
        from kafka import KafkaConsumer, KafkaProducer
        from kafka.errors import KafkaError

        topic = "__clickpulse_ready"
        marker = uuid.uuid4().hex.encode()
        try:
            producer = KafkaProducer(bootstrap_servers=self.bootstrap_servers, acks="all", request_timeout_ms=5000,
                                     max_block_ms=5000)
            try:
                producer.send(topic, marker).get(timeout=10)
            finally:
                producer.close(timeout=5)
            consumer = KafkaConsumer(topic, bootstrap_servers=self.bootstrap_servers, auto_offset_reset="earliest",
                                     enable_auto_commit=False, consumer_timeout_ms=10000)
            try:
                return any(msg.value == marker for msg in consumer)
            finally:
                consumer.close()
        except (KafkaError, OSError, ValueError):
            time.sleep(0.5)
            return False

    def stop(self) -> bool:
        return self.process.stop(timeout=30.0)
