"""The local stack as one unit: a Kafka broker and a Mongo-wire server sharing a data folder."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path

from devstack.kafka import KafkaBroker
from devstack.mongo import MongoServer


def free_port() -> int:
    """Return a TCP port on loopback that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class LocalStack:
    """Kafka + Mongo on 127.0.0.1, data under `data_dir`."""

    data_dir: Path
    kafka_port: int = 9092
    kafka_controller_port: int = 9093
    mongo_port: int = 27017
    postgres_port: int = 55432

    @classmethod
    def on_free_ports(cls, data_dir: Path) -> LocalStack:
        ports = {free_port() for _ in range(8)}
        if len(ports) < 4:
            raise RuntimeError("could not find four free loopback ports")
        kafka, controller, mongo, postgres = sorted(ports)[:4]
        return cls(data_dir, kafka, controller, mongo, postgres)

    @property
    def kafka(self) -> KafkaBroker:
        return KafkaBroker(self.data_dir / "kafka", self.kafka_port, self.kafka_controller_port)

    @property
    def mongo(self) -> MongoServer:
        return MongoServer(self.data_dir / "mongo", self.mongo_port, self.postgres_port)

    @property
    def bootstrap_servers(self) -> str:
        return self.kafka.bootstrap_servers

    @property
    def mongo_uri(self) -> str:
        return self.mongo.uri

    def up(self) -> dict[str, bool]:
        """Start every part that is not running (idempotent, and heals a part that died); return which started now."""
        started = self.mongo.start()
        started["kafka"] = self.kafka.start()
        return started

    def down(self) -> dict[str, bool]:
        """Stop every part; return which were running."""
        return {"kafka": self.kafka.stop(), **self.mongo.stop()}

    def status(self) -> list[dict[str, object]]:
        """One row per part: its pid (None when not running), address, whether it answers clients, and its log."""
        rows = [
            {"server": "kafka", "pid": self.kafka.process.pid(), "address": self.bootstrap_servers,
             "answers": self.kafka.round_trip() if self.kafka.process.pid() else False,
             "log": str(self.kafka.process.log_file)},
        ]
        pg = self.mongo.postgres
        if pg is not None:
            rows.append({"server": "postgres (FerretDB's storage)", "pid": pg.process.pid(),
                         "address": f"127.0.0.1:{pg.port}", "answers": pg.ready() if pg.process.pid() else False,
                         "log": str(pg.process.log_file)})
        rows.append({"server": f"mongo ({self.mongo.flavour})", "pid": self.mongo.process.pid(),
                     "address": self.mongo_uri, "answers": self.mongo.ping() if self.mongo.process.pid() else False,
                     "log": str(self.mongo.process.log_file)})
        return rows
