"""docker/Dockerfile, read like a linter would (hadolint basics) and checked against the repository."""

from __future__ import annotations

import re
import shlex

import pytest

from tests.docker.documented import (
    DOCKERIGNORE,
    DOCUMENTED,
    KAFKA_CONNECTOR,
    ROOT,
    command_of,
    dockerfile_instructions,
)


def _all(instruction: str) -> list[str]:
    return [args for word, args in dockerfile_instructions() if word == instruction]


def _copy_sources() -> list[str]:
    """Sources of every COPY from the build context (flags and destination dropped)."""
    sources: list[str] = []
    for args in _all("COPY"):
        words = [w for w in shlex.split(args) if not w.startswith("--")]
        sources.extend(words[:-1])
    return sources


def test_base_image_is_pinned_to_a_version_tag():
    # Given the one FROM
    (base,) = _all("FROM")
    image, _, tag = base.split()[0].partition(":")
    # Then it names a tag with a version, never latest
    assert tag and tag != "latest" and re.match(r"^\d", tag), base
    assert image == "python" and tag.startswith("3.11"), "the image's Python must match the project's (3.11)"


def test_the_image_runs_as_an_unprivileged_user():
    users = _all("USER")
    assert users, "no USER: the programs would run as root"
    assert users[-1] not in ("root", "0", "0:0")


def test_apt_installs_java_17_without_recommends_and_drops_its_lists():
    runs = " ".join(a for a in _all("RUN") if "apt-get install" in a)
    assert "openjdk-17-jre-headless" in runs
    assert "--no-install-recommends" in runs
    assert "rm -rf /var/lib/apt/lists/*" in runs


def test_requirements_are_installed_from_the_pinned_file_without_a_cache():
    pip = [a for a in _all("RUN") if "pip install" in a]
    assert any("-r /tmp/requirements.txt" in a and "--no-cache-dir" in a for a in pip)
    assert "requirements.txt" in _copy_sources()


def test_every_copied_path_exists_and_is_let_through_by_the_dockerignore():
    # Given the allow-list in docker/Dockerfile.dockerignore
    allowed = {line[1:].rstrip("/") for line in DOCKERIGNORE.read_text().splitlines() if line.startswith("!")}
    assert "*" in DOCKERIGNORE.read_text().splitlines(), "the dockerignore should start by excluding everything"
    for source in _copy_sources():
        # Then each COPY source exists in the context (the repository root) and is allowed into it
        assert (ROOT / source).exists(), source
        assert source.rstrip("/") in allowed, f"{source} is excluded by {DOCKERIGNORE.name}"


@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_the_image_holds_the_code_each_program_runs(name: str):
    # Given the top-level folders the Dockerfile copies into the image
    copied = {source.rstrip("/").split("/")[0] for source in _copy_sources()}
    argv = command_of(name)
    # When we find the program's code in its command (a script path or `-m package`)
    script = next((w for w in argv if w.endswith(".py")), None)
    package = script.split("/")[0] if script else argv[argv.index("-m") + 1]
    # Then it is copied, and so are the storage and clickpulse packages every program imports
    assert package in copied
    assert "storage" in copied
    assert "clickpulse" in copied


def test_the_image_holds_the_checkpoint_tools_users_run_next_to_the_job():
    # Given the top-level folders the Dockerfile copies into the image
    copied = {source.rstrip("/").split("/")[0] for source in _copy_sources()}
    # Then the checkpoint CLI is among them, with the neutral package it imports
    assert {"checkpoint_tools", "clickpulse"} <= copied


def test_the_image_prefetches_the_connector_the_job_submits():
    # Given the connector spark-submit resolves when the job starts
    argv = command_of("job")
    submitted = argv[argv.index("--packages") + 1]
    # Then the Dockerfile resolves the same coordinate at build time
    (arg,) = [a for a in _all("ARG") if a.startswith("KAFKA_CONNECTOR=")]
    assert arg.split("=", 1)[1] == submitted == KAFKA_CONNECTOR
    assert any('spark-submit --packages "${KAFKA_CONNECTOR}"' in a for a in _all("RUN"))
    # And it does so as the runtime user, whose Ivy cache the job will read
    order = [word for word, _ in dockerfile_instructions()]
    prefetch = next(i for i, (w, a) in enumerate(dockerfile_instructions()) if w == "RUN" and "spark-submit" in a)
    assert "USER" in order[:prefetch]


def test_the_working_directory_is_where_the_code_is_and_on_the_python_path():
    (workdir,) = _all("WORKDIR")
    env = " ".join(_all("ENV"))
    assert f"PYTHONPATH={workdir}" in env
    for args in _all("COPY"):
        destination = shlex.split(args)[-1]
        assert destination.startswith((workdir, "/tmp/")), destination


def test_the_default_command_is_a_program_of_the_image():
    (cmd,) = _all("CMD")
    assert cmd.startswith('["python", "-m", "streaming_job"')
