"""Riding out store outages: which errors are transient, backoff with jitter, and one clock per outage.

Every write the job makes is idempotent (a replace or `$set` by `_id`), so repeating one after a connection dropped
mid-command is always safe.
"""

from __future__ import annotations

import hashlib
import logging
import os
import random
import re
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TypeVar

from pymongo.errors import BulkWriteError, ConnectionFailure, OperationFailure, WriteConcernError

T = TypeVar("T")

# MongoDB's codes for a server that is unreachable, restarting, stepping down or out of time: the drivers' retryable
# set, plus lock, write-concern and time-limit timeouts.
TRANSIENT_CODES = frozenset({6, 7, 24, 50, 64, 89, 91, 134, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436})
# Codes that no retry and no dead letter can help: the job's user may not write here at all.
FORBIDDEN_CODES = frozenset({13, 18})
# FerretDB answers InternalError (1) with PostgreSQL's message when its backend is down or restarting, seen here as:
# "failed to connect to `user=… database=…`: … connect: connection refused", "FATAL: terminating connection due to
# unexpected postmaster exit (SQLSTATE 57P01)", "FATAL: the database system is starting up (SQLSTATE 57P03)".
# SQLSTATE classes 08 (connection), 40 (rollback), 53 (resources), 57P (shutdown) and 58 (I/O) are the server's state;
# others, such as 22P05 for a NUL in a string, are the document's.
_INTERNAL_ERROR = 1
_BACKEND_DOWN = re.compile(
    r"SQLSTATE (?:08|40|53|57P|58)[0-9A-Z]*\)|failed to connect to|connection refused|conn closed|unexpected EOF"
    r"|connection reset|broken pipe|i/o timeout|context deadline exceeded",
    re.IGNORECASE,
)
# FerretDB prefixes its messages with Go call sites: "[msg_update.go:133 handler.(*Handler).updateDocument] ".
_GO_FRAMES = re.compile(r"\[[\w./()*-]+\.go:\d+ [^\]]*\] ?")


def is_transient(error: BaseException) -> bool:
    """True when `error` says the store is unreachable or busy (retry the same write), not that a write is bad."""
    if isinstance(error, BulkWriteError):
        # Only write-concern errors: every write was applied, but not confirmed as asked.
        details = error.details or {}
        return not details.get("writeErrors") and bool(details.get("writeConcernErrors"))
    if isinstance(error, ConnectionFailure | WriteConcernError):
        return True  # refused, reset, timed out, no server selectable, not primary
    if isinstance(error, OperationFailure):
        if error.has_error_label("RetryableWriteError") or error.has_error_label("TransientTransactionError"):
            return True
        if error.code in TRANSIENT_CODES:
            return True
        if error.code in (_INTERNAL_ERROR, None):
            return bool(_BACKEND_DOWN.search(_message(error)))
    return False


def is_forbidden(error: BaseException) -> bool:
    """True when the store refuses the job's user (not its documents): neither retrying nor dead letters help."""
    return isinstance(error, OperationFailure) and error.code in FORBIDDEN_CODES


def _message(error: BaseException) -> str:
    if isinstance(error, OperationFailure) and isinstance(error.details, dict) and error.details.get("errmsg"):
        return str(error.details["errmsg"])
    # pymongo appends its timeouts and, after a failed server selection, the whole topology: not for a log line.
    return str(error).split(", full error: ")[0].split(" (configured timeouts:")[0]


def describe(error: BaseException, limit: int = 500) -> str:
    """One readable line: the error's type and message, without FerretDB's Go call sites or pymongo's full reply."""
    text = " ".join(_GO_FRAMES.sub("", _message(error)).split())
    line = f"{type(error).__name__}: {text}" if text else type(error).__name__
    return line if len(line) <= limit else line[: limit - 1] + "…"


class StoreUnavailable(RuntimeError):
    """The store kept failing for longer than the writer was allowed to retry (or the writer was stopped)."""


def backoff(first: float = 0.5, cap: float = 10.0) -> Iterator[float]:
    """Delays before each retry: doubling from `first` up to `cap`, each with up to half of it taken off at random.

    The jitter keeps writers that failed together from hammering a recovering server together.
    """
    delay = first
    while True:
        yield delay * random.uniform(0.5, 1.0)
        delay = min(cap, delay * 2)


