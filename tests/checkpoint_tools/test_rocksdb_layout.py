"""inspect and clean on synthetic RocksDB checkpoints: changelogs, snapshot zips and the SST files zips share."""

from __future__ import annotations

import json
import random
import zipfile

import pytest

from checkpoint_tools.clean import CleanPlan, execute, plan_clean
from checkpoint_tools.cli import run_cli
from checkpoint_tools.layout import read_checkpoint
from storage import contract as c
from tests.checkpoint_tools.restore import rocksdb_missing
from tests.checkpoint_tools.synthetic import (
    ROCKSDB,
    listing,
    make_query,
    rocksdb_checkpoint,
    rocksdb_store,
    sst,
    write_commit,
)


def plan(base, keep=100) -> CleanPlan:
    return plan_clean(read_checkpoint(base), keep, (), c.QUERIES)


def doomed(p: CleanPlan, kind: str | None = None) -> set[str]:
    return {str(p.path(d).relative_to(p.base)) for d in p.deletions if kind is None or d.kind == kind}


def names(paths: set[str]) -> set[str]:
    """File names without checksum files."""
    return {g.split("/")[-1] for g in paths if not g.endswith(".crc")}


def rocksdb_query(base, batches: int = 12, zips=None, unreferenced=(), committed=None):
    """aggregates on RocksDB with one store (state/0/0): a changelog per version 1..batches and the given zips."""
    q = make_query(base, "aggregates", range(batches), range(batches if committed is None else committed),
                   provider=ROCKSDB)
    rocksdb_store(q, "0/0", range(1, batches + 1), zips or {}, unreferenced)
    return q


# --- clean ---------------------------------------------------------------------------------------------------------

def test_state_keeps_the_newest_zip_at_or_below_the_oldest_kept_version_and_every_changelog_after_it(tmp_path):
    # Given versions 1..12 as changelogs and zips at 4 and 8, every zip referencing SST 4
    rocksdb_query(tmp_path, zips={4: [sst(4)], 8: [sst(4)]})
    # When keeping 4 batches (8..11): restoring batch 8 needs version 8 = zip 8 (and nothing before it)
    p = plan(tmp_path, keep=4)
    # Then changelogs 1..7 and zip 4 go, with their checksums; zip 8, changelogs 8..12 and the SST stay
    assert names(doomed(p, "state")) == {*(f"{v}.changelog" for v in range(1, 8)), "4.zip"}
    assert {".4.zip.crc", ".1.changelog.crc"} <= {g.split("/")[-1] for g in doomed(p, "checksum")}
    assert not doomed(p, "sst")
    assert {r.query: r.state_from for r in p.retention}["aggregates"] == {"state/0/0": 8}


def test_without_a_zip_the_newest_kept_batch_needs_every_changelog_so_all_state_stays(tmp_path):
    # Given only a zip at version 10, newer than the oldest kept version (8), and an SST no zip references
    rocksdb_query(tmp_path, zips={10: [sst(10)]}, unreferenced=[sst(3)])
    p = plan(tmp_path, keep=4)
    # Then no state file goes (restoring version 8 replays changelogs 1..8), not even the SST; the logs still go
    assert not [g for g in doomed(p) if "/state/" in g]
    assert "aggregates/offsets/0" in doomed(p)


def test_an_sst_file_goes_once_no_kept_zip_references_it(tmp_path):
    # Given zips 2 {4}, 4 {4, 5}, 6 {7} (RocksDB compacted 4 and 5 into 7) and 10 {7, 9}
    rocksdb_query(tmp_path, zips={2: [sst(4)], 4: [sst(4), sst(5)], 6: [sst(7)], 10: [sst(7), sst(9)]})
    # When keeping 4 batches: the restore base is zip 6
    p = plan(tmp_path, keep=4)
    # Then SSTs 4 and 5 go with zips 2 and 4; SSTs 7 and 9 stay
    assert names(doomed(p, "sst")) == {sst(4), sst(5)}
    assert {f".{sst(4)}.crc", f".{sst(5)}.crc"} <= {g.split("/")[-1] for g in doomed(p, "checksum")}
    assert {"2.zip", "4.zip"} <= names(doomed(p, "state")) and "6.zip" not in names(doomed(p))


def test_an_sst_file_shared_by_a_deleted_zip_and_a_kept_one_stays(tmp_path):
    # Given zip 2 and zip 8 both referencing SST 1 (RocksDB did not compact it away)
    rocksdb_query(tmp_path, zips={2: [sst(1)], 8: [sst(1), sst(6)]})
    p = plan(tmp_path, keep=4)
    # Then zip 2 goes but SST 1 stays: zip 8 still needs it
    assert "2.zip" in names(doomed(p, "state"))
    assert not doomed(p, "sst")


