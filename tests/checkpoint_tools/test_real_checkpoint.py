"""The CLI on checkpoints written by the real job (real Kafka, real Mongo, the job's default RocksDB state store).

Two job runs for the whole module: one streaming run (stopped with SIGTERM) builds a checkpoint with a dozen
batches, changelogs and snapshot zips; one `available-now` run resumes from a cleaned copy of it.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import signal
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from kafka import KafkaConsumer, TopicPartition

from checkpoint_tools.cli import run_cli
from checkpoint_tools.layout import CheckpointError, read_checkpoint
from storage import contract as c
from tests.checkpoint_tools.restore import rocksdb_missing
from tests.checkpoint_tools.synthetic import listing
from tests.job.dataset import clicks, create_topic, produce, read_back
from tests.job.jobrun import job_args, kill_hard, mismatches, poll, run_job, start_job, stored
from tests.reference import expected

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# Snapshot the state store often, so cleaning has old changelogs and zips to delete (Spark's defaults: every 10
# versions, uploaded by a maintenance task once a minute, which a short test never reaches); and compact RocksDB
# when it snapshots, so each zip has SST files of its own and older zips' SST files become unreferenced.
SNAPSHOT_OFTEN = ("--conf spark.sql.streaming.stateStore.minDeltasForSnapshot=2 "
                  "--conf spark.sql.streaming.stateStore.maintenanceInterval=1s "
                  "--conf spark.sql.streaming.stateStore.rocksdb.compactOnCommit=true pyspark-shell")


def cli(*args: str) -> tuple[int, str, str]:
    """Run the CLI in-process, capturing its stdout and stderr (usable from module fixtures, unlike capsys)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = run_cli(list(args))
    return code, out.getvalue(), err.getvalue()


def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
        return {tp.partition: o for tp, o in consumer.end_offsets(parts).items()}
    finally:
        consumer.close()


def committed(checkpoint: Path, query: str, topic: str) -> dict[int, int] | None:
    try:
        return read_checkpoint(checkpoint).queries[query].committed_offsets().get(topic)
    except (CheckpointError, KeyError, OSError):  # the running job may be mid-write
        return None


def stores(checkpoint: Path) -> list[Path]:
    """The aggregates query's state store folders (state/<operator>/<partition>)."""
    return sorted(p for p in (checkpoint / c.AGGREGATES_QUERY / "state").glob("*/*") if p.name.isdigit())


def zips_per_store(checkpoint: Path) -> int:
    """The fewest snapshot zips any store has (0 before the state store exists)."""
    return min((sum(1 for _ in s.glob("*.zip")) for s in stores(checkpoint)), default=0)


@pytest.fixture(scope="module")
def streamed(kafka_bootstrap, mongo_uri, mongo_client, tmp_path_factory):
    """A streaming run over 2,400+ records at 200 per batch, stopped with SIGTERM once it has read them all.

    While it runs, `clean --yes` is tried on its checkpoint; the attempt is recorded for the tests.
    """
    topic, database = create_topic(kafka_bootstrap, "ckpt-tools-clicks"), "ckpt_tools"
    work = tmp_path_factory.mktemp("ckpt-tools")
    checkpoint, log = work / "checkpoints", work / "job.log"
    args = job_args(kafka_bootstrap, topic, mongo_uri, database, checkpoint, "--max-offsets-per-trigger", "200")
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=1)
    first = clicks(seed=21, n=2400, start=start, span=timedelta(minutes=8))
    produced = produce(kafka_bootstrap, topic, first)
    end = end_offsets(kafka_bootstrap, topic)
    job = start_job([*args, "--trigger", "processing-time:1s"], log, {"PYSPARK_SUBMIT_ARGS": SNAPSHOT_OFTEN})
    try:
        def drained() -> bool:
            return all(committed(checkpoint, q, topic) == end for q in c.QUERIES) and zips_per_store(checkpoint) >= 3

        poll(drained, timeout=420, what=f"the job to read everything and zip its state 3 times (log: {log})", interval=1)
        assert job.poll() is None, f"the job stopped early (log: {log})"
        before = listing(checkpoint)
        refused = cli("clean", "--checkpoint-dir", str(checkpoint), "--keep", "1", "--yes")
        during = {"code": refused[0], "stderr": refused[2], "before": before, "after": listing(checkpoint),
                  "job_alive": job.poll() is None}
    finally:
        job.send_signal(signal.SIGTERM)
        try:
            job.wait(timeout=90)
        except subprocess.TimeoutExpired:
            kill_hard(job)
    try:
        yield {"topic": topic, "database": database, "db": mongo_client[database], "checkpoint": checkpoint,
               "args": args, "start": start, "first": first, "produced": produced, "during": during, "log": log}
    finally:
        mongo_client.drop_database(database)