class OutageClock:
    """When the current outage began, on the wall clock; in memory, or in a small file when `path` is given.

    Spark runs a failed task again in a new Python worker. A file lets that attempt continue the outage's clock
    instead of restarting it, so a job gives up after `retry_for` of outage, not after `retry_for` per task attempt.
    A file nobody touched for `stale_after` seconds is from an outage that ended unseen: it starts over.
    """

    def __init__(self, path: Path | None = None, stale_after: float = 180.0) -> None:
        self._path = path
        self._stale_after = stale_after
        self._began: float | None = None

    def began(self, since: float) -> float:
        """The outage's start (`since`, the failed call's start, when none is going on); marks it as still going."""
        if self._path is not None:
            try:
                return self._began_on_file(since)
            except (OSError, ValueError):
                self._path = None  # an unwritable temp dir: count this writer's own outage only
        if self._began is None:
            self._began = since
        return self._began

    def _began_on_file(self, since: float) -> float:
        assert self._path is not None
        try:
            fresh = time.time() - self._path.stat().st_mtime < self._stale_after
            began = float(self._path.read_text()) if fresh else None
        except FileNotFoundError:
            began = None
        if began is None:
            self._path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._path.write_text(repr(since))
            return since
        os.utime(self._path)
        return began

    def ended(self) -> None:
        self._began = None
        if self._path is not None:
            try:
                self._path.unlink(missing_ok=True)
            except OSError:
                pass


def executor_clock(key: str) -> OutageClock:
    """The outage clock the writers of this executor share for one store (`key`: its URI and database).

    Keyed by the parent process too: a Spark executor's Python workers share it (the PySpark daemon, or the executor
    itself), so another job on this host keeps a clock of its own.
    """
    digest = hashlib.sha256(f"{key}|{os.getppid()}".encode()).hexdigest()[:20]
    return OutageClock(Path(tempfile.gettempdir()) / f"clickpulse-{os.getuid()}" / f"outage-{digest}")


@dataclass
class Retrier:
    """Runs store calls, retrying transient failures with backoff for up to `retry_for` of continuous outage.

    Logs an outage once when it starts and once when it ends, not once per attempt. Past `retry_for` (None: no limit)
    raises `StoreUnavailable`; so does `stop` being set while it waits. Other errors propagate at once.
    """

    what: str  # "MongoDB at mongodb://host/", for log lines and the final error
    retry_for: timedelta | None
    log: logging.Logger
    clock: OutageClock | None = None
    stop: threading.Event | None = None

    def __post_init__(self) -> None:
        self.clock = self.clock or OutageClock()
        self._failing: BaseException | None = None
        self._began = 0.0
        self._retries = 0

    def call(self, fn: Callable[[], T]) -> T:
        delays = backoff()
        while True:
            started = time.time()
            try:
                result = fn()
            except Exception as e:
                if not is_transient(e):
                    raise
                self._wait(e, started, next(delays))
                continue
            if self._failing is not None:
                self._recovered()
            return result

    def _wait(self, error: BaseException, started: float, delay: float) -> None:
        assert self.clock is not None
        self._began = self.clock.began(started)
        elapsed = max(0.0, time.time() - self._began)
        if self._failing is None:
            limit = "without limit" if self.retry_for is None else f"for up to {_seconds(self.retry_for)}"
            self.log.warning("%s is failing (%s); retrying %s", self.what, describe(error), limit)
        self._failing = error
        left = None if self.retry_for is None else self.retry_for.total_seconds() - elapsed
        if left is not None and left <= 0:
            # `from None`: the message names the last error; its traceback would only lengthen Spark's task logs.
            raise StoreUnavailable(f"{self.what} still failing after {elapsed:.0f} s (retrying for at most "
                                   f"{_seconds(self.retry_for)}): {describe(error)}") from None
        pause = delay if left is None else min(delay, left)
        self._retries += 1
        if self.stop is not None:
            if self.stop.wait(pause):
                raise StoreUnavailable(f"{self.what}: stopped while retrying ({describe(error)})") from None
        else:
            time.sleep(pause)

    def _recovered(self) -> None:
        assert self.clock is not None
        elapsed = max(0.0, time.time() - self._began)
        self.clock.ended()
        self.log.info("%s answers again (outage of %.0f s, %d retries)", self.what, elapsed, self._retries)
        self._failing = None
        self._retries = 0


def _seconds(d: timedelta | None) -> str:
    return "ever" if d is None else f"{d.total_seconds():g} s"