def test_sst_files_no_zip_references_go_with_the_old_versions(tmp_path):
    # Given SST 11, uploaded for a zip that was never written (the job died in between), and a restore base
    rocksdb_query(tmp_path, zips={4: [sst(4)], 8: [sst(8)]}, unreferenced=[sst(11)])
    p = plan(tmp_path, keep=4)
    # Then no zip can ever need it, so it goes with SST 4 (only zip 4 referenced that one)
    assert names(doomed(p, "sst")) == {sst(4), sst(11)}


def test_zips_go_before_the_sst_files_they_referenced(tmp_path):
    # An interrupted clean must never leave a zip whose SST files are gone
    rocksdb_query(tmp_path, zips={2: [sst(2)], 4: [sst(4)], 8: [sst(8)]})
    kinds = [d.kind for d in plan(tmp_path, keep=4).deletions]
    assert kinds.index("sst") > max(i for i, k in enumerate(kinds) if k == "state")


def test_the_newest_zip_and_every_sst_it_needs_are_never_in_a_plan(tmp_path):
    rocksdb_checkpoint(tmp_path, batches=20)
    p = plan(tmp_path, keep=1)
    gone = doomed(p)
    assert "aggregates/state/0/0/20.changelog" not in gone and "aggregates/state/0/0/20.zip" not in gone
    assert not {f"aggregates/state/{s}/SSTs/{sst(k)}" for s in ("0/0", "1/1") for k in (4, 8, 12, 16, 20)} & gone


def test_v2_a_zip_is_a_restore_base_only_when_its_batch_committed_its_unique_id(tmp_path):
    # Given checkpoint format v2: versions named <version>_<uniqueId>, and commits/<b> naming the id of version b+1
    ids = {v: f"{v:08x}-0000-4000-8000-000000000000" for v in range(1, 13)}
    q = make_query(tmp_path, "aggregates", range(12), [], provider=ROCKSDB)
    for b in range(12):
        write_commit(q, b, {"0": [[ids[b + 1]]]})
    rocksdb_store(q, "0/0", range(1, 13), {4: [sst(4)], 7: [sst(7)]}, ids=ids)
    # ... and a zip at version 6 from an attempt whose batch failed (its id is not the committed one)
    rocksdb_store(q, "0/0", [6], {6: [sst(6)]}, ids={6: "deadbeef-0000-4000-8000-000000000000"})
    # When keeping 4 batches (8..11)
    p = plan(tmp_path, keep=4)
    # Then the base is zip 7, the newest committed one; the failed attempt's zip 6 goes with everything older
    assert {r.query: r.state_from for r in p.retention}["aggregates"] == {"state/0/0": 7}
    assert f"7_{ids[7]}.zip" not in names(doomed(p))
    assert {f"6_{ids[6]}.changelog", "6_deadbeef-0000-4000-8000-000000000000.zip",
            f"4_{ids[4]}.zip"} <= names(doomed(p, "state"))
    assert names(doomed(p, "sst")) == {sst(4), sst(6)}


def test_v2_without_the_commit_of_a_zips_version_the_zip_is_no_base(tmp_path):
    # Given a v2 zip at version 7 whose commit entry (batch 6) an earlier clean already deleted
    ids = {v: f"{v:08x}-0000-4000-8000-000000000000" for v in range(1, 13)}
    q = make_query(tmp_path, "aggregates", range(12), [], provider=ROCKSDB)
    for b in range(7, 12):
        write_commit(q, b, {"0": [[ids[b + 1]]]})
    rocksdb_store(q, "0/0", range(1, 13), {7: [sst(7)]}, ids=ids)
    # Then nothing proves zip 7 is on the committed lineage, so every state file stays
    assert not [g for g in doomed(plan(tmp_path, keep=4)) if "/state/" in g]


@pytest.mark.parametrize("seed", range(25))
def test_after_cleaning_every_kept_batch_can_still_be_restored_from_zips_ssts_and_changelogs(tmp_path, seed):
    # Given a random RocksDB history: SST files flushed and compacted, zips at random versions, a random keep
    rng = random.Random(seed)
    batches = rng.randrange(1, 60)
    committed = batches - rng.choice([0, 0, 1])
    live: list[str] = []
    zips = {}
    for v in range(1, batches + 1):
        if rng.random() < 0.5:
            live.append(sst(v))  # a memtable flush
        if len(live) > 3 and rng.random() < 0.3:
            live = [sst(1000 + v)]  # a compaction
        if rng.random() < 0.25:
            zips[v] = list(live)
    rocksdb_query(tmp_path, batches, zips, committed=committed)
    before = listing(tmp_path)
    # When cleaning for real
    execute(plan(tmp_path, keep=rng.randrange(1, 15)))
    # Then every batch still in the log can be run again from the state it starts from (zip, its SSTs, changelogs)
    if committed:
        store = tmp_path / "aggregates" / "state" / "0" / "0"
        for batch in read_checkpoint(tmp_path).queries["aggregates"].commits:
            assert rocksdb_missing(store, batch) == [] and rocksdb_missing(store, batch + 1) == [], (batch, zips)
    else:
        assert listing(tmp_path) == before