@pytest.fixture(scope="module")
def resumed(streamed, kafka_bootstrap, tmp_path_factory):
    """Clean a copy of the checkpoint as hard as allowed (keep 1), produce more, resume the job on it (available-now)."""
    copy = tmp_path_factory.mktemp("resumed") / "checkpoints"
    shutil.copytree(streamed["checkpoint"], copy)
    before = listing(copy)
    code, out, err = cli("clean", "--checkpoint-dir", str(copy), "--keep", "1", "--yes", "--json")
    assert code == 0, err
    cleaned = json.loads(out)
    after_clean = listing(copy)
    clean_copy = tmp_path_factory.mktemp("cleaned") / "checkpoints"  # as clean left it, before the job resumes
    shutil.copytree(copy, clean_copy)
    runs_before = set(streamed["db"][c.PIPELINE_METRICS].distinct(c.RUN_ID))

    # More traffic later in event time, plus a replay of 150 first-run records (at-least-once redelivery).
    more = clicks(seed=22, n=1200, start=streamed["start"] + timedelta(minutes=6), span=timedelta(minutes=6), prefix="r")
    produce(kafka_bootstrap, streamed["topic"], more + streamed["first"][:150])
    args = [a if a != str(streamed["checkpoint"]) else str(copy) for a in streamed["args"]]
    run_job([*args, "--trigger", "available-now"], copy.parent / "job.log")
    code, out, err = cli("inspect", "--checkpoint-dir", str(copy), "--bootstrap-servers", kafka_bootstrap, "--json")
    assert code == 0, err
    return {"checkpoint": copy, "clean_copy": clean_copy, "before": before, "after_clean": after_clean, "cleaned": cleaned,
            "runs_before": runs_before, "inspect": json.loads(out),
            "end": end_offsets(kafka_bootstrap, streamed["topic"])}


def test_clean_refuses_while_the_job_runs_and_deletes_nothing(streamed):
    during = streamed["during"]
    assert during["job_alive"], "the job was not running when clean was tried: the test proves nothing"
    assert during["code"] == 1
    (line,) = [ln for ln in during["stderr"].splitlines() if "error:" in ln]
    assert "the job is running on this checkpoint" in line and "pid " in line and "Traceback" not in during["stderr"]
    # Nothing of what was there went (the running job itself may add files or purge nothing at this size)
    assert set(during["before"]) - set(during["after"]) <= {f for f in during["before"] if ".tmp" in f}


def test_a_cleanly_stopped_job_leaves_no_lock(streamed):
    assert not (streamed["checkpoint"] / "_clickpulse_job.lock").exists()


def test_inspect_reports_the_offsets_the_job_read_up_to(streamed, kafka_bootstrap):
    # Given the streaming run read the whole topic before it stopped
    code, out, err = cli("inspect", "--checkpoint-dir", str(streamed["checkpoint"]), "--json")
    assert code == 0, err
    report = json.loads(out)
    end = end_offsets(kafka_bootstrap, streamed["topic"])
    # Then each query's committed offsets are the topic's end offsets, which add up to what was produced
    assert sum(end.values()) == streamed["produced"]
    for q in report["queries"]:
        assert {p["partition"]: p["committed"] for p in q["partitions"]} == end, q["name"]
        assert all(p["topic"] == streamed["topic"] for p in q["partitions"])
    agg = {q["name"]: q for q in report["queries"]}[c.AGGREGATES_QUERY]
    assert agg["last_committed_batch"] >= 12 and agg["running"] is False


def test_inspect_reports_the_rocksdb_state_layout_the_job_wrote(streamed):
    code, out, err = cli("inspect", "--checkpoint-dir", str(streamed["checkpoint"]), "--json")
    assert code == 0, err
    state = {q["name"]: q for q in json.loads(out)["queries"]}[c.AGGREGATES_QUERY]["state"]
    # The job's two stateful operators (deduplication, aggregation) x 2 shuffle partitions, on RocksDB (format v1)
    assert (state["provider"], state["checkpoint_format"], state["operators"], state["stores"]) == (
        "RocksDBStateStoreProvider", 1, 2, 4)
    # A changelog per version, snapshot zips, the SST files they reference; byte counts as on disk
    files = listing(streamed["checkpoint"])
    on_disk = {kind: [size for rel, size in files.items() if rel.startswith(f"{c.AGGREGATES_QUERY}/state/")
                      and not rel.split("/")[-1].startswith(".") and rel.endswith(f".{kind}")]
               for kind in ("changelog", "zip", "sst")}
    assert set(state["files"]) == set(on_disk)
    for kind, sizes in on_disk.items():
        assert state["files"][kind] == {"files": len(sizes), "bytes": sum(sizes)}, kind
    assert state["snapshots"] == len(on_disk["zip"]) >= 12 and state["missing_sst_files"] == 0


