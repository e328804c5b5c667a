"""Package boundaries, read from the source with `ast`: no program imports another program.

Programs are the packages a user runs. They share contracts through `clickpulse` (the neutral package: events,
query names, the lock file, the CLI scaffolding) and `storage` (the MongoDB contract and access), never through
each other. Tests, benchmarks and scripts may import anything.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROGRAMS = ("producer", "streaming_job", "reporting", "checkpoint_tools", "devstack", "alerts")
NEUTRAL = "clickpulse"
SHARED = ("clickpulse", "storage")


def imported_packages(path: Path) -> set[tuple[str, int]]:
    """(top-level package, line) of every absolute import in a file, including those inside functions."""
    found: set[tuple[str, int]] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {(alias.name.split(".")[0], node.lineno) for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add((node.module.split(".")[0], node.lineno))
    return found


def edges(root: Path, package: str, forbidden: set[str]) -> list[str]:
    """`file:line imports X` for each import of a forbidden package by a module of `package` under `root`."""
    return sorted(f"{path.relative_to(root)}:{line} imports {name}"
                  for path in (root / package).rglob("*.py")
                  for name, line in imported_packages(path) if name in forbidden)


def test_no_program_package_imports_another_program_package():
    # Given every program package present in the repository
    present = [p for p in PROGRAMS if (ROOT / p).is_dir()]
    assert len(present) >= 5, present
    # When each one's imports are read
    found = [edge for p in present for edge in edges(ROOT, p, set(PROGRAMS) - {p})]
    # Then none reaches into another program (share through clickpulse or storage instead)
    assert found == []


def test_storage_imports_no_program_package():
    # Given the storage package, which every program may import
    # When its imports are read
    found = edges(ROOT, "storage", set(PROGRAMS))
    # Then it depends on no program
    assert found == []


def test_the_neutral_package_imports_only_the_standard_library_and_itself():
    # Given clickpulse/, which every program and the Spark executors import
    allowed = set(sys.stdlib_module_names) | {NEUTRAL, "__future__"}
    # When its imports are read
    found = sorted(f"{path.relative_to(ROOT)}:{line} imports {name}" for path in (ROOT / NEUTRAL).rglob("*.py")
                   for name, line in imported_packages(path) if name not in allowed)
    # Then it needs nothing else (no program, no storage, no third-party package)
    assert found == []


def test_an_import_inside_a_function_counts_as_an_edge(tmp_path: Path):
    # Given a program that imports another program lazily, inside a function
    (tmp_path / "producer").mkdir()
    (tmp_path / "producer" / "late.py").write_text("def f():\n    from streaming_job.settings import JobSettings\n")
    # When its imports are read
    found = edges(tmp_path, "producer", {"streaming_job"})
    # Then the edge is reported with its place
    assert found == ["producer/late.py:2 imports streaming_job"]
