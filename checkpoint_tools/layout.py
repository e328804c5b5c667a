"""Reading a job's checkpoint dir into an immutable snapshot: queries, their offset/commit logs and state files.

A base dir (the job's `--checkpoint-dir`) holds one folder per streaming query, each laid out by Spark:

    <query>/metadata            {"id": "<query id>"}
    <query>/offsets/<batch>     v1 / {"batchWatermarkMs", "batchTimestampMs", "conf"} / one offsets line per source
    <query>/commits/<batch>     v1 / {"nextBatchWatermarkMs": ..., "stateUniqueIds" (checkpoint format v2)}
    <query>/sources/<n>/0       the source's initial offsets
    <query>/state/<op>/<partition>/...   the state store's files (see checkpoint_tools/state.py)

plus Hadoop's `.<name>.crc` and Spark's own `<name>.crc` checksum files next to what they check.
Every log entry and every RocksDB snapshot's file list is parsed here, so a corrupt checkpoint is reported before
anything acts on it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from checkpoint_tools.state import CorruptStateFile, StoreDir, read_stores

LOG_DIRS = ("offsets", "commits")
SUMMARY_DIRS = ("offsets", "commits", "sources", "state")
_BATCH = re.compile(r"^\d+$")
_VERSION_LINE = re.compile(r"^v(\d+)$")
PROVIDER_CONF = "spark.sql.streaming.stateStore.providerClass"


class CheckpointError(Exception):
    """A checkpoint that cannot be read or acted on; the message is one line meant for the user."""


@dataclass(frozen=True)
class FileInfo:
    """One file under a query dir: its path relative to the query dir, and its size."""

    rel: str
    size: int
    mtime: float

    @property
    def name(self) -> str:
        return self.rel.rsplit("/", 1)[-1]

    @property
    def parent(self) -> str:
        return self.rel.rsplit("/", 1)[0] if "/" in self.rel else ""


@dataclass(frozen=True)
class OffsetsEntry:
    """offsets/<batch>: what a micro-batch planned to read, per source as {topic: {partition: offset}}."""

    batch_id: int
    timestamp_ms: int | None
    watermark_ms: int | None
    sources: tuple[dict[str, dict[int, int]] | None, ...]
    conf: dict[str, str] = field(default_factory=dict)  # the session confs Spark restores from the checkpoint


@dataclass(frozen=True)
class CommitEntry:
    """commits/<batch>: a micro-batch that finished; written after its output and state were saved."""

    batch_id: int
    next_watermark_ms: int | None
    committed_at: float  # the commit file's mtime (epoch seconds)
    # Checkpoint format v2: the uniqueId of the state version this batch committed, per operator, partition, store.
    state_unique_ids: dict[str, tuple[tuple[str, ...], ...]] | None = None


@dataclass(frozen=True)
class QueryCheckpoint:
    name: str
    path: Path
    query_id: str | None
    offsets: dict[int, OffsetsEntry]
    commits: dict[int, CommitEntry]
    stores: tuple[StoreDir, ...]
    files: tuple[FileInfo, ...] = field(repr=False)

    @property
    def last_committed(self) -> int | None:
        return max(self.commits) if self.commits else None

    @property
    def last_planned(self) -> int | None:
        return max(self.offsets) if self.offsets else None

    def committed_offsets(self) -> dict[str, dict[int, int]]:
        """Kafka offsets (next to read) as of the last committed batch; {} before the first commit."""
        last = self.last_committed
        entry = self.offsets.get(last) if last is not None else None
        merged: dict[str, dict[int, int]] = {}
        for source in entry.sources if entry else ():
            for topic, parts in (source or {}).items():
                merged.setdefault(topic, {}).update(parts)
        return merged

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)

    @property
    def provider_conf(self) -> str | None:
        """The state store provider class Spark restores from the newest offsets entry (None when unrecorded)."""
        newest = self.offsets.get(self.last_planned) if self.last_planned is not None else None
        return newest.conf.get(PROVIDER_CONF) if newest else None

    def committed_state_id(self, store: StoreDir, version: int) -> str | None:
        """Checkpoint format v2: the uniqueId that batch `version - 1` committed for `store` (None when unknown).

        Only a store of the operator's default store name (state/<op>/<partition>) has one unique id per partition;
        stores of several names (stream-stream joins) are not matched, so their files are never taken as committed.
        """
        commit = self.commits.get(version - 1)
        parts = store.rel.split("/")
        if commit is None or commit.state_unique_ids is None or len(parts) != 3 or not parts[2].isdigit():
            return None
        per_partition = commit.state_unique_ids.get(parts[1], ())
        partition = int(parts[2])
        ids = per_partition[partition] if partition < len(per_partition) else ()
        return ids[0] if len(ids) == 1 else None

    @property
    def checkpoint_format(self) -> int | None:
        """Spark's state checkpoint format: 2 when versions carry unique ids, 1 otherwise (None without state)."""
        if any(c.state_unique_ids for c in self.commits.values()) or any(
                f.unique_id for s in self.stores for f in s.files):
            return 2
        return 1 if self.stores else None


