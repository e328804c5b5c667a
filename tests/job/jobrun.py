"""Running the real job as users do (its own process, real Kafka, real Mongo) and reading what it stored."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from devstack.paths import ROOT, SPARK_JARS
from storage import contract as c
from storage import reads
from storage.journal import JOURNALS

VOLATILE = (c.UPDATED_AT, c.STORED_AT, c.DETAIL)


def spark_home() -> str:
    import pyspark

    return str(Path(pyspark.__file__).parent)


def job_env() -> dict[str, str]:
    return {
        **os.environ,
        "SPARK_HOME": spark_home(),
        "CLICKPULSE_SPARK_JARS": ",".join(str(p) for p in sorted(SPARK_JARS.glob("*.jar"))),
        "PYSPARK_PYTHON": sys.executable,
        "PYTHONPATH": str(ROOT),
    }


def job_args(bootstrap: str, topic: str, mongo_uri: str, database: str, checkpoint: Path, *extra: str) -> list[str]:
    return ["--bootstrap-servers", bootstrap, "--topic", topic, "--mongo-uri", mongo_uri, "--database", database,
            "--checkpoint-dir", str(checkpoint), "--shuffle-partitions", "2", *extra]


def run_job(args: list[str], log: Path, timeout: float = 300, launcher: list[str] | None = None) -> str:
    """Run the job to completion (use `--trigger available-now`); return its log, or fail with the log's tail."""
    cmd = (launcher or [sys.executable, "-m", "streaming_job"]) + args
    with log.open("a") as out:
        proc = subprocess.Popen(cmd, env=job_env(), cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_hard(proc)
            raise AssertionError(f"job did not finish within {timeout}s:\n{_tail(log)}") from None
    if code != 0:
        raise AssertionError(f"job exited {code}:\n{_tail(log)}")
    return log.read_text()


def _tail(log: Path, chars: int = 4000) -> str:
    return log.read_text(errors="replace")[-chars:]


def start_job(args: list[str], log: Path, extra_env: dict[str, str] | None = None) -> subprocess.Popen:
    """Start the job in the background, in its own process group (so a kill reaches the JVM too)."""
    with log.open("w") as out:
        return subprocess.Popen([sys.executable, "-m", "streaming_job", *args], env={**job_env(), **(extra_env or {})},
                                cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def kill_hard(proc: subprocess.Popen) -> None:
    """kill -9 the job's whole process group: no shutdown hooks, no clean commit."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=30)


def stop_gracefully(proc: subprocess.Popen, timeout: float = 60) -> None:
    """SIGTERM the process group (the job stops its queries gracefully), kill -9 after `timeout` seconds."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_hard(proc)


def poll(condition: Callable[[], bool], timeout: float, what: str, interval: float = 0.5) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def _naive(d: dict) -> dict:
    return {k: (v.astimezone(UTC).replace(tzinfo=None) if isinstance(v, datetime) and v.tzinfo else v)
            for k, v in d.items()}


def _pane_windows(db, collection: str, windows) -> list[datetime]:
    """Start of every window that covers at least one stored pane of `collection`, or of its journal (test data is
    small: a full read)."""
    journals = [JOURNALS[collection]] if collection in JOURNALS else []
    panes = {reads.utc(d[c.PANE_START]) for coll in (collection, *journals) for d in db[coll].find({}, {c.PANE_START: 1})}
    n = windows.size // windows.slide
    return sorted({p - k * windows.slide for p in panes for k in range(n)})


def stored(db) -> dict[str, dict[str, dict]]:
    """What the job stored, as windows read back through the read API (storage/reads.py), keyed like the reference:
    every active-users window, every window's page views and users, every invalid event and every bot second (without
    write times).
    """
    out: dict[str, dict[str, dict]] = {c.ACTIVE_USERS: {}, c.PAGE_VIEWS: {}, c.USER_SESSIONS: {}}
    for doc in db[c.ACTIVE_USERS].find():
        for w in reads.active_windows([doc]):
            out[c.ACTIVE_USERS][c.window_id(w[c.WINDOW_START])] = _naive(
                {k: w[k] for k in (c.WINDOW_START, c.WINDOW_END, c.ACTIVE_USERS_COUNT)})
    lay = reads.layout(db)
    if lay is not None:
        for start in _pane_windows(db, c.PAGE_VIEWS, lay.page_views):
            views = reads.page_views(db, lay, start + lay.page_views.size, limit=10**9)
            for p in views.pages:
                out[c.PAGE_VIEWS][c.window_id(start, p[c.PAGE_URL])] = _naive({**views.window, **p})
        for start in _pane_windows(db, c.USER_SESSIONS, lay.user_sessions):
            window, users = reads.window_users(db, lay, start + lay.user_sessions.size)
            for u in users:
                out[c.USER_SESSIONS][c.window_id(start, u[c.USER_ID])] = _naive({**window, **u})
    docs = {}
    for d in db[c.INVALID_EVENTS].find():
        key = d.pop(c.ID)
        for f in VOLATILE:
            d.pop(f, None)
        d[c.KAFKA_TIMESTAMP] = d[c.KAFKA_TIMESTAMP].replace(tzinfo=None)
        docs[key] = d
    out[c.INVALID_EVENTS] = docs
    out[c.BOT_ACTIVITY] = {}
    for d in db[c.BOT_ACTIVITY].find():
        key = d.pop(c.ID)
        d.pop(c.UPDATED_AT, None)
        d[c.SECOND] = d[c.SECOND].replace(tzinfo=None)
        out[c.BOT_ACTIVITY][key] = d
    return out


def mismatches(got: dict[str, dict[str, dict]], want: dict[str, dict[str, dict]]) -> list[str]:
    """Human-readable differences, at most a few per collection (empty when equal)."""
    problems = []
    for coll, expected in want.items():
        actual = got.get(coll, {})
        missing = sorted(set(expected) - set(actual))[:3]
        extra = sorted(set(actual) - set(expected))[:3]
        wrong = [k for k in sorted(set(expected) & set(actual)) if expected[k] != actual[k]][:3]
        problems += [f"{coll}: missing {k} {expected[k]}" for k in missing]
        problems += [f"{coll}: unexpected {k} {actual[k]}" for k in extra]
        problems += [f"{coll}: {k} {difference(actual[k], expected[k])}" for k in wrong]
    return problems


def difference(actual: dict, expected: dict) -> str:
    """Only the fields that differ, and inside sub-documents only the keys that do."""
    parts = []
    for f in sorted(set(actual) | set(expected)):
        got, want = actual.get(f), expected.get(f)
        if got == want:
            continue
        if isinstance(got, dict) and isinstance(want, dict):
            keys = sorted(k for k in set(got) | set(want) if got.get(k) != want.get(k))
            parts.append(f"{f}: " + ", ".join(f"{k} is {got.get(k)}, expected {want.get(k)}" for k in keys[:5])
                         + (f" (and {len(keys) - 5} more)" if len(keys) > 5 else ""))
        else:
            parts.append(f"{f} is {got!r}, expected {want!r}")
    return "; ".join(parts)
