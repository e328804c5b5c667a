"""The job's lock file in its checkpoint dir: its name, its format and how to read it.

The job writes it (a heartbeat, streaming_job/lock.py) while it runs; the checkpoint CLI and the Docker health
check read it to tell a running job from a stopped or dead one.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

LOCK_FILE = "_clickpulse_job.lock"
HEARTBEAT_SECONDS = 10.0
# A lock whose heartbeat is older than this belongs to a job that died (kill -9, lost machine).
DEFAULT_STALE_SECONDS = 60.0


@dataclass(frozen=True)
class LockInfo:
    """One lock file: which process holds the checkpoint, since when, its last heartbeat and its queries."""

    pid: int
    host: str
    started_at: str
    heartbeat_at: str
    queries: tuple[str, ...]

    def age_seconds(self, now: datetime | None = None) -> float:
        beat = datetime.fromisoformat(self.heartbeat_at)
        return ((now or datetime.now(UTC)) - beat).total_seconds()

    def to_json(self) -> str:
        """The file's content: one JSON object with the fields above (ISO-8601 times, queries as a list)."""
        return json.dumps(asdict(self))


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
