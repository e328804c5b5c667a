"""State store files of one query, as the two providers of Spark 4.2 lay them out under `state/<op>/<partition>/`.

HDFSBackedStateStoreProvider (Spark's old default):

    <version>.delta           one version's changes
    <version>.snapshot        a whole version (written every minDeltasForSnapshot versions)

RocksDBStateStoreProvider (the job's default), read from Spark 4.2's RocksDBFileManager:

    <version>.changelog       one version's changes (changelog checkpointing)
    <version>.zip             a whole version: RocksDB's small files plus a `metadata` entry naming the SST
                              (and archived log) files the version is made of
    SSTs/<name>-<uuid>.sst    the data, shared by every zip that references it
    logs/<name>-<uuid>.log    archived write-ahead logs, shared the same way (rare: the WAL is off)

With checkpoint format v2 (spark.sql.streaming.stateStore.checkpointFormatVersion=2) versioned files are named
`<version>_<uniqueId>.changelog|zip`; each commits/<batch> entry records the uniqueId of the version it committed,
so files of attempts that never committed can be told apart. Checksum files sit next to every file (Hadoop's
`.<name>.crc`, Spark's `<name>.crc`); `_metadata/` folders hold schemas and operator metadata, never versions.
"""

from __future__ import annotations

import json
import re
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

VERSION_FILE = re.compile(r"^(\d+)(?:_([0-9A-Za-z-]+))?\.(delta|snapshot|changelog|zip)$")
SHARED_DIRS = {"SSTs": ".sst", "logs": ".log"}
# A delta (HDFS provider) or changelog (RocksDB) holds one version's changes; a snapshot or zip holds a whole version.
FULL_KINDS = frozenset({"snapshot", "zip"})
ROCKSDB_KINDS = frozenset({"changelog", "zip"})
HDFS_PROVIDER = "HDFSBackedStateStoreProvider"
ROCKSDB_PROVIDER = "RocksDBStateStoreProvider"
_METADATA_LINE = re.compile(r"^v\d+$")


class CorruptStateFile(ValueError):
    """A state file that cannot be read; `path` names it, the message says why."""

    def __init__(self, path: Path, why: str) -> None:
        super().__init__(why)
        self.path = path


@dataclass(frozen=True)
class StateFile:
    """A versioned state file; a zip also lists the shared files (rel to the query dir) it is restored from."""

    rel: str
    version: int
    kind: str  # delta, snapshot, changelog, zip
    size: int = 0
    unique_id: str | None = None  # checkpoint format v2
    references: tuple[str, ...] = ()

    @property
    def full(self) -> bool:
        return self.kind in FULL_KINDS


@dataclass(frozen=True)
class SharedFile:
    """An immutable RocksDB file under SSTs/ or logs/, which any number of zips may reference."""

    rel: str
    size: int


@dataclass(frozen=True)
class StoreDir:
    """One state store instance (an operator's partition): the versioned files it is restored from."""

    rel: str  # e.g. state/0/1
    files: tuple[StateFile, ...]
    shared: tuple[SharedFile, ...] = ()

    @property
    def operator(self) -> str:
        return self.rel.split("/")[1]

    @property
    def versions(self) -> list[int]:
        return sorted({f.version for f in self.files})

    @property
    def provider(self) -> str | None:
        """Which provider wrote these files (None for an empty store)."""
        if self.shared or any(f.kind in ROCKSDB_KINDS for f in self.files):
            return ROCKSDB_PROVIDER
        return HDFS_PROVIDER if self.files else None

    def referenced(self, min_version: int = 0) -> set[str]:
        """Shared files referenced by the zips of versions >= `min_version`."""
        return {r for f in self.files if f.kind == "zip" and f.version >= min_version for r in f.references}


def read_stores(root: Path, files: Iterable[tuple[str, int]]) -> tuple[StoreDir, ...]:
    """Group the state files among `files` ((rel, size) under the query dir `root`) by store; read every zip.

    Raises CorruptStateFile for a zip whose metadata cannot be read: which shared files it needs is unknown then.
    """
    versioned: dict[str, list[StateFile]] = {}
    shared: dict[str, list[SharedFile]] = {}
    for rel, size in files:
        parts = rel.split("/")
        # Skip _metadata, _stateSchema and similar folders: schemas and operator metadata, never versioned data.
        if parts[0] != "state" or len(parts) < 3 or any(p.startswith("_") for p in parts[1:-1]):
            continue
        name, parent = parts[-1], "/".join(parts[:-1])
        if parts[-2] in SHARED_DIRS and name.endswith(SHARED_DIRS[parts[-2]]) and not name.startswith("."):
            shared.setdefault("/".join(parts[:-2]), []).append(SharedFile(rel, size))
            continue
        m = VERSION_FILE.match(name)
        if not m:
            continue
        version, unique_id, kind = int(m.group(1)), m.group(2), m.group(3)
        references: tuple[str, ...] = ()
        if kind == "zip":
            try:
                references = tuple(f"{parent}/{r}" for r in zip_references(root / rel))
            except FileNotFoundError:  # a running job purged it since the listing
                continue
        versioned.setdefault(parent, []).append(StateFile(rel, version, kind, size, unique_id, references))
    stores = []
    for rel in sorted(set(versioned) | set(shared)):
        fs = sorted(versioned.get(rel, ()), key=lambda s: (s.version, s.kind, s.unique_id or ""))
        stores.append(StoreDir(rel, tuple(fs), tuple(sorted(shared.get(rel, ()), key=lambda s: s.rel))))
    return tuple(stores)


def zip_references(path: Path) -> list[str]:
    """The shared files a RocksDB snapshot zip needs, as paths relative to its store dir (SSTs/..., logs/...).

    The zip's `metadata` entry is a version line (`v1`) and JSON with `sstFiles` and `logFiles`, each entry naming
    its copy in the store's SSTs/ or logs/ folder (`dfsSstFileName`, `dfsLogFileName`).
    """
    try:
        with zipfile.ZipFile(path) as z:
            text = z.read("metadata").decode("utf-8")
    except FileNotFoundError:
        raise
    except KeyError:
        raise CorruptStateFile(path, "the zip has no metadata entry") from None
    except (zipfile.BadZipFile, OSError, UnicodeDecodeError, EOFError) as e:
        raise CorruptStateFile(path, f"not a readable zip ({_why(e)})") from None
    version, _, body = text.partition("\n")
    if not _METADATA_LINE.match(version.strip()):
        raise CorruptStateFile(path, f"its metadata should start with a version line (v1), found {version[:20]!r}")
    try:
        meta = json.loads(body)
        if not isinstance(meta, dict):
            raise ValueError("metadata is not a JSON object")
        out = [f"SSTs/{_name(f, 'dfsSstFileName')}" for f in meta.get("sstFiles") or ()]
        out += [f"logs/{_name(f, 'dfsLogFileName')}" for f in meta.get("logFiles") or ()]
    except (ValueError, TypeError, AttributeError) as e:
        raise CorruptStateFile(path, f"unreadable metadata ({_why(e)})") from None
    return out


def _name(entry: object, key: str) -> str:
    name = entry.get(key) if isinstance(entry, dict) else None
    if not isinstance(name, str) or not name or "/" in name:
        raise ValueError(f"a file entry has no valid {key}")
    return name


def short_provider(class_name: str | None) -> str | None:
    """`org.apache...RocksDBStateStoreProvider` -> `RocksDBStateStoreProvider`."""
    return class_name.rsplit(".", 1)[-1] if class_name else None


def _why(e: Exception) -> str:
    return str(e).splitlines()[0] if str(e) else type(e).__name__
