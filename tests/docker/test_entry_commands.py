"""The image's entry commands run here with `--help` and accept every flag the compose file gives them.

Each runs as in the image: this repository as the working directory and on PYTHONPATH.
"""

from __future__ import annotations

import sys

import pytest

from tests.docker.documented import DOCUMENTED, ROOT, command_of, help_text, mentions_flag, run_here, service


def compose_flags(program: str) -> list[str]:
    """The `--flags` the compose file passes to the program itself (not to spark-submit or streamlit)."""
    argv = list(command_of(program))
    for lead in ("streaming_job/main.py", "reporting/app.py"):
        if lead in argv:
            argv = argv[argv.index(lead) + 1:]
    return [word for word in argv if word.startswith("--")]


@pytest.mark.parametrize("program", sorted(DOCUMENTED))
def test_entry_command_prints_help_and_knows_every_flag_compose_passes(program: str):
    # Given the program's --help, run the way the image runs it
    text = help_text(program)
    # Then every flag its compose service passes is one it documents
    for flag in compose_flags(program):
        assert mentions_flag(text, flag), f"{program} --help does not list {flag}"


def test_the_images_default_command_prints_the_job_help():
    # Given the Dockerfile's CMD: python -m streaming_job --help
    # When it runs here
    result = run_here([sys.executable, "-m", "streaming_job", "--help"])
    # Then it exits 0 with the job's usage
    assert result.returncode == 0, result.stderr[-2000:]
    assert "--bootstrap-servers" in result.stdout


def test_the_report_module_prints_help():
    # `python -m reporting` is the report's own launcher (the compose file calls streamlit directly)
    result = run_here([sys.executable, "-m", "reporting", "--help"])
    assert result.returncode == 0, result.stderr[-2000:]
    assert "--mongo-uri" in result.stdout


def test_the_report_app_the_compose_file_serves_exists():
    argv = command_of("report")
    app = argv[argv.index("run") + 1]
    assert (ROOT / app).is_file(), f"{app} is missing"


def test_the_job_reads_the_mongo_settings_compose_passes_in_its_environment():
    # Given the environment the compose file gives the job
    for variable in service("job")["environment"]:
        # Then the job's --help documents reading it
        assert variable in help_text("job"), f"the job does not read {variable}"


def test_the_report_reads_the_mongo_settings_compose_passes_in_its_environment():
    # Given the report's code (and the storage helpers it may use)
    sources = "\n".join(p.read_text() for folder in ("reporting", "storage") for p in (ROOT / folder).rglob("*.py"))
    for variable in service("report")["environment"]:
        # Then it reads each variable the compose file sets
        assert variable in sources, f"the report does not read {variable}"
