"""clickpulse as a Python package: `pip install -e .` and a wheel give working console scripts in a fresh venv.

To stay fast, the fresh venv borrows its dependencies from the test run's own site-packages (a .pth file) and
installs only clickpulse itself (`--no-deps`, `--no-build-isolation`: the pinned setuptools, no download).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

import pytest

from clickpulse import __version__

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
SCRIPTS = PYPROJECT["project"]["scripts"]
PACKAGES = PYPROJECT["tool"]["setuptools"]["packages"]

pytestmark = pytest.mark.slow


def _run(argv: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    # A shell as a user has it: no PYTHONPATH, no activated venv; cwd outside the checkout.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)


def _fresh_venv(path: Path) -> Path:
    """A new venv without pip whose imports fall back on this run's site-packages (pip, setuptools, pyspark...)."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True, timeout=120)
    python = path / "bin" / "python"
    site = _run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], path).stdout.strip()
    Path(site, "_borrowed_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python


def _pip_install(python: Path, *what: str) -> None:
    result = _run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index",
                   *what], python.parent)
    assert result.returncode == 0, result.stderr


def _installed_programs() -> list[str]:
    """The console scripts whose package is part of the distribution (the reserved alerts entry needs alerts/)."""
    return [name for name, target in SCRIPTS.items() if target.split(".")[0] in PACKAGES]


def _check_scripts(bin_dir: Path, cwd: Path) -> None:
    for name in _installed_programs():
        script = bin_dir / name
        assert script.is_file(), f"{name} was not installed"
        # When each console script is asked for its help and its version
        helped = _run([str(script), "--help"], cwd)
        versioned = _run([str(script), "--version"], cwd)
        # Then both answer, exit 0, and the version is the package's
        assert helped.returncode == 0 and "usage:" in helped.stdout, (name, helped.stderr)
        assert versioned.returncode == 0 and versioned.stdout.strip() == f"{name} {__version__}", (name, versioned)


def test_every_console_script_is_declared_for_a_program():
    # Given the scripts pyproject.toml declares
    # Then each program users run has one, and alerts keeps its reserved name
    assert set(SCRIPTS) == {"clickpulse-job", "clickpulse-producer", "clickpulse-report", "clickpulse-checkpoints",
                            "clickpulse-alerts"}
    assert SCRIPTS["clickpulse-alerts"] == "alerts.cli:run_cli"
    assert "clickpulse" in PACKAGES and "devstack" not in PACKAGES


def test_an_editable_install_in_a_fresh_venv_gives_working_console_scripts(tmp_path: Path):
    # Given a fresh venv
    python = _fresh_venv(tmp_path / "venv")
    # When clickpulse is installed into it in editable mode
    _pip_install(python, "-e", str(ROOT))
    # Then every console script answers --help and --version, outside the checkout
    _check_scripts(python.parent, tmp_path)


def test_a_wheel_holds_exactly_the_listed_packages_and_installs_working_scripts(tmp_path: Path):
    # Given a copy of what the build reads (so the build writes nothing into the checkout)
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "requirements.txt"):
        shutil.copy(ROOT / name, source / name)
    for package in {*PACKAGES, "devstack", "tests"}:
        if (ROOT / package).is_dir():
            shutil.copytree(ROOT / package, source / package, ignore=shutil.ignore_patterns("__pycache__"))
    # When a wheel is built from it
    python = _fresh_venv(tmp_path / "venv")
    built = _run([str(python), "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "--no-index",
                  "-w", str(tmp_path / "dist"), str(source)], tmp_path)
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "dist").glob("clickpulse-*.whl")
    # Then it holds the listed packages and nothing else of the repository (no tests, no devstack)
    with zipfile.ZipFile(wheel) as zf:
        tops = {n.split("/")[0] for n in zf.namelist() if not n.split("/")[0].endswith(".dist-info")}
        metadata = zf.read(next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))).decode()
    assert tops == set(PACKAGES)
    # And it requires the pinned dependencies of requirements.txt
    assert "Requires-Dist: pyspark==4.2.0" in metadata and "Requires-Dist: pandas==" in metadata
    # And, installed, its console scripts work
    _pip_install(python, str(wheel))
    _check_scripts(python.parent, tmp_path)
