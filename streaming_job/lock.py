"""The job's heartbeat: writes the lock file (format in clickpulse/lock.py) in its checkpoint dir while it runs."""

from __future__ import annotations

import logging
import os
import socket
import threading
from datetime import UTC, datetime
from pathlib import Path

from clickpulse.lock import DEFAULT_STALE_SECONDS, HEARTBEAT_SECONDS, LOCK_FILE, LockInfo, read_lock

log = logging.getLogger(__name__)


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
        tmp.write_text(info.to_json())
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
