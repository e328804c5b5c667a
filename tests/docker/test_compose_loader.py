"""docker/docker-compose.yml through compose-go, the loader `docker compose` itself uses (no engine needed).

PyYAML (test_compose.py) sees the file as data; compose-go also validates it against the Compose schema, applies
interpolation from the env file, resolves anchors, build contexts and depends_on, as `docker compose up` would.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.docker.documented import COMPOSE_FILE, DOCUMENTED, ENV_EXAMPLE, ROOT, env_example

SOURCE = Path(__file__).resolve().parent / "composecheck"
CACHE = ROOT / ".cache"
BINARY = CACHE / "bin" / "clickpulse-compose-check"
# The same module and build caches as the Makefile's Go builds.
GO_ENV = {"GOMODCACHE": str(CACHE / "go-mod"), "GOPATH": str(CACHE / "go"), "GOCACHE": str(CACHE / "go-build"),
          "GOFLAGS": "-modcacherw"}


@pytest.fixture(scope="module")
def compose_check() -> Path:
    """The compose-check binary, built from tests/docker/composecheck when missing or older than its sources."""
    newest_source = max(p.stat().st_mtime for p in SOURCE.iterdir())
    if not BINARY.exists() or BINARY.stat().st_mtime < newest_source:
        BINARY.parent.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(["go", "build", "-o", str(BINARY), "."], cwd=SOURCE, env={**os.environ, **GO_ENV},
                                capture_output=True, text=True, timeout=600, check=False)
        assert result.returncode == 0, f"building compose-check failed: {result.stderr[-2000:]}"
    return BINARY


def load(compose_check: Path, env_file: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(compose_check), str(COMPOSE_FILE), str(env_file)], capture_output=True, text=True,
                          timeout=60, check=False)


def test_dockers_own_loader_accepts_the_file_with_the_example_env(compose_check: Path):
    # Given docker/.env.example as the user's docker/.env
    # When compose-go loads the compose file
    result = load(compose_check, ENV_EXAMPLE)
    # Then it is valid and resolves to the documented stack
    assert result.returncode == 0, result.stderr
    project = json.loads(result.stdout)
    services = project["services"]
    assert set(services) == {"kafka", "mongo", *DOCUMENTED}
    for name, documented in DOCUMENTED.items():
        assert tuple(services[name]["command"]) == documented.argv
        assert Path(services[name]["build"]["context"]) == ROOT


def test_the_env_file_credentials_reach_mongo_and_the_programs_uri(compose_check: Path):
    # Given the example credentials
    env = env_example()
    user, password = env["MONGO_ROOT_USERNAME"], env["MONGO_ROOT_PASSWORD"]
    # When the file is loaded with them
    services = json.loads(load(compose_check, ENV_EXAMPLE).stdout)["services"]
    # Then MongoDB creates that user and the job and report connect as it
    assert services["mongo"]["environment"]["MONGO_INITDB_ROOT_USERNAME"] == user
    assert services["mongo"]["environment"]["MONGO_INITDB_ROOT_PASSWORD"] == password
    for name in ("job", "report"):
        uri = services[name]["environment"]["CLICKPULSE_MONGO_URI"]
        assert uri == f"mongodb://{user}:{password}@mongo:27017/?authSource=admin"
        assert services[name]["environment"]["CLICKPULSE_DATABASE"] == env["CLICKPULSE_DATABASE"]


def test_without_a_password_compose_stops_and_says_how_to_set_one(compose_check: Path, tmp_path: Path):
    # Given no docker/.env values at all
    empty = tmp_path / "empty.env"
    empty.write_text("")
    # When the file is loaded
    result = load(compose_check, empty)
    # Then loading fails, pointing the user at docker/.env.example
    assert result.returncode == 1
    assert "MONGO_ROOT_PASSWORD" in result.stderr
    assert "copy docker/.env.example to docker/.env" in result.stderr
