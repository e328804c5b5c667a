"""A PostgreSQL server on loopback: the storage FerretDB runs on in the local stack."""

from __future__ import annotations

import glob
import hashlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from devstack.process import ManagedProcess, StackError

USER = "clickpulse"
DATABASE = "ferretdb"


def pg_bin(name: str) -> str:
    """Path of a PostgreSQL server program (Debian keeps them out of PATH)."""
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None)
    if not found:
        raise StackError(f"PostgreSQL's {name} not found: run `make setup` (installs Debian's postgresql)")
    return found


def _as_server_user(argv: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root; run it as Debian's `postgres` user then.
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


@dataclass(frozen=True)
class PostgresServer:
    """One PostgreSQL cluster (trust auth, loopback only) belonging to the stack in `data_dir`."""

    data_dir: Path
    port: int = 55432

    @property
    def cluster_dir(self) -> Path:
        """Where the cluster's files are: under `data_dir`, unless root must hand them to `postgres`.

        As root the server runs as `postgres`, which cannot enter private folders such as pytest's
        temporary ones, so the cluster then lives in a folder of its own under the system temp dir.
        """
        if os.geteuid() != 0:
            return self.data_dir / "pgdata"
        key = hashlib.sha256(str(self.data_dir.resolve()).encode()).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"clickpulse-pg-{key}"

    @property
    def process(self) -> ManagedProcess:
        return ManagedProcess("postgres", self.data_dir)

    @property
    def url(self) -> str:
        return f"postgres://{USER}@127.0.0.1:{self.port}/{DATABASE}?pool_max_conns=150"

    def _init_once(self) -> None:
        cluster = self.cluster_dir
        if (cluster / "PG_VERSION").exists():
            return
        cluster.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(cluster, "postgres", "postgres")
        done = subprocess.run(
            _as_server_user([pg_bin("initdb"), "-D", str(cluster), "-U", USER, "--auth=trust", "-E", "UTF8"]),
            capture_output=True, text=True, timeout=120,
        )
        if done.returncode != 0:
            raise StackError(f"initdb failed:\n{done.stdout}\n{done.stderr}")

    def start(self, timeout: float = 60.0) -> bool:
        """Start the server unless it runs already, and create FerretDB's database; True if started now."""
        if self.process.pid() is not None:
            return False
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._init_once()
        self.process.start(_as_server_user([
            pg_bin("postgres"), "-D", str(self.cluster_dir), "-p", str(self.port), "-k", str(self.cluster_dir),
            "-c", "listen_addresses=127.0.0.1", "-c", "max_connections=200",
        ]))
        self.process.wait_ready(self.ready, timeout, f"PostgreSQL on 127.0.0.1:{self.port}")
        done = subprocess.run([pg_bin("createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", USER, DATABASE],
                              capture_output=True, text=True, timeout=30)
        if done.returncode != 0 and "already exists" not in done.stderr:
            raise StackError(f"createdb failed: {done.stderr.strip()}")
        return True

    def ready(self) -> bool:
        done = subprocess.run([pg_bin("pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port)],
                              capture_output=True, timeout=10)
        return done.returncode == 0

    def stop(self) -> bool:
        """Stop the server in PostgreSQL's fast mode: its clients (FerretDB's pool) are disconnected, not waited for.

        A plain SIGTERM asks for a smart shutdown, which waits for every client to leave; FerretDB never does.
        """
        if self.process.pid() is not None:
            subprocess.run(_as_server_user([pg_bin("pg_ctl"), "stop", "-D", str(self.cluster_dir), "-m", "fast", "-w",
                                            "-t", "30"]), capture_output=True, timeout=60)
        return self.process.stop(timeout=30.0)

    def remove(self) -> None:
        """Delete the cluster's files (for throwaway stacks such as the tests')."""
        shutil.rmtree(self.cluster_dir, ignore_errors=True)
