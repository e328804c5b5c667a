"""Build dist/clickpulse.zip: the job's Python packages, for `spark-submit --py-files` on a cluster.

The zip holds `clickpulse/`, `streaming_job/` and `storage/` at its root (so executors can `import storage.sink`), without
`__pycache__` or compiled files. Its bytes depend only on the sources: entries are sorted and carry a fixed
timestamp, so an unchanged tree rebuilds to an identical file.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

log = logging.getLogger("make_dist")

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make the repository importable
    sys.path.insert(0, str(ROOT))

from streaming_job.packaging import PACKAGES, DistError, build_zip, package_files  # noqa: E402, F401 - one zip builder

DEFAULT_OUTPUT = Path("dist") / "clickpulse.zip"
def main_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python scripts/make_dist.py",
        description="Zip the streaming job's packages (" + ", ".join(PACKAGES) + ") for spark-submit --py-files.",
    )
    p.add_argument("--output", type=Path, default=DEFAULT_OUTPUT,
                   help="zip to write, relative to the current directory (default: %(default)s)")
    p.add_argument("--root", type=Path, default=ROOT,
                   help="repository root holding the packages (default: this script's repository)")
    return p


def run_cli(args: list[str] | None = None) -> int:
    ns = main_parser().parse_args(args)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        names = build_zip(ns.output, ns.root)
    except (DistError, OSError) as e:
        log.error("%s", e)
        return 1
    log.info("%d files from %s", len(names), ", ".join(PACKAGES))
    # The path is the script's machine output, for `spark-submit --py-files "$(python scripts/make_dist.py)"`.
    sys.stdout.write(f"{ns.output}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli())