def test_clean_frees_offsets_commits_and_state_files_of_a_real_checkpoint(resumed):
    cleaned = resumed["cleaned"]
    gone = set(resumed["before"]) - set(resumed["after_clean"])
    assert cleaned["bytes"] > 0 and cleaned["files"] == len(gone)
    kinds = {d["kind"] for d in cleaned["deletions"]}
    assert {"offsets", "commits", "state", "sst", "checksum"} <= kinds
    deleted_state = {d["path"].rsplit(".", 1)[-1] for d in cleaned["deletions"] if d["kind"] == "state"}
    assert deleted_state == {"changelog", "zip"}
    # and it kept what Spark needs: sources, metadata and the newest batches
    for query in c.QUERIES:
        assert f"{query}/metadata" in resumed["after_clean"] and f"{query}/sources/0/0" in resumed["after_clean"]


def test_clean_keeps_every_state_file_the_oldest_kept_batch_and_the_next_one_need(resumed):
    # Given the cleaned copy as it was before the job resumed on it
    (retention,) = [r for r in resumed["cleaned"]["retention"] if r["query"] == c.AGGREGATES_QUERY]
    oldest, newest = retention["oldest_kept_batch"], retention["newest_committed_batch"]
    # Then each store can restore the state of the oldest kept batch and of the batch a restart runs next: the
    # newest zip at or below it, every SST file that zip names and every changelog after it (read independently)
    for store in stores(resumed["clean_copy"]):
        for version in (oldest, newest + 1):
            assert rocksdb_missing(store, version) == [], (store, version)


def test_the_job_resumes_from_a_cleaned_checkpoint_where_it_was(streamed, resumed):
    # Given the resumed run (the one run_id not seen before cleaning)
    metrics = [m for m in streamed["db"][c.PIPELINE_METRICS].find({c.QUERY: c.AGGREGATES_QUERY})
               if m[c.RUN_ID] not in resumed["runs_before"]]
    assert metrics, "the resumed run reported no batch"
    # Then it went on from the batch after the streaming run's last one instead of starting over
    newest_before = max(int(n.split("/")[-1]) for n in resumed["after_clean"]
                        if n.startswith(f"{c.AGGREGATES_QUERY}/commits/") and n.split("/")[-1].isdigit())
    assert min(m[c.BATCH_ID] for m in metrics) in (newest_before, newest_before + 1)


def test_aggregates_after_clean_and_resume_are_exact(streamed, resumed, kafka_bootstrap):
    # Every stored document equals the independent reference over everything in the topic
    got, want = stored(streamed["db"]), expected(read_back(kafka_bootstrap, streamed["topic"]))
    assert len(want[c.ACTIVE_USERS]) > 5
    assert mismatches(got, want) == []


def test_inspect_after_an_available_now_drain_shows_no_lag(resumed):
    report = resumed["inspect"]
    for q in report["queries"]:
        assert {p["partition"]: p["committed"] for p in q["partitions"]} == resumed["end"], q["name"]
        assert {p["partition"]: p["end"] for p in q["partitions"]} == resumed["end"], q["name"]
        assert [p["lag"] for p in q["partitions"]] == [0, 0, 0] and q["total_lag"] == 0


def test_a_truncated_offsets_file_in_a_real_checkpoint_is_reported_and_nothing_is_deleted(streamed, tmp_path):
    copy = tmp_path / "checkpoints"
    shutil.copytree(streamed["checkpoint"], copy)
    newest = max(int(p.name) for p in (copy / c.AGGREGATES_QUERY / "offsets").iterdir() if p.name.isdigit())
    entry = copy / c.AGGREGATES_QUERY / "offsets" / str(newest)
    entry.write_bytes(entry.read_bytes()[: entry.stat().st_size // 2])
    before = listing(copy)
    for command in (["inspect"], ["clean", "--keep", "1", "--yes"], ["reset", c.AGGREGATES_QUERY, "--yes"]):
        code, out, err = cli(*command, "--checkpoint-dir", str(copy))
        assert code == 1 and out == "" and "Traceback" not in err
        (line,) = err.strip().splitlines()
        assert f"offsets/{newest} is corrupt" in line
    assert listing(copy) == before
