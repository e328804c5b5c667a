"""Independent oracles of what Spark needs to restore a state version, read straight from the files on disk."""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

_ZIP = re.compile(r"^(\d+)(?:_[0-9a-f-]+)?\.zip$")


def rocksdb_missing(store: Path, version: int) -> list[str]:
    """What restoring `version` of a RocksDB store lacks (empty when it can be restored), as Spark 4.2 restores
    (format v1): the newest zip at or below `version`, every SST file its metadata names, then every changelog
    after it up to `version` (from version 1 when there is no such zip)."""
    zips = {int(m.group(1)): p for p in store.iterdir() if (m := _ZIP.match(p.name))}
    base = max((v for v in zips if v <= version), default=0)
    missing = []
    if base:
        with zipfile.ZipFile(zips[base]) as z:
            meta = json.loads(z.read("metadata").decode().split("\n", 1)[1])
        missing += [f"SSTs/{f['dfsSstFileName']}" for f in meta.get("sstFiles") or ()
                    if not (store / "SSTs" / f["dfsSstFileName"]).exists()]
    missing += [f"{v}.changelog" for v in range(base + 1, version + 1) if not (store / f"{v}.changelog").exists()]
    return missing
