"""Is the job running on this checkpoint? Read from the heartbeat file the job refreshes while it runs."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from checkpoint_tools.layout import CheckpointError
from clickpulse.lock import DEFAULT_STALE_SECONDS, LOCK_FILE, LockInfo, read_lock

log = logging.getLogger(__name__)

__all__ = ["DEFAULT_STALE_SECONDS", "JobStatus", "job_status", "refuse_if_running"]


@dataclass(frozen=True)
class JobStatus:
    """`state` is "running" (fresh heartbeat), "stale" (a job died without removing its lock) or "stopped" (no lock)."""

    state: str
    lock_path: Path
    info: LockInfo | None = None
    age_seconds: float | None = None
    stale_after: float = DEFAULT_STALE_SECONDS

    @property
    def running(self) -> bool:
        return self.state == "running"

    def runs(self, query: str) -> bool:
        return self.running and (self.info is None or not self.info.queries or query in self.info.queries)

    def describe(self) -> str:
        if self.state == "stopped":
            return "not running (no lock file)"
        who = f"pid {self.info.pid} on {self.info.host}" if self.info else "unreadable lock file"
        return f"{self.state} ({who}, heartbeat {self.age_seconds:.0f}s ago)"

    def as_dict(self) -> dict[str, object]:
        return {
            "state": self.state,
            "lock_file": str(self.lock_path),
            "pid": self.info.pid if self.info else None,
            "host": self.info.host if self.info else None,
            "started_at": self.info.started_at if self.info else None,
            "heartbeat_age_seconds": None if self.age_seconds is None else round(self.age_seconds, 1),
            "queries": list(self.info.queries) if self.info else [],
        }


def job_status(base: Path, stale_after: float = DEFAULT_STALE_SECONDS, now: datetime | None = None) -> JobStatus:
    """The job's status from `base`/_clickpulse_job.lock; a heartbeat older than `stale_after` seconds is stale."""
    now = now or datetime.now(UTC)
    path = base / LOCK_FILE
    try:
        info = read_lock(base)
    except (ValueError, KeyError, TypeError) as e:
        # Unreadable (the job writes it atomically, so someone else did): judge by the file's age alone.
        try:
            age = now.timestamp() - path.stat().st_mtime
        except OSError:
            return JobStatus("stopped", path, stale_after=stale_after)
        log.warning("%s", str(e).splitlines()[0] if str(e) else f"unreadable lock file {path}")
        return JobStatus("running" if age < stale_after else "stale", path, None, age, stale_after)
    if info is None:
        return JobStatus("stopped", path, stale_after=stale_after)
    try:
        age = info.age_seconds(now)
    except (TypeError, ValueError):
        age = now.timestamp() - path.stat().st_mtime
    return JobStatus("running" if age < stale_after else "stale", path, info, age, stale_after)


def refuse_if_running(status: JobStatus, action: str, warn: bool = True) -> None:
    """Raise CheckpointError while the job runs; warn (and carry on) about a stale lock."""
    if status.running:
        who = f"pid {status.info.pid} on host {status.info.host}" if status.info else "an unreadable lock"
        raise CheckpointError(
            f"refusing to {action}: the job is running on this checkpoint ({who}, heartbeat {status.age_seconds:.0f}s "
            f"ago, {status.lock_path}); stop it first (a dead job's lock counts as stale after {status.stale_after:g}s, "
            "see --stale-after)"
        )
    if status.state == "stale" and warn:
        who = f"pid {status.info.pid} on host {status.info.host}" if status.info else "an unknown job"
        log.warning("ignoring a stale lock from %s: its last heartbeat was %.0fs ago, so that job is gone (%s)",
                    who, status.age_seconds or 0, status.lock_path)
