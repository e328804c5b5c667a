"""What `inspect` reports about each query of a checkpoint: progress, Kafka offsets and lag, files, state."""

from __future__ import annotations

from checkpoint_tools.guard import JobStatus
from checkpoint_tools.lag import PartitionOffsets, partition_lag
from checkpoint_tools.layout import Checkpoint, QueryCheckpoint, dir_summary, epoch_to_iso, ms_to_iso
from checkpoint_tools.state import HDFS_PROVIDER, short_provider
from checkpoint_tools.tables import human_bytes, table

Broker = dict[str, dict[int, PartitionOffsets] | None]


def topics_of(cp: Checkpoint) -> set[str]:
    """Every topic any query's newest offsets entry reads."""
    topics: set[str] = set()
    for q in cp.queries.values():
        newest = q.offsets.get(q.last_planned) if q.last_planned is not None else None
        for source in newest.sources if newest else ():
            topics |= set(source or {})
    return topics


def inspect_report(cp: Checkpoint, status: JobStatus, broker: Broker | None = None,
                   in_use: tuple[str, ...] = ()) -> dict[str, object]:
    """A JSON-ready report; lag is filled in only when `broker` offsets are given."""
    return {
        "checkpoint_dir": str(cp.base),
        "job": status.as_dict(),
        "queries": [query_report(q, status, broker, in_use) for _, q in sorted(cp.queries.items())],
    }


def query_report(q: QueryCheckpoint, status: JobStatus, broker: Broker | None, in_use: tuple[str, ...]) -> dict[str, object]:
    last = q.last_committed
    entry = q.offsets.get(last) if last is not None else None
    commit = q.commits.get(last) if last is not None else None
    committed = q.committed_offsets()
    if broker is not None and not committed:  # nothing committed yet: show what the broker has for the topics read
        newest = q.offsets.get(q.last_planned) if q.last_planned is not None else None
        topics = {t for s in (newest.sources if newest else ()) for t in (s or {})}
        committed = {t: {} for t in topics}
    relevant = None if broker is None else {t: broker.get(t) for t in committed}
    partitions = partition_lag(committed, relevant)
    lags = [p["lag"] for p in partitions]
    return {
        "name": q.name,
        "id": q.query_id,
        "used_by_job": q.name in in_use if in_use else None,
        "running": status.runs(q.name),
        "last_committed_batch": last,
        "last_batch_time": ms_to_iso(entry.timestamp_ms) if entry else None,
        "committed_at": epoch_to_iso(commit.committed_at) if commit else None,
        "watermark": ms_to_iso(commit.next_watermark_ms) if commit and commit.next_watermark_ms else None,
        "pending_batch": q.last_planned if q.last_planned is not None and (last is None or q.last_planned > last) else None,
        "batches_in_log": {"offsets": len(q.offsets), "commits": len(q.commits),
                           "oldest": min(q.offsets) if q.offsets else None},
        "partitions": partitions,
        "total_lag": None if broker is None or any(lag is None for lag in lags) else sum(lags),
        "files": dir_summary(q),
        "bytes": q.total_bytes,
        "state": state_summary(q),
    }


def state_summary(q: QueryCheckpoint) -> dict[str, object]:
    """The state store's layout: provider, format, versions, and files and bytes of each kind (RocksDB: changelog,
    zip, sst, log; HDFS: delta, snapshot), plus the SST files some zip references that are missing."""
    versions = [v for s in q.stores for v in s.versions]
    kinds: dict[str, dict[str, int]] = {}
    for s in q.stores:
        entries = [(f.kind, f.size) for f in s.files]
        entries += [("sst" if f.rel.endswith(".sst") else "log", f.size) for f in s.shared]
        for kind, size in entries:
            slot = kinds.setdefault(kind, {"files": 0, "bytes": 0})
            slot["files"] += 1
            slot["bytes"] += size
    provider = short_provider(q.provider_conf) or next((s.provider for s in q.stores if s.provider), None)
    return {
        "provider": provider,
        "checkpoint_format": q.checkpoint_format,
        "operators": len({s.operator for s in q.stores}),
        "stores": len(q.stores),
        "oldest_version": min(versions) if versions else None,
        "newest_version": max(versions) if versions else None,
        "snapshots": sum(1 for s in q.stores for f in s.files if f.full),
        "files": {k: kinds[k] for k in sorted(kinds, key=_kind_order)},
        "missing_sst_files": sum(len(s.referenced() - {f.rel for f in s.shared}) for s in q.stores),
    }