# --- inspect -------------------------------------------------------------------------------------------------------

def inspect_json(capsys, base) -> dict:
    code = run_cli(["inspect", "--checkpoint-dir", str(base), "--json"])
    out = capsys.readouterr().out
    assert code == 0
    return {q["name"]: q for q in json.loads(out)["queries"]}


def test_inspect_reports_the_rocksdb_layout(capsys, tmp_path):
    # Given 12 versions in 4 stores, zips at 4, 8 and 12 referencing 1, 2 and 3 SST files
    rocksdb_checkpoint(tmp_path, batches=12)
    state = inspect_json(capsys, tmp_path)["aggregates"]["state"]
    changelog_bytes = 4 * sum(100 + v for v in range(1, 13))
    zip_bytes = sum(p.stat().st_size for p in tmp_path.glob("aggregates/state/*/*/*.zip"))
    assert state == {
        "provider": "RocksDBStateStoreProvider", "checkpoint_format": 1, "operators": 2, "stores": 4,
        "oldest_version": 1, "newest_version": 12, "snapshots": 12,
        "files": {"changelog": {"files": 48, "bytes": changelog_bytes}, "zip": {"files": 12, "bytes": zip_bytes},
                  "sst": {"files": 12, "bytes": 12_000}},
        "missing_sst_files": 0,
    }


def test_inspect_prints_the_state_files_of_each_kind(capsys, tmp_path):
    rocksdb_checkpoint(tmp_path, batches=12)
    assert run_cli(["inspect", "--checkpoint-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "RocksDBStateStoreProvider" in out
    assert [line.split()[:3] for line in out.splitlines() if line.startswith("aggregates") and "changelog" in line] == [
        ["aggregates", "changelog", "48"]]


def test_inspect_counts_the_sst_files_snapshots_need_that_are_missing(capsys, tmp_path):
    rocksdb_checkpoint(tmp_path, batches=12)
    (tmp_path / "aggregates" / "state" / "0" / "0" / "SSTs" / sst(8)).unlink()
    assert inspect_json(capsys, tmp_path)["aggregates"]["state"]["missing_sst_files"] == 1
    assert run_cli(["inspect", "--checkpoint-dir", str(tmp_path)]) == 0
    assert "1 SST files that state snapshots reference are missing" in capsys.readouterr().out


def test_inspect_reports_checkpoint_format_2(capsys, tmp_path):
    ids = {v: f"{v:08x}-0000-4000-8000-000000000000" for v in range(1, 5)}
    q = make_query(tmp_path, "aggregates", range(4), [], provider=ROCKSDB)
    for b in range(4):
        write_commit(q, b, {"0": [[ids[b + 1]]]})
    rocksdb_store(q, "0/0", range(1, 5), {4: [sst(4)]}, ids=ids)
    state = inspect_json(capsys, tmp_path)["aggregates"]["state"]
    assert (state["checkpoint_format"], state["oldest_version"], state["newest_version"]) == (2, 1, 4)


# --- corrupt snapshots ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("command", [["inspect"], ["clean", "--keep", "1", "--yes"]])
@pytest.mark.parametrize("damage", ["not a zip", "no metadata", "bad metadata"])
def test_a_corrupt_zip_gives_one_clear_line_and_deletes_nothing(capsys, tmp_path, command, damage):
    rocksdb_checkpoint(tmp_path, batches=12)
    target = tmp_path / "aggregates" / "state" / "0" / "1" / "8.zip"
    if damage == "not a zip":
        target.write_bytes(b"PK\x03\x04 truncated")
    else:
        with zipfile.ZipFile(target, "w") as z:
            z.writestr("CURRENT" if damage == "no metadata" else "metadata", "v1\n{\"sstFiles\": [{}]}")
    before = listing(tmp_path)
    code = run_cli([*command, "--checkpoint-dir", str(tmp_path)])
    out, err = capsys.readouterr()
    assert code == 1 and out == "" and "Traceback" not in err
    (line,) = err.strip().splitlines()
    assert f"{target} is corrupt" in line
    assert listing(tmp_path) == before
