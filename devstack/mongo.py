"""A MongoDB-wire server on loopback: `mongod` when installed, else FerretDB v1 over PostgreSQL.

FerretDB's SQLite backend was tried first: it scans a table for every upsert (about 20 upserts/s at
20k documents, against about 200/s on PostgreSQL, measured here) and hung under concurrent bulk
upserts. So the stack runs FerretDB's PostgreSQL backend on a private PostgreSQL server.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from devstack.kafka import port_open
from devstack.paths import FERRETDB_BIN, mongod_binary
from devstack.postgres import PostgresServer
from devstack.process import ManagedProcess, StackError


@dataclass(frozen=True)
class MongoServer:
    """One MongoDB-wire server whose data and log live under `data_dir`."""

    data_dir: Path
    port: int = 27017
    postgres_port: int = 55432

    @property
    def postgres(self) -> PostgresServer | None:
        return None if mongod_binary() else PostgresServer(self.data_dir, self.postgres_port)

    @property
    def process(self) -> ManagedProcess:
        return ManagedProcess("mongo", self.data_dir)

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/"

    @property
    def flavour(self) -> str:
        return "mongod" if mongod_binary() else "FerretDB v1 (PostgreSQL)"

    def _argv(self) -> list[str]:
        mongod = mongod_binary()
        if mongod:
            db = self.data_dir / "mongod"
            db.mkdir(parents=True, exist_ok=True)
            return [mongod, "--bind_ip", "127.0.0.1", "--port", str(self.port), "--dbpath", str(db), "--quiet"]
        if not FERRETDB_BIN.exists():
            raise StackError(f"no mongod on PATH and FerretDB not built at {FERRETDB_BIN}: run `make setup` first")
        assert self.postgres is not None
        return [str(FERRETDB_BIN), "-listen", f"127.0.0.1:{self.port}", "-postgresql-url", self.postgres.url]

    def start(self, timeout: float = 60.0) -> dict[str, bool]:
        """Start whichever part is not running (FerretDB's PostgreSQL first); return which parts were started now.

        A PostgreSQL that died under a running FerretDB is started again: FerretDB reconnects to it by itself.
        """
        started: dict[str, bool] = {}
        if self.postgres is not None:
            started["postgres"] = self.postgres.start()
        if self.process.pid() is not None:
            if started.get("postgres"):
                self.process.wait_ready(self.ping, timeout, f"Mongo ping on {self.uri} after PostgreSQL restarted")
            return {**started, "mongo": False}
        if port_open(self.port):
            raise StackError(f"port {self.port} is already in use by another process: set MONGO_PORT")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.process.start(self._argv())
        self.process.wait_ready(self.ping, timeout, f"Mongo ping on {self.uri}")
        return {**started, "mongo": True}

    def ping(self) -> bool:
        if not port_open(self.port):
            return False
        from pymongo import MongoClient
        from pymongo.errors import PyMongoError

        client = MongoClient(self.uri, serverSelectionTimeoutMS=2000)
        try:
            return client.admin.command("ping").get("ok") == 1
        except PyMongoError:
            return False
        finally:
            client.close()

    def stop(self) -> dict[str, bool]:
        """Stop the server, then its PostgreSQL; return which parts were running."""
        was = {"mongo": self.process.stop(timeout=15.0)}
        if self.postgres is not None:
            was["postgres"] = self.postgres.stop()
        return was