def _kind_order(kind: str) -> int:
    order = ("changelog", "zip", "sst", "log", "delta", "snapshot")
    return order.index(kind) if kind in order else len(order)


def render_inspect(report: dict[str, object]) -> str:
    queries = report["queries"]
    job = report["job"]
    head = f"checkpoint {report['checkpoint_dir']}: job {_job_line(job)}"
    summary = table(
        ["QUERY", "ID", "LAST BATCH", "BATCH TIME", "COMMITTED AT", "WATERMARK", "RUNNING", "LAG", "SIZE"],
        [[q["name"], q["id"], q["last_committed_batch"], q["last_batch_time"], q["committed_at"], q["watermark"],
          q["running"], q["total_lag"], human_bytes(q["bytes"])] for q in queries],
        right=(2, 7, 8),
    )
    offsets = table(
        ["QUERY", "TOPIC", "PARTITION", "COMMITTED", "END", "LAG"],
        [[q["name"], p["topic"], p["partition"], p["committed"], p["end"], p["lag"]] for q in queries for p in q["partitions"]],
        right=(2, 3, 4, 5),
    )
    files = table(
        ["QUERY", "DIR", "FILES", "SIZE"],
        [[q["name"], d, n["files"], human_bytes(n["bytes"])] for q in queries for d, n in q["files"].items() if n["files"]],
        right=(2, 3),
    )
    state = table(
        ["QUERY", "PROVIDER", "FORMAT", "OPERATORS", "STORES", "VERSIONS", "SNAPSHOTS"],
        [[q["name"], s["provider"], s["checkpoint_format"], s["operators"], s["stores"],
          f"{s['oldest_version']}..{s['newest_version']}", s["snapshots"]]
         for q in queries if (s := q["state"])["stores"]],
        right=(2, 3, 4, 6),
    )
    state_files = table(
        ["QUERY", "STATE FILES", "FILES", "SIZE"],
        [[q["name"], kind, n["files"], human_bytes(n["bytes"])] for q in queries for kind, n in q["state"]["files"].items()],
        right=(2, 3),
    )
    parts = [head, "", summary, "", "Kafka offsets (committed = the next offset the query reads)", offsets, "", "Files", files]
    if any(q["state"]["stores"] for q in queries):
        parts += ["", "State store", state, "", state_files]
    notes = [f"{q['name']} is not one of the job's queries: `clean --remove-query {q['name']}` deletes it"
             for q in queries if q["used_by_job"] is False]
    notes += [f"{q['name']}: batch {q['pending_batch']} was planned but not committed (it runs again on restart)"
              for q in queries if q["pending_batch"] is not None and not q["running"]]
    notes += [f"{q['name']}: {n} SST files that state snapshots reference are missing (those versions cannot be restored)"
              for q in queries if (n := q["state"]["missing_sst_files"])]
    notes += [f"{q['name']} keeps its state with {HDFS_PROVIDER}, as its checkpoint records: Spark restores that "
              f"provider whatever the job's default (`reset {q['name']}` starts the query over with the default)"
              for q in queries if q["state"]["stores"] and q["state"]["provider"] == HDFS_PROVIDER]
    if notes:
        parts += ["", *(f"note: {n}" for n in notes)]
    return "\n".join(parts)


def _job_line(job: dict[str, object]) -> str:
    if job["state"] == "stopped":
        return "not running (no lock file)"
    who = f"pid {job['pid']} on {job['host']}" if job["pid"] is not None else "unreadable lock file"
    state = "running" if job["state"] == "running" else "not running (stale lock: the job died)"
    return f"{state}, {who}, last heartbeat {job['heartbeat_age_seconds']:.0f}s ago"
