"""What `clean` deletes: a pure plan computed from a checkpoint snapshot, and its execution, kept apart.

Retention, per query, with B the newest committed batch and P the newest planned one (offsets/):
- offsets/ and commits/ entries of batches >= O are kept, O = min(B - keep + 1, P - 1): the newest `keep`
  batches, and always the entry before the newest one, which Spark re-reads when it restarts;
- state (per operator partition): version V is the state batch V starts from, so restoring batch O needs the
  newest full version at or below O (the restore base: an HDFS `.snapshot` or a RocksDB `.zip`) and every delta or
  changelog after it; versioned files older than the base go (without a base every state file stays);
- RocksDB's shared SST (and archived log) files go when no kept zip references them, so every SST a kept zip
  needs stays; with checkpoint format v2 a zip is a base only when its uniqueId is the one its batch committed;
- orphaned temp files (`.<name>.<uuid>.tmp`) and checksum files whose main file is gone or going;
- nothing at all before the first commit, and never sources/, metadata or any _metadata/ folder.
"""

from __future__ import annotations

import logging
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from checkpoint_tools.layout import Checkpoint, CheckpointError, QueryCheckpoint
from checkpoint_tools.state import StateFile, StoreDir

log = logging.getLogger(__name__)

SPARK_MIN_BATCHES_TO_RETAIN = 100  # spark.sql.streaming.minBatchesToRetain's default
_TEMP = re.compile(r"\.tmp(\.|$)")
# Zips go before the SST files they referenced, so an interrupted clean never leaves a zip without its SSTs.
KIND_ORDER = ("state", "sst", "offsets", "commits", "temp", "checksum", "query")


@dataclass(frozen=True)
class Deletion:
    """One thing to delete: a file, or (kind "query") a whole query folder. `rel` is relative to the query dir."""

    query: str
    rel: str
    size: int
    kind: str
    files: int = 1


@dataclass(frozen=True)
class QueryRetention:
    """What a query keeps: log entries from `oldest_batch` on, and per store the oldest version kept."""

    query: str
    newest_committed: int | None
    oldest_batch: int | None
    state_from: dict[str, int | None] = field(default_factory=dict)


@dataclass(frozen=True)
class CleanPlan:
    base: Path
    keep: int
    deletions: tuple[Deletion, ...]
    retention: tuple[QueryRetention, ...]

    @property
    def bytes(self) -> int:
        return sum(d.size for d in self.deletions)

    @property
    def files(self) -> int:
        return sum(d.files for d in self.deletions)

    def path(self, d: Deletion) -> Path:
        return self.base / d.query / d.rel if d.rel else self.base / d.query

    def by_kind(self) -> list[tuple[str, str, int, int]]:
        """(query, kind, files, bytes), in a stable order."""
        totals: dict[tuple[str, str], list[int]] = {}
        for d in self.deletions:
            slot = totals.setdefault((d.query, d.kind), [0, 0])
            slot[0] += d.files
            slot[1] += d.size
        order = {k: i for i, k in enumerate(KIND_ORDER)}
        return [(q, k, n, b) for (q, k), (n, b) in sorted(totals.items(), key=lambda kv: (kv[0][0], order[kv[0][1]]))]


def oldest_batch_to_keep(q: QueryCheckpoint, keep: int) -> int | None:
    """The oldest batch whose offsets/commits entries stay; None before the first commit (everything stays)."""
    if keep < 1:
        raise ValueError(f"keep must be at least 1, got {keep}")
    newest = q.last_committed
    if newest is None:
        return None
    oldest = newest - keep + 1
    if q.last_planned is not None:
        oldest = min(oldest, q.last_planned - 1)  # restart reads offsets/<P-1> as the committed position
    return max(oldest, 0)


def plan_clean(cp: Checkpoint, keep: int = SPARK_MIN_BATCHES_TO_RETAIN, remove_queries: tuple[str, ...] = (),
               in_use: tuple[str, ...] = ()) -> CleanPlan:
    """Everything Spark will never read again under `cp`; `remove_queries` go whole (never one in `in_use`)."""
    for name in remove_queries:
        if name in in_use:
            raise CheckpointError(f"{name} is one of the job's queries: use `reset {name}` to start it over")
        if name not in cp.queries:
            found = ", ".join(sorted(cp.queries)) or "none"
            raise CheckpointError(f"no query checkpoint named {name!r} in {cp.base} (found: {found})")
    deletions: list[Deletion] = []
    retention: list[QueryRetention] = []
    for name, q in sorted(cp.queries.items()):
        if name in remove_queries:
            deletions.append(Deletion(name, "", q.total_bytes, "query", len(q.files)))
            continue
        planned, kept = plan_query(q, keep)
        _check_keeps_newest(q, planned)
        deletions += planned
        retention.append(kept)
    return CleanPlan(cp.base, keep, tuple(deletions), tuple(retention))


