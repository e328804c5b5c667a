"""The clean plan on synthetic checkpoints: exactly what Spark will never read again, and nothing else."""

from __future__ import annotations

import random

import pytest

from checkpoint_tools.clean import CleanPlan, execute, oldest_batch_to_keep, plan_clean
from checkpoint_tools.layout import CheckpointError, read_checkpoint
from storage import contract as c
from tests.checkpoint_tools.synthetic import job_checkpoint, listing, make_query, write


def plan(base, keep=100, remove=()) -> CleanPlan:
    return plan_clean(read_checkpoint(base), keep, tuple(remove), c.QUERIES)


def doomed(p: CleanPlan) -> set[str]:
    return {str(p.path(d).relative_to(p.base)) for d in p.deletions}


def test_keeps_the_newest_n_batches_of_offsets_and_commits_with_their_checksums(tmp_path):
    # Given batches 0..11 all committed
    make_query(tmp_path, "invalid_events", range(12), range(12))
    # When cleaning keeps 3 batches
    gone = doomed(plan(tmp_path, keep=3))
    # Then batches 0..8 go (entries and their Hadoop checksums), 9..11 stay
    expected = {f"invalid_events/{d}/{name}" for d in ("offsets", "commits") for b in range(9)
                for name in (str(b), f".{b}.crc")}
    assert gone == expected


def test_the_default_keeps_sparks_hundred_batches(tmp_path):
    make_query(tmp_path, "invalid_events", range(105), range(105))
    gone = doomed(plan(tmp_path))
    assert {g for g in gone if not g.split("/")[-1].startswith(".")} == {
        f"invalid_events/{d}/{b}" for d in ("offsets", "commits") for b in range(5)}


def test_keep_one_still_keeps_the_entry_before_the_newest_which_spark_reads_on_restart(tmp_path):
    # Given batches 0..9 committed
    make_query(tmp_path, "invalid_events", range(10), range(10))
    q = read_checkpoint(tmp_path).queries["invalid_events"]
    # Then keeping 1 batch keeps offsets 8 and 9 (a restart reads offsets/<newest - 1>)
    assert oldest_batch_to_keep(q, 1) == 8
    gone = doomed(plan(tmp_path, keep=1))
    assert "invalid_events/offsets/8" not in gone and "invalid_events/offsets/7" in gone


def test_an_uncommitted_newest_batch_and_the_last_committed_one_are_kept(tmp_path):
    # Given batch 10 planned but not committed (the job died mid-batch)
    make_query(tmp_path, "invalid_events", range(11), range(10))
    # When keeping 1 batch
    gone = doomed(plan(tmp_path, keep=1))
    # Then offsets 9 and 10 and commit 9 stay; 8 and older go
    for kept in ("offsets/10", "offsets/9", "commits/9"):
        assert f"invalid_events/{kept}" not in gone
    assert {"invalid_events/offsets/8", "invalid_events/commits/8"} <= gone


def test_state_keeps_the_newest_snapshot_at_or_below_the_oldest_kept_version_and_every_delta_after(tmp_path):
    # Given batches 0..11 committed (state versions 1..12), snapshots at versions 5 and 10
    make_query(tmp_path, "aggregates", range(12), range(12), {"0/0": {"delta": range(1, 13), "snapshot": [5, 10]}})
    # When keeping 4 batches (8..11): restoring batch 8 needs version 8 = snapshot 5 + deltas 6..8
    gone = doomed(plan(tmp_path, keep=4))
    state = {g.split("/")[-1] for g in gone if "/state/" in g}
    # Then versions 1..4 go with both their checksum files, snapshot 5 and everything after it stay
    assert state == {name for v in range(1, 5) for name in (f"{v}.delta", f".{v}.delta.crc", f"{v}.delta.crc",
                                                                   f".{v}.delta.crc.crc")}


def test_a_snapshot_exactly_at_the_oldest_kept_version_is_the_restore_base(tmp_path):
    make_query(tmp_path, "aggregates", range(12), range(12), {"0/0": {"delta": range(1, 13), "snapshot": [5, 10]}})
    # Keeping 2 batches (10, 11): version 10 is a snapshot, so versions below 10 go (the delta at 10 stays, as in Spark)
    gone = {g.split("/")[-1] for g in doomed(plan(tmp_path, keep=2)) if "/state/" in g}
    assert {n for n in gone if not n.endswith(".crc")} == {*(f"{v}.delta" for v in range(1, 10)), "5.snapshot"}


def test_without_a_snapshot_at_or_below_the_oldest_kept_version_every_state_file_stays(tmp_path):
    # Given only a snapshot at version 10, newer than the oldest kept version (8)
    make_query(tmp_path, "aggregates", range(12), range(12), {"0/0": {"delta": range(1, 13), "snapshot": [10]}})
    gone = doomed(plan(tmp_path, keep=4))
    assert not [g for g in gone if "/state/" in g]
    assert "aggregates/offsets/0" in gone  # the logs are still cleaned


def test_each_operator_partition_is_restored_from_its_own_snapshot(tmp_path):
    # Given partition 0 with a snapshot at 6 and partition 1 with none
    make_query(tmp_path, "aggregates", range(12), range(12), {
        "0/0": {"delta": range(1, 13), "snapshot": [6]},
        "0/1": {"delta": range(1, 13)},
    })
    gone = doomed(plan(tmp_path, keep=4))
    assert {g.split("/")[-1] for g in gone if "/state/0/0/" in g and not g.endswith("crc")} == {
        f"{v}.delta" for v in range(1, 6)}
    assert not [g for g in gone if "/state/0/1/" in g]


