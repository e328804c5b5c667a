"""The command line on synthetic checkpoints: output, the job's lock, confirmation, bad input and bad usage."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from checkpoint_tools.cli import main_parser, run_cli
from devstack.stack import free_port
from tests.checkpoint_tools.synthetic import job_checkpoint, listing, make_query, write, write_lock


@pytest.fixture
def ckpt(tmp_path):
    return job_checkpoint(tmp_path / "checkpoints", batches=12, snapshots=(5, 10))


def cli(capsys, *args: str, ask=None) -> tuple[int, str, str]:
    code = run_cli(list(args), ask=ask)
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(err: str) -> str:
    lines = [line for line in err.splitlines() if "error:" in line]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


# --- inspect -------------------------------------------------------------------------------------------------------

def test_inspect_reports_each_querys_last_batch_offsets_files_and_state_as_json(capsys, ckpt):
    code, out, _ = cli(capsys, "inspect", "--checkpoint-dir", str(ckpt), "--json")
    assert code == 0
    report = json.loads(out)
    agg, inv = report["queries"]
    assert (agg["name"], inv["name"]) == ("aggregates", "invalid_events")
    assert agg["id"] == "aggregates-0000-query-id" and agg["used_by_job"] is True and agg["running"] is False
    assert agg["last_committed_batch"] == 11 and agg["pending_batch"] is None
    assert agg["watermark"] is not None and agg["last_batch_time"].endswith("Z")
    assert [(p["topic"], p["partition"], p["committed"]) for p in agg["partitions"]] == [
        ("clicks", 0, 1200), ("clicks", 1, 1201), ("clicks", 2, 1202)]
    assert all(p["lag"] is None for p in agg["partitions"])  # no broker asked
    assert agg["files"]["offsets"]["files"] == 24 and agg["files"]["commits"]["files"] == 24  # entries + .crc
    assert agg["state"] == {
        "provider": "HDFSBackedStateStoreProvider", "checkpoint_format": 1, "operators": 2, "stores": 4,
        "oldest_version": 1, "newest_version": 12, "snapshots": 8,
        "files": {"delta": {"files": 48, "bytes": 4 * sum(100 + v for v in range(1, 13))},
                  "snapshot": {"files": 8, "bytes": 4 * (105 + 110)}},
        "missing_sst_files": 0}
    assert inv["state"]["stores"] == 0
    assert report["job"]["state"] == "stopped"


def test_inspect_prints_readable_tables(capsys, ckpt):
    code, out, _ = cli(capsys, "inspect", "--checkpoint-dir", str(ckpt))
    assert code == 0
    assert "job not running (no lock file)" in out
    assert "QUERY" in out and "LAST BATCH" in out and "aggregates" in out and "invalid_events" in out
    assert "clicks" in out and "State store" in out


def test_inspect_takes_the_checkpoint_dir_from_the_environment_and_file_uris(capsys, ckpt, monkeypatch):
    monkeypatch.setenv("CLICKPULSE_CHECKPOINT_DIR", f"file://{ckpt}")
    code, out, _ = cli(capsys, "inspect", "--json")
    assert code == 0 and json.loads(out)["checkpoint_dir"] == str(ckpt)


def test_inspect_points_at_folders_the_job_no_longer_uses(capsys, ckpt):
    make_query(ckpt, "old_sessions", range(2), range(2))
    _, out, _ = cli(capsys, "inspect", "--checkpoint-dir", str(ckpt))
    assert "clean --remove-query old_sessions" in out


def test_inspect_shows_a_running_job(capsys, ckpt):
    info = write_lock(ckpt, age=timedelta(seconds=3))
    _, out, _ = cli(capsys, "inspect", "--checkpoint-dir", str(ckpt), "--json")
    report = json.loads(out)
    assert report["job"]["state"] == "running" and report["job"]["pid"] == info.pid
    assert all(q["running"] for q in report["queries"])


def test_inspect_with_an_unreachable_broker_fails_in_one_line(capsys, ckpt):
    code, _, err = cli(capsys, "inspect", "--checkpoint-dir", str(ckpt), "--bootstrap-servers",
                       f"127.0.0.1:{free_port()}", "--kafka-timeout", "1")
    assert code == 1
    assert "cannot read offsets from Kafka" in one_line_error(err)


# --- clean ---------------------------------------------------------------------------------------------------------

def test_clean_is_a_dry_run_by_default_listing_files_and_bytes(capsys, ckpt):
    before = listing(ckpt)
    code, out, _ = cli(capsys, "clean", "--checkpoint-dir", str(ckpt), "--keep", "2")
    assert code == 0
    assert listing(ckpt) == before
    assert "would delete:" in out and "aggregates/offsets/0" in out and "dry run: would free" in out
    assert "--yes" in out


def test_clean_json_lists_every_deletion_and_the_bytes_it_frees(capsys, ckpt):
    before = listing(ckpt)
    _, out, _ = cli(capsys, "clean", "--checkpoint-dir", str(ckpt), "--keep", "2", "--json")
    doc = json.loads(out)
    rels = {str(p) for p in (d["path"] for d in doc["deletions"])}
    assert doc["dry_run"] is True and doc["files"] == len(rels)
    assert doc["bytes"] == sum(before[r[len(str(ckpt)) + 1:]] for r in rels)
    assert {r["query"]: r["oldest_kept_batch"] for r in doc["retention"]} == {"aggregates": 10, "invalid_events": 10}


def test_clean_yes_deletes_what_the_dry_run_listed(capsys, ckpt):
    _, out, _ = cli(capsys, "clean", "--checkpoint-dir", str(ckpt), "--keep", "2", "--json")
    listed = {d["path"] for d in json.loads(out)["deletions"]}
    before = listing(ckpt)
    code, out, _ = cli(capsys, "clean", "--checkpoint-dir", str(ckpt), "--keep", "2", "--yes", "--json")
    assert code == 0 and json.loads(out)["dry_run"] is False
    assert {str(ckpt / r) for r in set(before) - set(listing(ckpt))} == listed


def test_clean_with_nothing_to_do_says_so(capsys, ckpt):
    code, out, _ = cli(capsys, "clean", "--checkpoint-dir", str(ckpt))
    assert code == 0 and "nothing to delete" in out


def test_clean_refuses_while_the_jobs_heartbeat_is_fresh_naming_pid_host_and_age(capsys, ckpt):
    info = write_lock(ckpt, age=timedelta(seconds=5), pid=4242, host="worker-7")
    before = listing(ckpt)
    code, _, err = cli(capsys, "clean", "--checkpoint-dir", str(ckpt), "--keep", "1", "--yes")
    assert code == 1
    line = one_line_error(err)
    assert "job is running" in line and f"pid {info.pid}" in line and "worker-7" in line and "5s ago" in line
    assert listing(ckpt) == before


def test_a_stale_lock_is_reported_and_ignored(capsys, ckpt, caplog):
    write_lock(ckpt, age=timedelta(minutes=3), pid=4242)
    code, _, _ = cli(capsys, "clean", "--checkpoint-dir", str(ckpt), "--keep", "1", "--yes")
    assert code == 0
    assert "stale lock from pid 4242" in caplog.text
    assert "aggregates/offsets/0" not in listing(ckpt)


def test_stale_after_decides_when_a_heartbeat_is_too_old(capsys, ckpt):
    write_lock(ckpt, age=timedelta(seconds=30))
    code, _, _ = cli(capsys, "clean", "--checkpoint-dir", str(ckpt), "--stale-after", "20")
    assert code == 0
    code, _, err = cli(capsys, "clean", "--checkpoint-dir", str(ckpt), "--stale-after", "120")
    assert code == 1 and "--stale-after" in one_line_error(err)


def test_an_unreadable_lock_counts_as_running_while_it_is_recent(capsys, ckpt):
    (ckpt / "_clickpulse_job.lock").write_text("{half a json")
    code, _, err = cli(capsys, "clean", "--checkpoint-dir", str(ckpt), "--yes")
    assert code == 1 and "unreadable lock" in one_line_error(err)


def test_clean_remove_query_deletes_a_folder_the_job_no_longer_uses(capsys, ckpt):
    make_query(ckpt, "old_sessions", range(2), range(2))
    code, _, _ = cli(capsys, "clean", "--checkpoint-dir", str(ckpt), "--remove-query", "old_sessions", "--yes")
    assert code == 0
    assert not (ckpt / "old_sessions").exists() and (ckpt / "aggregates" / "offsets" / "0").exists()


def test_clean_will_not_remove_one_of_the_jobs_queries(capsys, ckpt):
    code, _, err = cli(capsys, "clean", "--checkpoint-dir", str(ckpt), "--remove-query", "aggregates", "--yes")
    assert code == 1 and "reset aggregates" in one_line_error(err)
    assert (ckpt / "aggregates").exists()


# --- reset ---------------------------------------------------------------------------------------------------------

def test_reset_asks_first_and_explains_what_starting_over_means(capsys, ckpt):
    asked = []
    code, _, err = cli(capsys, "reset", "aggregates", "--checkpoint-dir", str(ckpt),
                       ask=lambda prompt: asked.append(prompt) or "aggregates\n")
    assert code == 0 and asked == ["Type aggregates to reset it: "]
    assert "--starting-offsets" in err and "recomputes every window aggregate" in err
    assert not (ckpt / "aggregates").exists() and (ckpt / "invalid_events").exists()


def test_reset_does_nothing_unless_confirmed(capsys, ckpt):
    before = listing(ckpt)
    code, _, err = cli(capsys, "reset", "aggregates", "--checkpoint-dir", str(ckpt), ask=lambda prompt: "no\n")
    assert code == 1 and "not confirmed" in one_line_error(err)
    code, _, err = cli(capsys, "reset", "aggregates", "--checkpoint-dir", str(ckpt), ask=lambda prompt: None)
    assert code == 1 and "pass --yes" in one_line_error(err)
    assert listing(ckpt) == before


def test_reset_yes_deletes_without_asking(capsys, ckpt):
    code, out, _ = cli(capsys, "reset", "invalid_events", "--checkpoint-dir", str(ckpt), "--yes", "--json",
                       ask=lambda prompt: pytest.fail("asked"))
    doc = json.loads(out)
    assert code == 0 and doc["deleted"] and doc["files"] > 0 and doc["bytes"] > 0
    assert not (ckpt / "invalid_events").exists()


def test_reset_refuses_while_the_job_runs(capsys, ckpt):
    write_lock(ckpt, age=timedelta(seconds=1))
    code, _, err = cli(capsys, "reset", "aggregates", "--checkpoint-dir", str(ckpt), "--yes")
    assert code == 1 and "job is running" in one_line_error(err)
    assert (ckpt / "aggregates").exists()


def test_reset_of_an_unknown_query_names_the_ones_there(capsys, ckpt):
    code, _, err = cli(capsys, "reset", "sessions", "--checkpoint-dir", str(ckpt), "--yes")
    assert code == 1 and "found: aggregates, invalid_events" in one_line_error(err)


# --- corrupt or wrong input: one clear line, exit 1, nothing deleted -------------------------------------------------

def truncate(path, keep_bytes):
    path.write_bytes(path.read_bytes()[:keep_bytes])


CORRUPTIONS = {
    "truncated offsets": (lambda ck: truncate(ck / "aggregates" / "offsets" / "11", 60), "offsets/11 is corrupt"),
    "offsets cut after the metadata": (
        lambda ck: (ck / "aggregates" / "offsets" / "7").write_text((ck / "aggregates" / "offsets" / "7").read_text()
                                                                    .split("\n")[0] + "\n" +
                                                                    (ck / "aggregates" / "offsets" / "7").read_text()
                                                                    .split("\n")[1] + "\n"),
        "has no source offsets"),
    "empty commit": (lambda ck: (ck / "invalid_events" / "commits" / "3").write_bytes(b""), "commits/3 is corrupt"),
    "garbage offsets": (lambda ck: (ck / "aggregates" / "offsets" / "2").write_bytes(b"\x00\xff\xfe"), "not UTF-8"),
    "bad version line": (lambda ck: (ck / "aggregates" / "offsets" / "2").write_text("hello\n{}\n{}"), "log version"),
    "corrupt metadata": (lambda ck: (ck / "aggregates" / "metadata").write_text("{"), "metadata is corrupt"),
}


@pytest.mark.parametrize("command", [["inspect"], ["clean", "--keep", "1", "--yes"], ["reset", "aggregates", "--yes"]])
@pytest.mark.parametrize("corruption", sorted(CORRUPTIONS))
def test_a_corrupt_checkpoint_gives_one_clear_line_and_deletes_nothing(capsys, ckpt, command, corruption):
    damage, message = CORRUPTIONS[corruption]
    damage(ckpt)
    before = listing(ckpt)
    code, out, err = cli(capsys, *command, "--checkpoint-dir", str(ckpt))
    assert code == 1 and out == ""
    assert message in one_line_error(err)
    assert listing(ckpt) == before


@pytest.mark.parametrize("command", [["inspect"], ["clean", "--yes"], ["reset", "aggregates", "--yes"]])
def test_paths_that_are_not_checkpoints_give_one_clear_line(capsys, tmp_path, command):
    empty = tmp_path / "empty"
    empty.mkdir()
    other = tmp_path / "photos"
    write(other / "holiday" / "beach.jpg", b"\xff\xd8", crc=False)
    a_file = write(tmp_path / "notes.txt", "hi", crc=False)
    query = job_checkpoint(tmp_path / "ck", batches=2) / "aggregates"
    cases = {empty: "is empty", other: "not a checkpoint dir", a_file: "not a directory",
             tmp_path / "missing": "no such directory", query: f"give its parent, {query.parent}"}
    before = listing(tmp_path)
    for path, message in cases.items():
        code, out, err = cli(capsys, *command, "--checkpoint-dir", str(path))
        assert code == 1 and out == ""
        assert message in one_line_error(err), path
    assert listing(tmp_path) == before


def test_remote_checkpoint_schemes_are_refused_clearly(capsys):
    code, _, err = cli(capsys, "inspect", "--checkpoint-dir", "hdfs://namenode/checkpoints")
    assert code == 1 and "hdfs:// checkpoints are not supported" in one_line_error(err)


# --- usage ---------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("args", [[], ["clean", "--keep", "0"], ["clean", "--keep", "two"], ["reset"],
                                  ["inspect", "--stale-after", "-1"], ["compact"]])
def test_bad_usage_exits_2_with_one_line(capsys, args):
    with pytest.raises(SystemExit) as exit_:
        run_cli(args)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "error:" in err and "(see --help)" in err


@pytest.mark.parametrize("command", [[], ["inspect"], ["clean"], ["reset"]])
def test_every_command_has_help(capsys, command):
    with pytest.raises(SystemExit) as exit_:
        main_parser().parse_args([*command, "--help"])
    assert exit_.value.code == 0
    assert "usage:" in capsys.readouterr().out
