"""Zipping our packages for executors (`addPyFile`) and for `spark-submit --py-files` (`make dist`)."""

from __future__ import annotations

import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("streaming_job", "storage")


def running_from_source() -> bool:
    """True when our packages are plain folders (a checkout), False when imported from a zip."""
    return (ROOT / "streaming_job").is_dir() and (ROOT / "storage").is_dir()


def zip_packages(out: Path) -> Path:
    """Write the `.py` files of our packages (no caches) into the zip `out`; return it."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for pkg in PACKAGES:
            for path in sorted((ROOT / pkg).rglob("*.py")):
                if "__pycache__" not in path.parts:
                    z.write(path, path.relative_to(ROOT).as_posix())
    return out