@dataclass(frozen=True)
class Checkpoint:
    """A snapshot of a base checkpoint dir: every query folder under it, parsed."""

    base: Path
    queries: dict[str, QueryCheckpoint]


def resolve_dir(location: str) -> Path:
    """The local folder of a `--checkpoint-dir` (plain path or file:// URI); other schemes are not supported."""
    if location.startswith("file://"):
        return Path(location[len("file://"):])
    if "://" in location:
        scheme = location.split("://", 1)[0]
        raise CheckpointError(f"{scheme}:// checkpoints are not supported: give a local path or a file:// URI")
    return Path(location)


def looks_like_query(path: Path) -> bool:
    return path.is_dir() and ((path / "offsets").is_dir() or (path / "metadata").is_file() or (path / "commits").is_dir())


def read_checkpoint(base: Path) -> Checkpoint:
    """Read every query folder under `base`; CheckpointError when `base` is not a readable checkpoint dir."""
    try:
        if not base.exists():
            raise CheckpointError(f"{base}: no such directory")
        if not base.is_dir():
            raise CheckpointError(f"{base}: not a directory")
        children = sorted(base.iterdir())
        if not children:
            raise CheckpointError(f"{base} is empty: not a checkpoint dir (it has no query folders)")
        if looks_like_query(base):
            raise CheckpointError(f"{base} is one query's checkpoint: give its parent, {base.parent}, the job's --checkpoint-dir")
        queries = {p.name: read_query(p) for p in children if looks_like_query(p)}
    except OSError as e:
        raise CheckpointError(f"cannot read {base}: {e.strerror or e}") from None
    if not queries:
        raise CheckpointError(f"{base} is not a checkpoint dir: none of its folders has offsets/, commits/ or metadata")
    return Checkpoint(base, queries)


def read_query(path: Path) -> QueryCheckpoint:
    files = tuple(_walk(path))
    by_rel = {f.rel: f for f in files}
    offsets = {}
    commits = {}
    for f in files:
        try:
            if f.parent == "offsets" and _BATCH.match(f.name):
                offsets[int(f.name)] = parse_offsets(path / f.rel, int(f.name))
            elif f.parent == "commits" and _BATCH.match(f.name):
                commits[int(f.name)] = parse_commit(path / f.rel, int(f.name), by_rel[f.rel].mtime)
        except FileNotFoundError:  # purged by a running job since the listing
            continue
    try:
        stores = read_stores(path, ((f.rel, f.size) for f in files))
    except CorruptStateFile as e:
        raise CheckpointError(f"{e.path} is corrupt: {e}; which SST files it needs is unknown") from None
    return QueryCheckpoint(path.name, path, _query_id(path), offsets, commits, stores, files)


def _walk(root: Path):
    for p in sorted(root.rglob("*")):
        try:
            if p.is_symlink() or not p.is_file():
                continue
            st = p.stat()
        except FileNotFoundError:  # a running job renamed or purged it since the listing
            continue
        yield FileInfo(p.relative_to(root).as_posix(), st.st_size, st.st_mtime)


def _query_id(path: Path) -> str | None:
    meta = path / "metadata"
    if not meta.exists():
        return None
    try:
        data = json.loads(meta.read_text(encoding="utf-8"))
        return str(data["id"])
    except (ValueError, KeyError, TypeError) as e:
        raise CheckpointError(f"{meta} is corrupt ({_why(e)}): expected {{\"id\": ...}}") from None


