"""Zipping our packages for executors (`addPyFile`) and for `spark-submit --py-files` (`make dist`).

The zip holds `clickpulse/`, `streaming_job/` and `storage/` at its root (so executors can `import storage.sink`), without
`__pycache__` or compiled files. Its bytes depend only on the sources: entries are sorted and carry a fixed
timestamp, so an unchanged tree rebuilds to an identical file.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("clickpulse", "streaming_job", "storage")


def running_from_source() -> bool:
    """True when our packages are plain folders (a checkout), False when imported from a zip."""
    return all((ROOT / pkg).is_dir() for pkg in PACKAGES)


# Zip's epoch; any fixed date works, this one needs no time zone.
FIXED_DATE = (1980, 1, 1, 0, 0, 0)
SKIPPED_DIRS = frozenset({"__pycache__"})
SKIPPED_SUFFIXES = (".pyc", ".pyo")


class DistError(Exception):
    """A package to ship is missing or unreadable."""


def package_files(root: Path, package: str) -> Iterator[Path]:
    """Every file of `package` under `root` that belongs in the zip, as sorted paths relative to `root`."""
    top = root / package
    if not (top / "__init__.py").is_file():
        raise DistError(f"{top} is not a Python package (no __init__.py)")
    found: list[Path] = []
    for folder, dirs, files in os.walk(top):
        dirs[:] = [d for d in dirs if d not in SKIPPED_DIRS and not d.startswith(".")]
        found.extend(Path(folder, f).relative_to(root) for f in files
                     if not f.endswith(SKIPPED_SUFFIXES) and not f.startswith("."))
    return iter(sorted(found, key=lambda p: p.as_posix()))


def build_zip(output: Path, root: Path = ROOT, packages: Sequence[str] = PACKAGES) -> list[str]:
    """Write the zip to `output` (atomically: a reader never sees half a file); return its entry names."""
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(output.name + ".tmp")
    names: list[str] = []
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for package in packages:
                for rel in package_files(root, package):
                    info = zipfile.ZipInfo(rel.as_posix(), date_time=FIXED_DATE)
                    info.external_attr = 0o644 << 16
                    info.compress_type = zipfile.ZIP_DEFLATED
                    zf.writestr(info, (root / rel).read_bytes())
                    names.append(info.filename)
        tmp.replace(output)
    finally:
        tmp.unlink(missing_ok=True)
    return names
