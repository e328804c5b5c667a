"""The local stack the tests (and `make stack-up`) run on answers real clients."""

from __future__ import annotations

import pytest

from devstack.__main__ import run_cli
from tests.job.jobrun import poll

pytestmark = pytest.mark.integration


def test_kafka_broker_round_trips_a_record(stack):
    # Given the session's broker, When a record is produced and consumed, Then it comes back.
    assert stack.kafka.round_trip()


def test_mongo_server_answers_ping(stack):
    assert stack.mongo.ping()


def test_starting_a_running_stack_again_is_harmless(stack):
    # When up() is called on servers that already run, Then nothing is started twice.
    started = stack.up()
    assert {"mongo", "kafka"} <= set(started) and not any(started.values())


def test_status_cli_exits_zero_when_both_servers_answer(stack, capsys):
    code = run_cli(["status", "--data-dir", str(stack.data_dir), "--kafka-port", str(stack.kafka_port),
                    "--kafka-controller-port", str(stack.kafka_controller_port), "--mongo-port", str(stack.mongo_port),
                    "--postgres-port", str(stack.postgres_port)])
    assert code == 0
    assert "127.0.0.1" in capsys.readouterr().out


def test_bad_port_in_environment_exits_with_one_clear_line(monkeypatch, capsys):
    # Given a port variable that is not a number
    monkeypatch.setenv("KAFKA_PORT", "ninety")
    # When the CLI starts
    with pytest.raises(SystemExit) as exited:
        run_cli(["status"])
    # Then it is a usage error, in one line that names the variable
    err = capsys.readouterr().err
    assert exited.value.code == 2
    assert "not a whole number: 'ninety' (from env KAFKA_PORT)" in err and err.count("\n") == 1


def test_stopping_a_stack_leaves_no_process_behind(tmp_path):
    # Given a second, throwaway stack that is up
    from devstack.process import pid_alive
    from devstack.stack import LocalStack

    other = LocalStack.on_free_ports(tmp_path / "other")
    try:
        other.up()
        pids = [other.kafka.process.pid(), other.mongo.process.pid()]
        if other.mongo.postgres is not None:
            pids.append(other.mongo.postgres.process.pid())
        assert all(pids)
    finally:
        # When it is stopped
        other.down()
        if other.mongo.postgres is not None:
            other.mongo.postgres.remove()
    # Then none of its servers runs any more
    assert not any(pid_alive(p) for p in pids)


def test_kraft_cluster_ids_never_start_with_a_dash():
    # The storage tool would read one as an option; uuid4 gives such an id once in 64 draws
    from devstack.kafka import cluster_id

    assert not any(cluster_id().startswith("-") for _ in range(2000))


def test_up_restarts_a_postgresql_that_died_under_a_running_ferretdb(tmp_path, capsys):
    import json
    import os
    import signal

    from devstack.process import pid_alive
    from devstack.stack import LocalStack

    other = LocalStack.on_free_ports(tmp_path / "healing")
    pg = other.mongo.postgres
    if pg is None:
        pytest.skip("mongod on PATH: no PostgreSQL under it")
    ports = ["--data-dir", str(other.data_dir), "--kafka-port", str(other.kafka_port), "--kafka-controller-port",
             str(other.kafka_controller_port), "--mongo-port", str(other.mongo_port), "--postgres-port",
             str(other.postgres_port)]
    try:
        # Given a FerretDB whose PostgreSQL died (kill -9 of its postmaster)
        other.mongo.start()
        postmaster = int((pg.cluster_dir / "postmaster.pid").read_text().split()[0])
        os.kill(postmaster, signal.SIGKILL)
        poll(lambda: not pid_alive(postmaster) and pg.process.pid() is None, timeout=30, what="PostgreSQL to die")
        # Then status tells the parts apart: PostgreSQL is down while FerretDB still runs
        assert run_cli(["status", "--json", *ports]) == 1
        rows = {r["server"].split()[0]: r for r in json.loads(capsys.readouterr().out)}
        assert (rows["postgres"]["pid"], rows["postgres"]["answers"]) == (None, False)
        assert rows["mongo"]["pid"] is not None
        # When the stack is brought up (its Mongo-wire part: Kafka has no part in this)
        started = other.mongo.start()
        # Then PostgreSQL was started again, FerretDB kept running, and it answers
        assert started == {"postgres": True, "mongo": False}
        assert other.mongo.ping()
    finally:
        other.down()
        pg.remove()