def _read_log(path: Path) -> list[str]:
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise CheckpointError(f"{path} is corrupt: not UTF-8 text") from None
    if not text.strip():
        raise CheckpointError(f"{path} is corrupt (truncated?): the file is empty")
    lines = text.split("\n")
    if not _VERSION_LINE.match(lines[0].strip()):
        raise CheckpointError(f"{path} is corrupt: its first line should be the log version (v1), found {lines[0][:20]!r}")
    return lines[1:]


def parse_offsets(path: Path, batch_id: int) -> OffsetsEntry:
    """Parse offsets/<batch>: a version line, the batch metadata, then one line per source ('-' when none)."""
    lines = [line for line in _read_log(path) if line.strip()]
    if not lines:
        raise CheckpointError(f"{path} is corrupt (truncated?): no batch metadata after the version line")
    try:
        meta = json.loads(lines[0])
        if not isinstance(meta, dict):
            raise ValueError("metadata is not a JSON object")
        sources = tuple(None if line.strip() == "-" else _source_offsets(json.loads(line)) for line in lines[1:])
    except (ValueError, TypeError, AttributeError) as e:
        raise CheckpointError(f"{path} is corrupt (truncated?): {_why(e)}") from None
    if not sources:
        raise CheckpointError(f"{path} is corrupt (truncated?): it has no source offsets")
    conf = meta.get("conf")
    conf = {str(k): str(v) for k, v in conf.items()} if isinstance(conf, dict) else {}
    return OffsetsEntry(batch_id, meta.get("batchTimestampMs"), meta.get("batchWatermarkMs"), sources, conf)


def _source_offsets(data: object) -> dict[str, dict[int, int]]:
    """Kafka's {"topic": {"0": 12, ...}}; other sources' offsets are kept as an empty dict."""
    if not isinstance(data, dict):
        return {}
    out: dict[str, dict[int, int]] = {}
    for topic, parts in data.items():
        if isinstance(parts, dict):
            out[topic] = {int(p): int(o) for p, o in parts.items()}
    return out


def parse_commit(path: Path, batch_id: int, mtime: float) -> CommitEntry:
    lines = [line for line in _read_log(path) if line.strip()]
    try:
        meta = json.loads(lines[0]) if lines else None
        if not isinstance(meta, dict):
            raise ValueError("no commit metadata after the version line")
        ids = _unique_ids(meta.get("stateUniqueIds"))
    except (ValueError, TypeError) as e:
        raise CheckpointError(f"{path} is corrupt (truncated?): {_why(e)}") from None
    return CommitEntry(batch_id, meta.get("nextBatchWatermarkMs"), mtime, ids)


def _unique_ids(data: object) -> dict[str, tuple[tuple[str, ...], ...]] | None:
    """v2's {"<operator>": [[id per store name] per partition]}; None when the entry has none (format v1)."""
    if data is None:
        return None
    if not isinstance(data, dict):
        raise ValueError("stateUniqueIds is not a JSON object")
    out = {}
    for op, partitions in data.items():
        if not isinstance(partitions, list) or not all(
                isinstance(p, list) and all(isinstance(i, str) for i in p) for p in partitions):
            raise ValueError(f"stateUniqueIds of operator {op} is not a list of lists of ids")
        out[str(op)] = tuple(tuple(p) for p in partitions)
    return out


def _why(e: Exception) -> str:
    return str(e).splitlines()[0] if str(e) else type(e).__name__


def ms_to_iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def epoch_to_iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def dir_summary(q: QueryCheckpoint) -> dict[str, dict[str, int]]:
    """Number of files and bytes in each of offsets/, commits/, sources/, state/ (plus everything else)."""
    out = {d: {"files": 0, "bytes": 0} for d in (*SUMMARY_DIRS, "other")}
    for f in q.files:
        top = f.rel.split("/", 1)[0] if "/" in f.rel else "other"
        slot = out[top if top in SUMMARY_DIRS else "other"]
        slot["files"] += 1
        slot["bytes"] += f.size
    return out
