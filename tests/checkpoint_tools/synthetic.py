"""Synthetic checkpoint dirs laid out like the job's (Spark 4.2: HDFS or RocksDB state store), built file by file in
tmp_path. The RocksDB layout copies what real job runs wrote (see tests/checkpoint_tools/test_real_checkpoint.py)."""

from __future__ import annotations

import json
import os
import socket
import zipfile
from collections.abc import Iterable
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

from clickpulse.lock import LOCK_FILE, LockInfo

TOPIC = "clicks"
PROVIDER = "spark.sql.streaming.stateStore.providerClass"
HDFS = "org.apache.spark.sql.execution.streaming.state.HDFSBackedStateStoreProvider"
ROCKSDB = "org.apache.spark.sql.execution.streaming.state.RocksDBStateStoreProvider"
CONF = {"spark.sql.shuffle.partitions": "2", PROVIDER: HDFS}


def write(path: Path, content: str | bytes, crc: bool = True) -> Path:
    """Write a file and, like Hadoop's local file system, its `.<name>.crc` next to it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        content = content.encode()
    path.write_bytes(content)
    if crc:
        (path.parent / f".{path.name}.crc").write_bytes(b"crc\x00" + bytes(8))
    return path


def offsets_text(batch: int, offsets: dict[int, int], topic: str = TOPIC, provider: str = HDFS) -> str:
    meta = {"batchWatermarkMs": 0, "batchTimestampMs": 1_795_428_615_000 + batch * 1000, "conf": {**CONF, PROVIDER: provider}}
    return "v1\n" + json.dumps(meta) + "\n" + json.dumps({topic: {str(p): o for p, o in offsets.items()}})


def offsets_at(batch: int, partitions: int = 3, per_batch: int = 100) -> dict[int, int]:
    return {p: (batch + 1) * per_batch + p for p in range(partitions)}


def make_query(base: Path, name: str, planned: Iterable[int], committed: Iterable[int],
               stores: dict[str, dict[str, Iterable[int]]] | None = None, partitions: int = 3,
               provider: str = HDFS) -> Path:
    """One query folder: offsets for `planned` batches, commits for `committed`, and state files per store.

    `stores` maps a store folder under state/ (e.g. "0/0") to {"delta": versions, "snapshot": versions}.
    """
    q = base / name
    write(q / "metadata", json.dumps({"id": f"{name}-0000-query-id"}))
    write(q / "sources" / "0" / "0", "\x00v1\n" + json.dumps({TOPIC: {str(p): 0 for p in range(partitions)}}))
    for b in planned:
        write(q / "offsets" / str(b), offsets_text(b, offsets_at(b, partitions), provider=provider))
    for b in committed:
        write_commit(q, b)
    for store, kinds in (stores or {}).items():
        d = store_dir(q, store)
        for kind, versions in kinds.items():
            for v in versions:
                main = write(d / f"{v}.{kind}", b"x" * (100 + v))
                # Spark 4.1's own checksum file, which Hadoop gives a `.crc` of its own.
                write(main.parent / f"{main.name}.crc", json.dumps({"algorithm": "CRC32C", "value": v}))
    return q


def write_commit(q: Path, batch: int, state_ids: dict[str, list[list[str]]] | None = None) -> Path:
    """commits/<batch>; `state_ids` is checkpoint format v2's stateUniqueIds ({op: [[id] per partition]})."""
    meta: dict[str, object] = {"nextBatchWatermarkMs": 1_795_420_000_000 + batch}
    if state_ids is not None:
        meta["stateUniqueIds"] = state_ids
    return write(q / "commits" / str(batch), "v1\n" + json.dumps(meta))


def store_dir(q: Path, store: str) -> Path:
    """state/<store> with the schema and operator metadata Spark writes next to the versions."""
    d = q / "state" / store
    if not (d / "_metadata" / "schema").exists():
        write(d / "_metadata" / "schema", b"\x00v2 schema")
    op_meta = q / "state" / store.split("/")[0] / "_metadata" / "metadata"
    if not op_meta.exists():
        write(op_meta, 'v1\n{"operatorInfo":{"operatorId":0}}')
    return d


def sst(n: int) -> str:
    """The name Spark gives RocksDB's SST file 0000<n>.sst in the checkpoint: <local name>-<uuid>.sst."""
    return f"{n:06d}-9cd1618e-524f-4c25-997c-{n:012d}.sst"


def rocksdb_zip(path: Path, ssts: Iterable[str], logs: Iterable[str] = ()) -> Path:
    """A snapshot zip as RocksDBFileManager writes it: RocksDB's small files and `metadata` naming its SST files."""
    meta = {"sstFiles": [{"localFileName": f"{name.split('-')[0]}.sst", "dfsSstFileName": name, "sizeBytes": 64}
                         for name in ssts],
            "numKeys": 10, "numInternalKeys": 0, "columnFamilyMapping": {}, "maxColumnFamilyId": 0}
    if logs:
        meta["logFiles"] = [{"localFileName": f"{name.split('-')[0]}.log", "dfsLogFileName": name, "sizeBytes": 64}
                            for name in logs]
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("CURRENT", "MANIFEST-000005\n")
        z.writestr("MANIFEST-000005", b"\x00" * 32)
        z.writestr("OPTIONS-000007", "[Version]\n")
        z.writestr("metadata", "v1\n" + json.dumps(meta))
    (path.parent / f".{path.name}.crc").write_bytes(b"crc\x00" + bytes(8))
    return path


def rocksdb_store(q: Path, store: str, changelogs: Iterable[int], zips: dict[int, Iterable[str]],
                  unreferenced: Iterable[str] = (), ids: dict[int, str] | None = None) -> Path:
    """A RocksDB store: `changelogs` versions, a zip per version of `zips` referencing its SST files, and every
    SST file named anywhere (plus `unreferenced` ones) in SSTs/. With `ids` (version -> uniqueId), files are named
    as checkpoint format v2 names them: <version>_<uniqueId>.changelog|zip."""
    d = store_dir(q, store)

    def name(v: int, ext: str) -> str:
        return f"{v}_{ids[v]}.{ext}" if ids and v in ids else f"{v}.{ext}"

    for v in changelogs:
        write(d / name(v, "changelog"), b"c" * (100 + v))
    for v, ssts in zips.items():
        rocksdb_zip(d / name(v, "zip"), ssts)
    for s in {s for names in zips.values() for s in names} | set(unreferenced):
        write(d / "SSTs" / s, b"s" * 1000)
    return d


def rocksdb_checkpoint(base: Path, batches: int = 12) -> Path:
    """Both of the job's queries on RocksDB: aggregates with 2 operators x 2 partitions, a changelog per version,
    a zip every 4 versions, each zip referencing the previous zip's SST files and one new one."""
    make_query(base, "aggregates", range(batches), range(batches), provider=ROCKSDB)
    q = base / "aggregates"
    zips = {v: [sst(k) for k in range(4, v + 1, 4)] for v in range(4, batches + 1, 4)}
    for store in ("0/0", "0/1", "1/0", "1/1"):
        rocksdb_store(q, store, range(1, batches + 1), zips)
    make_query(base, "invalid_events", range(batches), range(batches), provider=ROCKSDB)
    return base


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
