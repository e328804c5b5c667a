"""Where the local stack keeps its downloads, binaries and data (all under gitignored folders)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("CLICKPULSE_CACHE", ROOT / ".cache"))
KAFKA_VERSION = "4.1.1"
KAFKA_LIBS = CACHE / f"kafka-{KAFKA_VERSION}" / "libs"
FERRETDB_BIN = CACHE / "bin" / "clickpulse-ferretdb"
SPARK_JARS = CACHE / "spark-jars"
DATA = Path(os.environ.get("CLICKPULSE_DATA", ROOT / ".data"))


def mongod_binary() -> str | None:
    """Return a real `mongod` on PATH, if the machine has one."""
    return shutil.which("mongod")
