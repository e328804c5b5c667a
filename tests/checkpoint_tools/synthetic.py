"""Synthetic checkpoint dirs laid out like the job's (Spark 4.1, HDFS state store), built file by file in tmp_path."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterable
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

from clickpulse.lock import LOCK_FILE, LockInfo

TOPIC = "clicks"
CONF = {"spark.sql.shuffle.partitions": "2",
        "spark.sql.streaming.stateStore.providerClass":
            "org.apache.spark.sql.execution.streaming.state.HDFSBackedStateStoreProvider"}


def write(path: Path, content: str | bytes, crc: bool = True) -> Path:
    """Write a file and, like Hadoop's local file system, its `.<name>.crc` next to it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        content = content.encode()
    path.write_bytes(content)
    if crc:
        (path.parent / f".{path.name}.crc").write_bytes(b"crc\x00" + bytes(8))
    return path


def offsets_text(batch: int, offsets: dict[int, int], topic: str = TOPIC) -> str:
    meta = {"batchWatermarkMs": 0, "batchTimestampMs": 1_795_428_615_000 + batch * 1000, "conf": CONF}
    return "v1\n" + json.dumps(meta) + "\n" + json.dumps({topic: {str(p): o for p, o in offsets.items()}})


def offsets_at(batch: int, partitions: int = 3, per_batch: int = 100) -> dict[int, int]:
    return {p: (batch + 1) * per_batch + p for p in range(partitions)}


def make_query(base: Path, name: str, planned: Iterable[int], committed: Iterable[int],
               stores: dict[str, dict[str, Iterable[int]]] | None = None, partitions: int = 3) -> Path:
    """One query folder: offsets for `planned` batches, commits for `committed`, and state files per store.

    `stores` maps a store folder under state/ (e.g. "0/0") to {"delta": versions, "snapshot": versions}.
    """
    q = base / name
    write(q / "metadata", json.dumps({"id": f"{name}-0000-query-id"}))
    write(q / "sources" / "0" / "0", "\x00v1\n" + json.dumps({TOPIC: {str(p): 0 for p in range(partitions)}}))
    for b in planned:
        write(q / "offsets" / str(b), offsets_text(b, offsets_at(b, partitions)))
    for b in committed:
        write(q / "commits" / str(b), "v1\n" + json.dumps({"nextBatchWatermarkMs": 1_795_420_000_000 + b}))
    for store, kinds in (stores or {}).items():
        d = q / "state" / store
        write(d / "_metadata" / "schema", b"\x00v2 schema")
        op_meta = q / "state" / store.split("/")[0] / "_metadata" / "metadata"
        if not op_meta.exists():
            write(op_meta, 'v1\n{"operatorInfo":{"operatorId":0}}')
        for kind, versions in kinds.items():
            for v in versions:
                main = write(d / f"{v}.{kind}", b"x" * (100 + v))
                # Spark 4.1's own checksum file, which Hadoop gives a `.crc` of its own.
                write(main.parent / f"{main.name}.crc", json.dumps({"algorithm": "CRC32C", "value": v}))
    return q


def job_checkpoint(base: Path, batches: int = 12, snapshots: Iterable[int] = (5, 10)) -> Path:
    """Both of the job's queries: `batches` committed batches, aggregates with 2 operators x 2 partitions."""
    snaps = list(snapshots)
    stores = {f"{op}/{part}": {"delta": range(1, batches + 1), "snapshot": snaps} for op in (0, 1) for part in (0, 1)}
    make_query(base, "aggregates", range(batches), range(batches), stores)
    make_query(base, "invalid_events", range(batches), range(batches))
    return base


def listing(base: Path) -> dict[str, int]:
    """Every file under `base` with its size: compare before and after to prove what was (not) deleted."""
    return {p.relative_to(base).as_posix(): p.stat().st_size for p in sorted(base.rglob("*")) if p.is_file()}


def write_lock(base: Path, age: timedelta = timedelta(0), pid: int | None = None, host: str | None = None) -> LockInfo:
    """A job heartbeat file whose last beat was `age` ago."""
    now = datetime.now(UTC)
    info = LockInfo(pid or os.getpid(), host or socket.gethostname(), (now - age - timedelta(minutes=5)).isoformat(),
                    (now - age).isoformat(), ("aggregates", "invalid_events"))
    base.mkdir(parents=True, exist_ok=True)
    (base / LOCK_FILE).write_text(json.dumps(asdict(info)))
    return info