def plan_query(q: QueryCheckpoint, keep: int) -> tuple[list[Deletion], QueryRetention]:
    oldest = oldest_batch_to_keep(q, keep)
    sizes = {f.rel: f for f in q.files}
    doomed: dict[str, str] = {}  # rel -> kind
    state_from: dict[str, int | None] = {}
    if oldest is not None:
        for log_dir, entries in (("offsets", q.offsets), ("commits", q.commits)):
            for batch in entries:
                if batch < oldest:
                    doomed[f"{log_dir}/{batch}"] = log_dir
        for store in q.stores:
            base = restore_base(q, store, oldest)
            state_from[store.rel] = base
            if base is not None:
                for f in store.files:
                    if f.version < base:
                        doomed[f.rel] = "state"
                needed = store.referenced(min_version=base)
                for shared in store.shared:
                    if shared.rel not in needed:
                        doomed[shared.rel] = "sst"
    for f in q.files:
        if f.rel not in doomed and _TEMP.search(f.name):
            doomed[f.rel] = "temp"
    existing = set(sizes)
    for f in q.files:
        if f.rel not in doomed and f.name.endswith(".crc") and _checksum_is_orphan(f.rel, existing, doomed):
            doomed[f.rel] = "checksum"
    order = {k: i for i, k in enumerate(KIND_ORDER)}
    deletions = sorted((Deletion(q.name, rel, sizes[rel].size, kind) for rel, kind in doomed.items()),
                       key=lambda d: (order[d.kind], _natural(d.rel)))
    return deletions, QueryRetention(q.name, q.last_committed, oldest, state_from)


def restore_base(q: QueryCheckpoint, store: StoreDir, oldest: int) -> int | None:
    """The newest full version at or below `oldest` that Spark would restore from; None when there is none."""
    return max((f.version for f in store.files if f.full and f.version <= oldest and _committed(q, store, f)),
               default=None)


def _committed(q: QueryCheckpoint, store: StoreDir, f: StateFile) -> bool:
    # v2 restores along the lineage of committed uniqueIds: a zip of an attempt that never committed is no base.
    return f.unique_id is None or q.committed_state_id(store, f.version) == f.unique_id


def checksum_target(rel: str) -> str:
    """The file a checksum file checks: Hadoop's `.<name>.crc` and Spark 4.1's `<name>.crc` both check <name>."""
    parent, _, name = rel.rpartition("/")
    name = name[: -len(".crc")]
    if name.startswith("."):
        name = name[1:]
    return f"{parent}/{name}" if parent else name


def _checksum_is_orphan(rel: str, existing: set[str], doomed: dict[str, str]) -> bool:
    target = checksum_target(rel)
    if target not in existing or target in doomed:
        return True
    # `.1.delta.crc.crc` checks `1.delta.crc`, which checks `1.delta`: it goes when its chain ends nowhere.
    return target.endswith(".crc") and _checksum_is_orphan(target, existing, doomed)


def _check_keeps_newest(q: QueryCheckpoint, planned: list[Deletion]) -> None:
    """A last line of defence: the newest batch's entries and its state versions are never in a plan."""
    rels = {d.rel for d in planned}
    must_keep = set()
    if q.last_planned is not None:
        must_keep |= {f"offsets/{q.last_planned}", f"offsets/{q.last_planned - 1}"}
    if q.last_committed is not None:
        must_keep |= {f"commits/{q.last_committed}", f"offsets/{q.last_committed}"}
        for store in q.stores:
            if store.files:
                newest = max(store.versions)
                must_keep |= {f.rel for f in store.files if f.version == newest}
            # never an SST that a zip staying behind still references
            must_keep |= {r for f in store.files if f.kind == "zip" and f.rel not in rels for r in f.references}
    clash = sorted(rels & must_keep)
    if clash:
        raise CheckpointError(f"internal error: the plan for {q.name} would delete {clash[0]}; nothing was deleted")


def _natural(rel: str) -> list[object]:
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", rel)]


def execute(plan: CleanPlan) -> tuple[int, int]:
    """Delete what `plan` lists; return (files, bytes) deleted. Each deletion is safe on its own, so an
    interruption leaves a checkpoint Spark can still use (run clean again to finish)."""
    files = freed = 0
    for d in plan.deletions:
        path = plan.path(d)
        try:
            if d.kind == "query":
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
        except OSError as e:
            raise CheckpointError(f"could not delete {path} after deleting {files} files: {e.strerror or e}") from None
        files += d.files
        freed += d.size
    return files, freed
