"""Per-minute sums of batches: what the job's listener stores and the report draws (pure, no server)."""

from __future__ import annotations

from datetime import timedelta

from storage import contract as c
from storage.rollup import MinuteRollups, minute_point
from tests.reporting.documents import MIN, T0, batch, points

S = timedelta(seconds=1)


def test_each_batch_rewrites_its_runs_whole_sums_for_the_minute():
    # Given two batches of one run in minute 10:00
    rollups = MinuteRollups()
    rollups.add(batch(c.AGGREGATES_QUERY, T0 + 10 * S, 1, 100, 50.0))
    collection, merge = rollups.add(batch(c.AGGREGATES_QUERY, T0 + 40 * S, 2, 300, 150.0, **{c.VALID_ROWS: 290}))
    # Then the second Merge carries the sums of both, under the run, with the minute's buckets
    sums = merge.fields[f"{c.RUNS}.run-1"]
    assert (collection, merge.id) == (c.PIPELINE_MINUTES, "aggregates|2026-01-15T10:00")
    assert (sums[c.BATCHES], sums[c.INPUT_ROWS], sums[c.INPUT_SECONDS]) == (2, 400, 4.0)
    assert (sums[c.BATCH_DURATION_MS], sums[c.MAX_BATCH_DURATION_MS], sums[c.BATCH_ID]) == (503, 252, 2)
    assert sums[c.VALID_ROWS] == 290 and c.INVALID_ROWS not in sums
    assert (merge.fields[c.MINUTE], merge.fields[c.HOUR]) == (T0, "2026-01-15T10")


def test_a_new_minute_starts_new_sums_and_forgets_the_old_ones():
    rollups = MinuteRollups()
    rollups.add(batch(c.AGGREGATES_QUERY, T0, 1, 100, 50.0))
    _, merge = rollups.add(batch(c.AGGREGATES_QUERY, T0 + MIN, 2, 7, 7.0))
    assert merge.id.endswith("10:01") and merge.fields[f"{c.RUNS}.run-1"][c.INPUT_ROWS] == 7
    assert len(rollups.merges()) == 1  # only the newest minute is held in memory


def test_a_minute_point_is_time_weighted_over_its_batches_and_runs():
    # Given minute 10:00 with a batch from each of two runs (a restart), and a batch in 10:01
    first = batch(c.INVALID_EVENTS_QUERY, T0 + 5 * S, 1, 100, 50.0, **{c.INVALID_ROWS: 2})
    second = {**batch(c.INVALID_EVENTS_QUERY, T0 + 50 * S, 1, 300, 150.0, **{c.INVALID_ROWS: 6}), c.RUN_ID: "run-2"}
    got = points([first, second, batch(c.INVALID_EVENTS_QUERY, T0 + 70 * S, 2, 1, 1.0, **{c.INVALID_ROWS: 1})])
    # Then the 10:00 point sums both runs: 400 rows over 4 s in, over 0.502 s processing; its last batch is run-2's
    point = got[1]
    assert (point[c.MINUTE], point[c.BATCHES], point[c.INPUT_ROWS], point[c.INVALID_ROWS]) == (T0, 2, 400, 8)
    assert point[c.INPUT_ROWS_PER_SECOND] == 100.0 and round(point[c.PROCESSED_ROWS_PER_SECOND], 3) == round(400 / 0.502, 3)
    assert (point[c.TIMESTAMP], point[c.RUN_ID], point[c.BATCH_DURATION_MS]) == (T0 + 50 * S, "run-2", 251)
    assert got[0][c.MINUTE] == T0 + MIN


def test_a_point_without_input_time_reads_zero_rows_per_second():
    doc = {c.QUERY: c.AGGREGATES_QUERY, c.MINUTE: T0, c.RUNS: {"r": {
        c.BATCHES: 1, c.INPUT_ROWS: 0, c.INPUT_SECONDS: 0.0, c.BATCH_DURATION_MS: 0, c.MAX_BATCH_DURATION_MS: 0,
        c.DROPPED_BY_WATERMARK: 0, c.DUPLICATES_DROPPED: 0, c.RUN_ID: "r", c.BATCH_ID: 1, c.TIMESTAMP: T0,
        c.WATERMARK: None, c.STATE_ROWS: 0}}}
    point = minute_point(doc)
    assert (point[c.INPUT_ROWS_PER_SECOND], point[c.PROCESSED_ROWS_PER_SECOND]) == (0.0, 0.0)
