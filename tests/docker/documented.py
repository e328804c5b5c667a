"""What docker/ must agree with: the documented commands (declared once, here) and readers for the files."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from functools import cache
from importlib.util import module_from_spec, spec_from_file_location
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
COMPOSE_FILE = DOCKER / "docker-compose.yml"
DOCKERFILE = DOCKER / "Dockerfile"
DOCKERIGNORE = DOCKER / "Dockerfile.dockerignore"
ENV_EXAMPLE = DOCKER / ".env.example"
CLUSTER_GUIDE = ROOT / "docs" / "cluster.md"
README = ROOT / "README.md"
MAKE_DIST = ROOT / "scripts" / "make_dist.py"


def pinned_version(package: str) -> str:
    """The `==` version of `package` in requirements.txt."""
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        name, sep, version = line.split("#")[0].strip().partition("==")
        if sep and name.strip().lower() == package:
            return version.strip()
    raise LookupError(f"{package} is not pinned in requirements.txt")


SPARK_VERSION = pinned_version("pyspark")
KAFKA_CONNECTOR = f"org.apache.spark:spark-sql-kafka-0-10_2.13:{SPARK_VERSION}"


@dataclass(frozen=True)
class Documented:
    """A program's command as the README documents it, as run in the compose stack (service host names)."""

    argv: tuple[str, ...]
    # The words that name the program; the README and guides must show the command starting with them.
    program: tuple[str, ...]


# THE commands. The compose services must run exactly these.
DOCUMENTED: dict[str, Documented] = {
    "job": Documented(
        argv=("spark-submit", "--conf", "spark.driver.defaultJavaOptions=-XX:+UseParallelGC", "--packages", KAFKA_CONNECTOR,
              "streaming_job/main.py",
              "--bootstrap-servers", "kafka:9092", "--checkpoint-dir", "/data/checkpoints"),
        program=("spark-submit", "--packages", KAFKA_CONNECTOR, "streaming_job/main.py"),
    ),
    "producer": Documented(
        argv=("python", "-m", "producer", "--bootstrap-servers", "kafka:9092", "--rate", "100"),
        program=("python", "-m", "producer"),
    ),
    "report": Documented(
        argv=("streamlit", "run", "reporting/app.py", "--server.port", "8501", "--server.address", "0.0.0.0"),  # noqa: S104 - a container must listen beyond itself
        program=("streamlit", "run", "reporting/app.py"),
    ),
}


@cache
def compose() -> dict[str, Any]:
    """docker-compose.yml as data (YAML anchors and merge keys resolved, `${...}` left as written)."""
    return yaml.safe_load(COMPOSE_FILE.read_text())


def service(name: str) -> dict[str, Any]:
    return compose()["services"][name]


def command_of(name: str) -> tuple[str, ...]:
    """A service's command as an argv (compose's string form is split like a shell would, without one)."""
    cmd = service(name)["command"]
    return tuple(cmd.split()) if isinstance(cmd, str) else tuple(str(a) for a in cmd)


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs of docker/Dockerfile, continuation lines joined, comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        word, _, args = line.partition(" ")
        out.append((word.upper(), args.strip()))
    return out


def env_example() -> dict[str, str]:
    values: dict[str, str] = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


_INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)")


def interpolated_variables() -> set[str]:
    """Names of the `${VAR...}` the compose file takes from docker/.env or the environment."""
    return set(_INTERPOLATION.findall(COMPOSE_FILE.read_text()))


def shell_commands(markdown: str) -> list[str]:
    """The commands in a Markdown text's fenced code blocks, one per entry, `\\` continuations joined."""
    commands: list[str] = []
    for block in re.findall(r"```[a-z]*\n(.*?)```", markdown, flags=re.S):
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            line = line.split(" # ")[0].strip()
            if line and not line.startswith("#"):
                commands.append(line)
    return commands


def run_here(argv: list[str]) -> subprocess.CompletedProcess:
    """Run a command as the image does: the repository as working directory and on PYTHONPATH.

    SPARK_HOME is set to the installed pyspark, so Spark's scripts do not look for it with whatever
    `python3` or PYSPARK_PYTHON happens to be (in the image, pip installed pyspark into that Python).
    """
    import pyspark

    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SPARK_HOME": str(Path(pyspark.__file__).parent),
           "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")}
    return subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)


@cache
def help_text(program: str) -> str:
    """`--help` of a program of the image, run here; AssertionError when it does not exit 0."""
    argv = {
        # spark-submit runs the script with the image's Python; the flags after it are the job's.
        "job": [sys.executable, "streaming_job/main.py", "--help"],
        "producer": [sys.executable, "-m", "producer", "--help"],
        # The report's flags in compose are Streamlit's own `run` options.
        "report": [sys.executable, "-m", "streamlit", "run", "--help"],
        "spark-submit": [str(Path(sys.executable).parent / "spark-submit"), "--help"],
    }[program]
    result = run_here(argv)
    assert result.returncode == 0, f"{' '.join(argv[1:])} exited {result.returncode}: {result.stderr[-2000:]}"
    return result.stdout + result.stderr


def mentions_flag(text: str, flag: str) -> bool:
    """Whether `flag` appears in `text` as a whole flag (`--rate` is not found in `--rate-limit`)."""
    return re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", text) is not None


@cache
def make_dist() -> ModuleType:
    """scripts/make_dist.py as a module (scripts/ is not a package)."""
    spec = spec_from_file_location("make_dist", MAKE_DIST)
    assert spec and spec.loader
    module = module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
