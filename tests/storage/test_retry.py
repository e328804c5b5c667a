"""Which store errors are retried, how long, and what the log says (the errors are the ones seen on real servers)."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from bson.errors import InvalidDocument
from pymongo.errors import AutoReconnect, BulkWriteError, OperationFailure, ServerSelectionTimeoutError, WriteError

from storage.retry import OutageClock, Retrier, StoreUnavailable, backoff, describe, is_forbidden, is_transient

# FerretDB v1's answers, as seen while its PostgreSQL was stopped, restarting, and for a NUL in a string.
PG_REFUSED = ("[msg_update.go:117 handler.(*Handler).updateDocument] [collection.go:109 postgresql.(*collection).Query] "
              "failed to connect to `user=clickpulse database=ferretdb`:\n\t127.0.0.1:54461 (127.0.0.1): dial error: "
              "dial tcp 127.0.0.1:54461: connect: connection refused")
PG_EXITED = ("[msg_update.go:133 handler.(*Handler).updateDocument] [collection.go:227 postgresql.(*collection).UpdateAll] "
             "FATAL: terminating connection due to unexpected postmaster exit (SQLSTATE 57P01)")
PG_STARTING = ("failed to connect to `user=clickpulse database=ferretdb`:\n\t127.0.0.1:54461 (127.0.0.1): server error: "
               "FATAL: the database system is starting up (SQLSTATE 57P03)")
NUL_REFUSED = ("[msg_update.go:133 handler.(*Handler).updateDocument] [collection.go:163 postgresql.(*collection).InsertAll"
               ".func1] ERROR: unsupported Unicode escape sequence (SQLSTATE 22P05)")


def ferretdb_error(message: str) -> OperationFailure:
    return OperationFailure(message, 1, {"ok": 0.0, "errmsg": message, "code": 1, "codeName": "InternalError"})


@pytest.mark.parametrize("error", [
    ServerSelectionTimeoutError("127.0.0.1:1: [Errno 111] Connection refused"),
    AutoReconnect("connection closed"),
    OperationFailure("not primary", 10107),
    ferretdb_error(PG_REFUSED),
    ferretdb_error(PG_EXITED),
    ferretdb_error(PG_STARTING),
    BulkWriteError({"writeErrors": [], "writeConcernErrors": [{"code": 64, "errmsg": "waiting for replication"}]}),
], ids=["server selection", "connection closed", "not primary", "postgresql down", "postgresql exited",
        "postgresql starting", "write concern"])
def test_errors_of_an_unreachable_or_restarting_store_are_transient(error):
    assert is_transient(error)


@pytest.mark.parametrize("error", [
    ferretdb_error(NUL_REFUSED),
    WriteError("invalid key: \"$a\" (key must not start with '$' sign)", 2, {"index": 0, "code": 2}),
    InvalidDocument("Key names must not contain the NULL byte"),
    BulkWriteError({"writeErrors": [{"index": 0, "code": 11000, "errmsg": "duplicate key"}], "writeConcernErrors": []}),
], ids=["nul in a string", "dollar key", "nul in a key", "duplicate key"])
def test_errors_about_a_document_are_not_transient(error):
    assert not is_transient(error)


def test_an_unauthorized_user_is_neither_retried_nor_a_document_problem():
    error = OperationFailure("not authorized on clickpulse to execute command", 13)
    assert is_forbidden(error) and not is_transient(error)


def test_a_described_error_is_one_line_without_ferretdbs_call_sites():
    assert describe(ferretdb_error(PG_REFUSED)) == (
        "OperationFailure: failed to connect to `user=clickpulse database=ferretdb`: 127.0.0.1:54461 (127.0.0.1): "
        "dial error: dial tcp 127.0.0.1:54461: connect: connection refused")


def test_backoff_doubles_up_to_its_cap_with_jitter():
    delays = backoff(first=1.0, cap=8.0)
    got = [next(delays) for _ in range(6)]
    for delay, ceiling in zip(got, [1, 2, 4, 8, 8, 8], strict=True):
        assert ceiling / 2 <= delay <= ceiling


class Flaky:
    """A store call failing `failures` times with `error`, then answering 'ok'."""

    def __init__(self, failures: int, error: Exception) -> None:
        self.failures, self.error, self.calls = failures, error, 0

    def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return "ok"


def test_a_transient_failure_is_retried_and_the_outage_logged_once_and_its_end_once(caplog, monkeypatch):
    # Given a store that fails three times, and no real waiting between retries
    monkeypatch.setattr("storage.retry.time.sleep", lambda seconds: None)
    call = Flaky(3, AutoReconnect("connection refused"))
    retrier = Retrier("MongoDB at mongodb://db/", timedelta(minutes=5), logging.getLogger("test.retry"))
    # When the call is retried
    with caplog.at_level(logging.INFO, logger="test.retry"):
        assert retrier.call(call) == "ok"
    # Then it ran four times, and the log has one line for the outage and one for its end
    assert call.calls == 4
    assert [r.levelname for r in caplog.records] == ["WARNING", "INFO"]
    assert "is failing (AutoReconnect: connection refused); retrying for up to 300 s" in caplog.records[0].message
    assert "answers again" in caplog.records[1].message


def test_past_retry_for_the_retrier_gives_up_with_one_clear_error(monkeypatch):
    # Given a store that never answers, and a retrier allowed no time at all
    retrier = Retrier("MongoDB at mongodb://app:***@db/", timedelta(0), logging.getLogger("test.retry"))
    # When it calls, Then it gives up at the first failure, naming the store, its limit and the last error
    with pytest.raises(StoreUnavailable, match=r"^MongoDB at mongodb://app:\*\*\*@db/ still failing after \d+ s "
                                               r"\(retrying for at most 0 s\): AutoReconnect: connection refused$"):
        retrier.call(Flaky(10, AutoReconnect("connection refused")))


def test_an_error_about_the_document_is_raised_at_once():
    call = Flaky(1, InvalidDocument("cannot encode object"))
    with pytest.raises(InvalidDocument):
        Retrier("MongoDB", timedelta(minutes=5), logging.getLogger("test.retry")).call(call)
    assert call.calls == 1


def test_a_retried_task_continues_the_outage_clock_of_the_attempt_before_it(tmp_path):
    # Given an outage a first task attempt saw begin at t=100 (its clock is a file)
    path = tmp_path / "outage"
    assert OutageClock(path).began(since=100.0) == 100.0
    # When Spark's next attempt of the task (a new Python worker) fails too, Then its outage began at t=100 as well
    assert OutageClock(path).began(since=160.0) == 100.0
    # And once a write succeeds the outage is over: the next one begins afresh
    OutageClock(path).ended()
    assert OutageClock(path).began(since=200.0) == 200.0


def test_an_outage_file_nobody_touched_for_long_is_a_new_outage(tmp_path):
    path = tmp_path / "outage"
    OutageClock(path).began(since=100.0)
    assert OutageClock(path, stale_after=0.0).began(since=500.0) == 500.0