def test_orphaned_temp_and_checksum_files_go_even_when_no_batch_does(tmp_path):
    q = make_query(tmp_path, "aggregates", range(3), range(3), {"0/0": {"delta": range(1, 4)}})
    orphans = [
        write(q / "offsets" / ".3.5c1f0e2a-aaaa.tmp", "v1\n", crc=False),  # a rename that never happened
        write(q / "offsets" / "..3.5c1f0e2a-aaaa.tmp.crc", "crc", crc=False),
        write(q / "state" / "0" / "0" / ".4.delta.0b1c.tmp", "x", crc=False),
        write(q / "commits" / ".7.crc", "crc", crc=False),  # its entry is gone
        write(q / "state" / "0" / "0" / "9.delta.crc", "{}", crc=False),  # Spark's checksum of a missing delta
    ]
    gone = doomed(plan(tmp_path, keep=100))
    assert gone == {str(p.relative_to(tmp_path)) for p in orphans}


def test_sources_metadata_and_schema_folders_are_never_deleted(tmp_path):
    job_checkpoint(tmp_path, batches=30, snapshots=(10, 20))
    gone = doomed(plan(tmp_path, keep=1))
    assert gone  # plenty goes
    for g in gone:
        parts = g.split("/")
        assert parts[1] in ("offsets", "commits", "state"), g
        assert not any(p.startswith("_") for p in parts), g
    kept = set(listing(tmp_path)) - gone
    assert {"aggregates/sources/0/0", "aggregates/metadata", "aggregates/.metadata.crc",
            "aggregates/state/0/_metadata/metadata", "aggregates/state/0/0/_metadata/schema"} <= kept


def test_before_the_first_commit_nothing_but_orphans_goes(tmp_path):
    # Given a query that planned batch 0 and never committed it, with state files written
    make_query(tmp_path, "aggregates", [0], [], {"0/0": {"delta": [1]}})
    assert plan(tmp_path, keep=1).deletions == ()


def test_keeping_more_batches_than_exist_deletes_nothing(tmp_path):
    job_checkpoint(tmp_path, batches=12)
    assert plan(tmp_path, keep=12).deletions == ()


def test_a_named_query_folder_is_removed_whole_and_only_when_named(tmp_path):
    job_checkpoint(tmp_path, batches=3)
    make_query(tmp_path, "old_sessions", range(3), range(3))
    assert not [d for d in plan(tmp_path).deletions if d.query == "old_sessions"]
    p = plan(tmp_path, remove=["old_sessions"])
    (whole,) = [d for d in p.deletions if d.query == "old_sessions"]
    assert whole.kind == "query" and p.path(whole) == tmp_path / "old_sessions"
    assert whole.files == len([f for f in listing(tmp_path) if f.startswith("old_sessions/")])


def test_the_jobs_own_queries_cannot_be_removed_by_clean(tmp_path):
    job_checkpoint(tmp_path, batches=3)
    with pytest.raises(CheckpointError, match="use `reset aggregates`"):
        plan(tmp_path, remove=["aggregates"])


def test_removing_an_unknown_query_names_the_ones_there(tmp_path):
    job_checkpoint(tmp_path, batches=3)
    with pytest.raises(CheckpointError, match=r"'nope'.*found: aggregates, invalid_events"):
        plan(tmp_path, remove=["nope"])


def test_executing_a_plan_deletes_exactly_its_files_and_frees_its_bytes(tmp_path):
    job_checkpoint(tmp_path, batches=20, snapshots=(5, 10, 15))
    before = listing(tmp_path)
    p = plan(tmp_path, keep=3)
    files, freed = execute(p)
    after = listing(tmp_path)
    assert set(before) - set(after) == doomed(p)
    assert (files, freed) == (len(doomed(p)), sum(before[g] for g in doomed(p)))
    assert plan(tmp_path, keep=3).deletions == ()  # cleaning again finds nothing more


def restorable(versions: dict[str, set[int]], version: int) -> bool:
    """Spark's HDFS store restore: newest snapshot <= version, then every delta after it up to version."""
    base = max((v for v in versions["snapshot"] if v <= version), default=0)
    return all(v in versions["delta"] for v in range(base + 1, version + 1))


@pytest.mark.parametrize("seed", range(25))
def test_after_cleaning_every_kept_batch_can_still_be_restored(tmp_path, seed):
    # Given a random history: some batches, maybe one uncommitted, random snapshots, a random keep
    rng = random.Random(seed)
    batches = rng.randrange(1, 60)
    committed = batches - rng.choice([0, 0, 1])
    snapshots = sorted(rng.sample(range(1, batches + 1), k=min(batches, rng.randrange(0, 6))))
    make_query(tmp_path, "aggregates", range(batches), range(committed),
               {"0/0": {"delta": range(1, batches + 1), "snapshot": snapshots}})
    keep = rng.randrange(1, 15)
    before = listing(tmp_path)
    # When cleaning for real
    execute(plan(tmp_path, keep=keep))
    # Then Spark can restart (offsets of the newest two planned batches, the newest commit) ...
    left = set(listing(tmp_path))
    if committed:
        newest = committed - 1
        assert f"aggregates/commits/{newest}" in left
        assert {f"aggregates/offsets/{b}" for b in (batches - 1, batches - 2) if b >= 0} <= left
        # ... and every batch still in the log can be run again from the state it starts from
        q = read_checkpoint(tmp_path).queries["aggregates"]
        versions = {"delta": set(), "snapshot": set()}
        for f in q.stores[0].files:
            versions[f.kind].add(f.version)
        for batch in q.commits:
            assert restorable(versions, batch) and restorable(versions, batch + 1), (batch, versions)
        assert len(q.commits) >= min(keep, committed)
    else:
        assert listing(tmp_path) == before
