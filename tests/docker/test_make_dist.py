"""scripts/make_dist.py: dist/clickpulse.zip holds the job's packages for `spark-submit --py-files`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.docker.documented import MAKE_DIST, ROOT, make_dist


def names_in(path: Path) -> list[str]:
    with zipfile.ZipFile(path) as zf:
        return zf.namelist()


@pytest.fixture
def fake_root(tmp_path: Path) -> Path:
    """A copy of the two packages with the clutter a working tree collects: caches and hidden files."""
    root = tmp_path / "repo"
    for package in make_dist().PACKAGES:
        shutil.copytree(ROOT / package, root / package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        (root / package / "__pycache__").mkdir()
        (root / package / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\0")
        (root / package / ".x.swp").write_text("editor swap")
    return root


def test_the_zip_holds_the_job_and_the_storage_contract(tmp_path: Path):
    # Given this repository
    # When the zip is built
    out = tmp_path / "clickpulse.zip"
    make_dist().build_zip(out)
    # Then the job's entry point and the storage contract are in it, at the zip's root
    names = names_in(out)
    assert "streaming_job/main.py" in names
    assert "storage/contract.py" in names
    assert "storage/sink.py" in names


def test_the_zip_leaves_out_caches_and_hidden_files(fake_root: Path, tmp_path: Path):
    # Given packages with __pycache__ folders, .pyc and editor files
    # When the zip is built from them
    out = tmp_path / "clickpulse.zip"
    names = make_dist().build_zip(out, root=fake_root)
    # Then none of those are in it, and every source file is
    assert names == names_in(out)
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc") or "/." in n]
    sources = {p.relative_to(fake_root).as_posix() for p in fake_root.rglob("*.py") if "__pycache__" not in p.parts}
    assert sources <= set(names)


def test_the_zip_ships_exactly_the_packages_executors_import():
    from streaming_job.packaging import PACKAGES

    assert make_dist().PACKAGES == PACKAGES == ("clickpulse", "streaming_job", "storage")


def test_the_same_sources_build_the_same_bytes(fake_root: Path, tmp_path: Path):
    # Given one source tree
    first, second = tmp_path / "a.zip", tmp_path / "b.zip"
    make_dist().build_zip(first, root=fake_root)
    # When its files are touched (new mtimes) and the zip is built again
    for path in fake_root.rglob("*.py"):
        os.utime(path, (1_900_000_000, 1_900_000_000))
    make_dist().build_zip(second, root=fake_root)
    # Then the two zips are identical
    assert first.read_bytes() == second.read_bytes()


def test_the_zip_alone_makes_the_packages_importable(tmp_path: Path):
    # Given the zip and a Python that does not see this repository
    out = tmp_path / "clickpulse.zip"
    make_dist().build_zip(out)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    code = (f"import sys; sys.path.insert(0, {str(out)!r}); "
            "import storage.sink, streaming_job.settings; print(storage.sink.__file__)")
    # When it imports the writer the executors run and the job's settings
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=60, check=False)
    # Then they load from the zip, as on an executor given --py-files
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().startswith(str(out))


def run_script(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(MAKE_DIST), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=60, check=False)


def test_the_cli_writes_the_zip_and_prints_its_path(tmp_path: Path):
    # When the script runs with --output
    result = run_script("--output", "out/dist.zip", cwd=tmp_path)
    # Then it exits 0, prints only the path on stdout, and the zip is there
    assert result.returncode == 0, result.stderr
    assert result.stdout == "out/dist.zip\n"
    assert "streaming_job/main.py" in names_in(tmp_path / "out" / "dist.zip")
    assert not list((tmp_path / "out").glob("*.tmp"))


def test_the_cli_defaults_to_dist_clickpulse_zip(tmp_path: Path):
    result = run_script(cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "dist" / "clickpulse.zip").is_file()


def test_a_root_without_the_packages_is_one_clear_error(tmp_path: Path):
    # Given a folder that is not the repository
    # When the script is pointed at it
    result = run_script("--root", str(tmp_path), "--output", str(tmp_path / "x.zip"), cwd=tmp_path)
    # Then it exits 1 with one line naming the problem, no traceback, and writes no zip
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "not a Python package" in result.stderr
    assert not (tmp_path / "x.zip").exists()


def test_help_exits_0_and_a_bad_flag_exits_2(tmp_path: Path):
    assert run_script("--help", cwd=tmp_path).returncode == 0
    bad = run_script("--no-such-flag", cwd=tmp_path)
    assert bad.returncode == 2
    assert "Traceback" not in bad.stderr
