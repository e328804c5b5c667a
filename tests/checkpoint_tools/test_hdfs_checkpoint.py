"""A checkpoint made with the HDFS state store before RocksDB became the job's default keeps working.

Spark records the state store provider in every offsets entry and restores it when a query restarts, so the job
resumes such a checkpoint with the HDFS provider whatever its default. Two job runs for the whole module: the
first through spark-submit with `--conf` forcing HDFSBackedStateStoreProvider, the second as users run the job now
(RocksDB by default), on the same checkpoint after `clean`.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from checkpoint_tools.cli import run_cli
from devstack.paths import ROOT
from storage import contract as c
from tests.checkpoint_tools.synthetic import HDFS, listing
from tests.job.dataset import clicks, create_topic, produce, read_back
from tests.job.jobrun import job_args, job_env, mismatches, run_job, spark_home, stored
from tests.reference import expected

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PROVIDER = "spark.sql.streaming.stateStore.providerClass"


def cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = run_cli(list(args))
    return code, out.getvalue(), err.getvalue()


def spark_submit_with_hdfs_state() -> list[str]:
    """The job through spark-submit, whose `--conf` wins over the job's RocksDB default (as the job documents)."""
    return [str(Path(spark_home()) / "bin" / "spark-submit"), "--jars", job_env()["CLICKPULSE_SPARK_JARS"],
            "--conf", f"{PROVIDER}={HDFS}", "--conf", f"spark.pyspark.python={sys.executable}",
            str(ROOT / "streaming_job" / "main.py")]


def state_files(checkpoint: Path) -> dict[str, set[int]]:
    """Versions of the aggregates query's state files, by kind (delta, snapshot, changelog, zip, sst)."""
    out: dict[str, set[int]] = {}
    for rel in listing(checkpoint / c.AGGREGATES_QUERY / "state"):
        name = rel.split("/")[-1]
        kind = name.rsplit(".", 1)[-1]
        if name.startswith(".") or "_metadata" in rel or kind not in ("delta", "snapshot", "changelog", "zip", "sst"):
            continue
        out.setdefault(kind, set()).add(int(name.split(".")[0].split("-")[0].split("_")[0]))
    return out


def providers(checkpoint: Path) -> dict[int, str]:
    """The provider each offsets entry of the aggregates query records, by batch."""
    out = {}
    for entry in (checkpoint / c.AGGREGATES_QUERY / "offsets").iterdir():
        if entry.name.isdigit():
            meta = json.loads(entry.read_text().splitlines()[1])
            out[int(entry.name)] = meta["conf"][PROVIDER]
    return out


@pytest.fixture(scope="module")
def resumed(kafka_bootstrap, mongo_uri, mongo_client, tmp_path_factory):
    """An HDFS-provider checkpoint, cleaned, then resumed by the job with its default provider."""
    topic, database = create_topic(kafka_bootstrap, "ckpt-hdfs-clicks"), "ckpt_hdfs"
    work = tmp_path_factory.mktemp("ckpt-hdfs")
    checkpoint = work / "checkpoints"
    args = job_args(kafka_bootstrap, topic, mongo_uri, database, checkpoint, "--max-offsets-per-trigger", "300",
                    "--trigger", "available-now")
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=1)
    first = clicks(seed=31, n=900, start=start, span=timedelta(minutes=6))
    produce(kafka_bootstrap, topic, first)
    try:
        run_job(args, work / "hdfs-run.log", launcher=spark_submit_with_hdfs_state())
        made = {"state": state_files(checkpoint), "providers": providers(checkpoint)}
        code, out, err = cli("inspect", "--checkpoint-dir", str(checkpoint), "--json")
        assert code == 0, err
        inspected = json.loads(out)
        code, out, err = cli("clean", "--checkpoint-dir", str(checkpoint), "--keep", "1", "--yes", "--json")
        assert code == 0, err
        cleaned = json.loads(out)
        # More traffic later in event time, and a replay of first-run records, for the default job to resume on
        more = clicks(seed=32, n=600, start=start + timedelta(minutes=4), span=timedelta(minutes=6), prefix="h")
        produce(kafka_bootstrap, topic, more + first[:100])
        run_job(args, work / "default-run.log")
        yield {"topic": topic, "db": mongo_client[database], "checkpoint": checkpoint, "made": made,
               "inspected": inspected, "cleaned": cleaned, "newest_before": max(made["providers"]),
               "state": state_files(checkpoint), "providers": providers(checkpoint)}
    finally:
        mongo_client.drop_database(database)


def test_the_first_run_made_an_hdfs_checkpoint(resumed):
    assert set(resumed["made"]["providers"].values()) == {HDFS}
    assert resumed["made"]["state"].keys() == {"delta"}
    (agg,) = [q for q in resumed["inspected"]["queries"] if q["name"] == c.AGGREGATES_QUERY]
    assert agg["state"]["provider"] == "HDFSBackedStateStoreProvider" and set(agg["state"]["files"]) == {"delta"}


def test_clean_deletes_old_batches_of_the_hdfs_checkpoint(resumed):
    kinds = {d["kind"] for d in resumed["cleaned"]["deletions"]}
    assert {"offsets", "commits", "checksum"} <= kinds and "sst" not in kinds


def test_the_default_job_resumes_an_hdfs_checkpoint_with_the_hdfs_provider(resumed):
    # Then the resumed run planned new batches, and recorded and used the provider the checkpoint had
    new_batches = {b: p for b, p in resumed["providers"].items() if b > resumed["newest_before"]}
    assert new_batches and set(new_batches.values()) == {HDFS}
    state = resumed["state"]
    assert state.keys() <= {"delta", "snapshot"}
    assert max(state["delta"]) > max(resumed["made"]["state"]["delta"])


def test_the_resumed_hdfs_checkpoint_gives_exact_aggregates(resumed, kafka_bootstrap):
    got, want = stored(resumed["db"]), expected(read_back(kafka_bootstrap, resumed["topic"]))
    assert len(want[c.ACTIVE_USERS]) > 5
    assert mismatches(got, want) == []


def test_inspect_notes_that_the_query_keeps_its_recorded_provider(resumed):
    code, out, err = cli("inspect", "--checkpoint-dir", str(resumed["checkpoint"]))
    assert code == 0, err
    (note,) = [line for line in out.splitlines() if "HDFSBackedStateStoreProvider" in line and line.startswith("note:")]
    assert f"reset {c.AGGREGATES_QUERY}" in note
