"""docker/docker-compose.yml, checked without a Docker engine: structure, commands, files, ordering, secrets."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.docker.documented import (
    CLUSTER_GUIDE,
    COMPOSE_FILE,
    DOCUMENTED,
    README,
    ROOT,
    command_of,
    compose,
    env_example,
    interpolated_variables,
    service,
    shell_commands,
)

PROGRAMS = sorted(DOCUMENTED)
INFRASTRUCTURE = ("kafka", "mongo")


def test_compose_file_defines_kafka_mongo_and_the_three_programs():
    # Given the compose file
    # When it is parsed
    services = compose()["services"]
    # Then it holds exactly the stack of the issue
    assert set(services) == {*INFRASTRUCTURE, *PROGRAMS}


@pytest.mark.parametrize("name", PROGRAMS)
def test_each_program_service_runs_the_documented_command(name: str):
    # Given a program's service
    # When its command is read
    argv = command_of(name)
    # Then it is the documented command, word for word
    assert argv == DOCUMENTED[name].argv


def _shows(command: str, program: tuple[str, ...]) -> bool:
    """Whether `command` runs `program`: its first word, then the program's other words in order.

    A word may sit in a comma-separated list (`--packages a,b`); other options may come between.
    """
    try:
        words = shlex.split(command)
    except ValueError:  # an inline code span that is not a whole shell command (unbalanced quotes)
        words = command.split()
    while words and re.match(r"^[A-Z_]+=", words[0]):  # leading VAR=value assignments
        words = words[1:]
    if not words or words[0] != program[0]:
        return False
    rest = iter(words[1:])
    return all(any(want == w or want in w.split(",") for w in rest) for want in program[1:])


@pytest.mark.parametrize("name", PROGRAMS)
def test_the_readme_or_cluster_guide_shows_each_program_command(name: str):
    # Given the commands in the README and the cluster guide (code blocks and inline code)
    docs = "\n".join(p.read_text() for p in (README, CLUSTER_GUIDE) if p.exists())
    commands = shell_commands(docs) + re.findall(r"`([^`\n]+)`", docs)
    # When we look for the program the container runs
    program = DOCUMENTED[name].program
    # Then the documentation shows it run the same way
    assert any(_shows(c, program) for c in commands), f"README.md and docs/cluster.md never run `{' '.join(program)}`"


def test_the_program_services_are_built_from_the_repository_dockerfile():
    # Given the three program services
    for name in PROGRAMS:
        build = service(name)["build"]
        context = (COMPOSE_FILE.parent / build["context"]).resolve()
        # Then each builds docker/Dockerfile with the repository root as its context
        assert context == ROOT, name
        assert (context / build["dockerfile"]).is_file(), name


def test_every_file_the_compose_file_references_exists():
    # Given every service
    for name, svc in compose()["services"].items():
        # Then each env_file and bind-mounted host path exists
        env_files = svc.get("env_file", [])
        for entry in [env_files] if isinstance(env_files, str | dict) else env_files:
            path = entry["path"] if isinstance(entry, dict) else entry
            required = entry.get("required", True) if isinstance(entry, dict) else True
            assert not required or (COMPOSE_FILE.parent / path).is_file(), f"{name}: env_file {path}"
        for volume in svc.get("volumes", []):
            source = volume.split(":")[0] if isinstance(volume, str) else volume.get("source", "")
            if source.startswith((".", "/")):
                assert (COMPOSE_FILE.parent / source).exists(), f"{name}: volume {source}"
            else:
                # a named volume must be declared at the top level
                assert source in (compose().get("volumes") or {}), f"{name}: undeclared volume {source}"
    # And the scripts the programs run are in the repository
    for name in PROGRAMS:
        for word in command_of(name):
            if word.endswith(".py"):
                assert (ROOT / word).is_file(), f"{name} runs {word}, which does not exist"


@pytest.mark.parametrize("name", PROGRAMS)
def test_programs_start_only_after_what_they_need_is_healthy(name: str):
    # Given what each program talks to
    needs = {"job": {"kafka", "mongo"}, "producer": {"kafka"}, "report": {"kafka", "mongo"}}[name]
    # When its depends_on is read
    depends = service(name)["depends_on"]
    # Then it waits for each of them to be healthy
    assert set(depends) == needs
    assert all(depends[dep]["condition"] == "service_healthy" for dep in needs)


@pytest.mark.parametrize("name", [*INFRASTRUCTURE, "job", "report"])
def test_long_running_services_have_a_health_check(name: str):
    check = service(name)["healthcheck"]
    assert check["test"][0] in ("CMD", "CMD-SHELL")
    assert check.get("retries", 0) >= 3


def test_kafka_health_check_asks_the_broker_itself():
    test = " ".join(service("kafka")["healthcheck"]["test"])
    assert "/opt/kafka/bin/kafka-broker-api-versions.sh --bootstrap-server localhost:9092" in test


def test_mongo_health_check_pings_the_server():
    assert service("mongo")["healthcheck"]["test"] == ["CMD", "mongosh", "--quiet", "--eval",
                                                        "db.adminCommand('ping').ok"]


def test_kafka_is_a_single_kraft_node_that_advertises_the_address_the_programs_use():
    env = service("kafka")["environment"]
    # Given a single combined broker/controller
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert str(env["KAFKA_CONTROLLER_QUORUM_VOTERS"]) == f"{env['KAFKA_NODE_ID']}@kafka:9093"
    # Then internal topics fit on one broker
    for key, value in env.items():
        if key.endswith("REPLICATION_FACTOR") or key.endswith("MIN_ISR"):
            assert int(value) == 1, key
    # And every bootstrap server the programs are given is an advertised listener
    advertised = {entry.split("://")[1] for entry in env["KAFKA_ADVERTISED_LISTENERS"].split(",")}
    for name in PROGRAMS:
        argv = command_of(name)
        if "--bootstrap-servers" in argv:
            assert argv[argv.index("--bootstrap-servers") + 1] in advertised, name


def test_mongo_keeps_its_data_in_a_volume_and_takes_credentials_from_the_env_file():
    mongo = service("mongo")
    assert any(v.endswith(":/data/db") for v in mongo["volumes"])
    env = mongo["environment"]
    assert env["MONGO_INITDB_ROOT_USERNAME"].startswith("${MONGO_ROOT_USERNAME")
    assert env["MONGO_INITDB_ROOT_PASSWORD"].startswith("${MONGO_ROOT_PASSWORD:?")


@pytest.mark.parametrize("name", ["job", "report"])
def test_mongo_uri_reaches_the_program_through_the_environment_not_its_command_line(name: str):
    # Given a program that talks to MongoDB
    uri = service(name)["environment"]["CLICKPULSE_MONGO_URI"]
    # Then its URI names the mongo service with the credentials of the env file
    assert uri.startswith("mongodb://${MONGO_ROOT_USERNAME")
    assert "${MONGO_ROOT_PASSWORD" in uri
    assert "@mongo:27017/" in uri
    # And the password never appears in its argv
    assert not any("mongodb://" in word for word in command_of(name))


def test_every_interpolated_variable_is_in_env_example_and_every_example_is_used():
    # Given the variables the compose file takes from docker/.env
    used = interpolated_variables()
    # Then .env.example defines each, and defines nothing the compose file ignores
    assert used == set(env_example())


def test_the_local_env_file_is_ignored_by_git():
    result = subprocess.run(["git", "check-ignore", "-q", "docker/.env"], cwd=ROOT, check=False)
    assert result.returncode == 0, "docker/.env (credentials) must be ignored by git"


def test_images_are_pinned_to_a_version():
    for name, svc in compose()["services"].items():
        if "build" in svc:
            continue
        image = svc["image"]
        repo, _, tag = image.rpartition(":")
        assert repo and re.match(r"^\d+(\.\d+)*$", tag), f"{name}: {image} is not pinned to a version"
    assert service("kafka")["image"].startswith("apache/kafka:")
    assert service("mongo")["image"].startswith("mongo:")


def test_every_published_port_is_on_the_hosts_loopback_only():
    # Given every port a service publishes on the host
    published = [(name, str(port)) for name, svc in compose()["services"].items() for port in svc.get("ports", [])]
    assert published
    # Then each names 127.0.0.1 as its host address (compose's default, 0.0.0.0, is every interface)
    assert [(name, port) for name, port in published if not port.startswith("127.0.0.1:")] == []


def test_the_jobs_spark_ui_listens_in_its_container_and_is_published_on_the_hosts_loopback():
    # Given the job service: spark-submit with a local master, whose UI binds to $SPARK_LOCAL_IP
    job = service("job")
    # Then the UI listens on the container's interfaces, and the host publishes it on 127.0.0.1 only
    assert job["environment"]["SPARK_LOCAL_IP"] == "0.0.0.0"  # noqa: S104 - inside the container
    assert "127.0.0.1:4040:4040" in job["ports"]


def test_the_job_keeps_checkpoints_in_a_volume_at_its_checkpoint_dir():
    argv = command_of("job")
    checkpoint_dir = argv[argv.index("--checkpoint-dir") + 1]
    mounts = {v.split(":")[1] for v in service("job")["volumes"]}
    assert any(checkpoint_dir == m or checkpoint_dir.startswith(m.rstrip("/") + "/") for m in mounts)


def _job_healthcheck(checkpoint_dir: Path) -> subprocess.CompletedProcess:
    """Run the job's compose health check here, pointed at `checkpoint_dir` instead of the container's."""
    test = service("job")["healthcheck"]["test"]
    assert test[0] == "CMD"
    argv = [sys.executable if word == "python" else word for word in test[1:]]
    argv = [word.replace("/data/checkpoints", str(checkpoint_dir)) for word in argv]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False)


def test_job_health_check_passes_while_the_heartbeat_is_fresh_and_fails_without_one(tmp_path: Path):
    from streaming_job.lock import Heartbeat

    # The check reads the heartbeat where the job keeps it: its --checkpoint-dir
    argv = command_of("job")
    assert argv[argv.index("--checkpoint-dir") + 1] == "/data/checkpoints"
    assert "'/data/checkpoints'" in service("job")["healthcheck"]["test"][-1]
    # Given a checkpoint dir with no job
    # When the health check runs
    # Then it reports unhealthy
    assert _job_healthcheck(tmp_path).returncode != 0
    # Given a job writing its heartbeat there
    beat = Heartbeat(tmp_path, ("aggregates",), interval=3600).start()
    try:
        # Then the check reports healthy
        result = _job_healthcheck(tmp_path)
        assert result.returncode == 0, result.stderr
    finally:
        beat.stop()
