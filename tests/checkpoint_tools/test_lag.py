"""Lag per partition from the checkpoint's committed offsets and the broker's offsets."""

from __future__ import annotations

from checkpoint_tools.lag import PartitionOffsets, partition_lag


def test_lag_is_the_end_offset_minus_the_committed_one():
    rows = partition_lag({"t": {0: 10, 1: 7}}, {"t": {0: PartitionOffsets(0, 15), 1: PartitionOffsets(0, 7)}})
    assert [(r["partition"], r["committed"], r["end"], r["lag"]) for r in rows] == [(0, 10, 15, 5), (1, 7, 7, 0)]


def test_a_partition_added_since_the_last_batch_lags_by_everything_it_holds():
    rows = partition_lag({"t": {0: 10}}, {"t": {0: PartitionOffsets(0, 10), 1: PartitionOffsets(4, 9)}})
    assert rows[1] == {"topic": "t", "partition": 1, "committed": None, "end": 9, "lag": 5}


def test_a_topic_made_again_shows_as_negative_lag():
    (row,) = partition_lag({"t": {0: 500}}, {"t": {0: PartitionOffsets(0, 20)}})
    assert row["lag"] == -480


def test_without_broker_offsets_lag_is_unknown():
    assert partition_lag({"t": {0: 3}}, None) == [{"topic": "t", "partition": 0, "committed": 3, "end": None, "lag": None}]
    assert partition_lag({"t": {0: 3}}, {"t": None})[0]["lag"] is None
