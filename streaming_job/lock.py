"""The job's heartbeat file in its checkpoint dir: tells the checkpoint CLI that the job is running."""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

log = logging.getLogger(__name__)

LOCK_FILE = "_clickpulse_job.lock"
HEARTBEAT_SECONDS = 10.0
# A lock whose heartbeat is older than this belongs to a job that died (kill -9, lost machine).
DEFAULT_STALE_SECONDS = 60.0


@dataclass(frozen=True)
class LockInfo:
    pid: int
    host: str
    started_at: str
    heartbeat_at: str
    queries: tuple[str, ...]

    def age_seconds(self, now: datetime | None = None) -> float:
        beat = datetime.fromisoformat(self.heartbeat_at)
        return ((now or datetime.now(UTC)) - beat).total_seconds()


def local_path(checkpoint_dir: str) -> Path | None:
    """The local folder behind a checkpoint location, or None for remote schemes (hdfs://, s3a://)."""
    if checkpoint_dir.startswith("file://"):
        return Path(checkpoint_dir[len("file://"):])
    if "://" in checkpoint_dir:
        return None
    return Path(checkpoint_dir)


def read_lock(checkpoint_dir: Path) -> LockInfo | None:
    """Return the lock in `checkpoint_dir`, or None when there is none; raises ValueError if unreadable."""
    path = checkpoint_dir / LOCK_FILE
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"unreadable lock file {path}: {e}") from e
    return LockInfo(data["pid"], data["host"], data["started_at"], data["heartbeat_at"], tuple(data.get("queries", ())))


class Heartbeat:
    """Writes the lock file now and every `interval` seconds until `stop()`, which removes it."""

    def __init__(self, checkpoint_dir: Path, queries: tuple[str, ...], interval: float = HEARTBEAT_SECONDS) -> None:
        self._path = checkpoint_dir / LOCK_FILE
        self._queries = queries
        self._interval = interval
        self._started = datetime.now(UTC).isoformat()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="clickpulse-heartbeat", daemon=True)

    def _beat(self) -> None:
        info = LockInfo(os.getpid(), socket.gethostname(), self._started, datetime.now(UTC).isoformat(), self._queries)
        tmp = self._path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(info)))
        tmp.replace(self._path)  # atomic, so a reader never sees half a file

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._beat()
            except OSError as e:
                log.warning("could not refresh heartbeat %s: %s", self._path, e)

    def start(self) -> Heartbeat:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        existing = read_lock(self._path.parent)
        if existing and existing.age_seconds() < DEFAULT_STALE_SECONDS and existing.pid != os.getpid():
            log.warning("checkpoint %s has a fresh lock from pid %s on %s: is another job running on it?",
                        self._path.parent, existing.pid, existing.host)
        self._beat()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self._path.unlink(missing_ok=True)
