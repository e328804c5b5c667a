"""Injected faults: each at its exact ratio, and each one the job can only classify one way."""

from __future__ import annotations

import json
import random
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from producer.faults import FaultPlan, round_half_up
from producer.generator import generate
from producer.settings import INJECTABLE_REASONS, INJECTED_KINDS, ProducerSettings
from tests.reference import Record, classify

START = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
FAULTY = {"seed": 5, "start_time": START, "rate": 500, "invalid_ratio": 0.1, "late_ratio": 0.03,
          "duplicate_ratio": 0.02}


def record(value: bytes, time_ms: int, offset: int = 0) -> Record:
    """The record as the broker would hand it to the job, stamped with the model's send time."""
    return Record("t", 0, offset, datetime.fromtimestamp(time_ms / 1000, UTC), value)


@pytest.mark.parametrize("count", [1, 7, 999, 1000, 1001, 12_345, 50_000])
def test_each_kind_is_injected_exactly_round_count_times_ratio(count):
    # Given a run of `count` events with every kind of fault, When it is generated,
    # Then each kind appears exactly round(count * its ratio) times.
    s = ProducerSettings(count=count, **FAULTY)
    kinds = Counter(e.kind for e in generate(s))
    assert kinds.total() == count
    for kind, ratio in s.ratios().items():
        assert kinds[kind] == round_half_up(count * ratio), kind


def test_an_open_ended_plan_is_exact_at_every_block_boundary():
    plan = FaultPlan({"late": 0.0123, "malformed_json": 0.004}, random.Random(1))
    seen: Counter[str] = Counter()
    for i in range(1, 20_001):
        seen[plan.next_kind()] += 1
        if i % 1000 == 0:
            assert seen["late"] == round_half_up(i * 0.0123)
            assert seen["malformed_json"] == round_half_up(i * 0.004)


def test_faults_are_spread_over_the_stream_not_clumped():
    kinds = [e.kind for e in generate(ProducerSettings(count=10_000, **FAULTY))]
    # Then the first half holds half of them (exact at the 5000 boundary), and each 100-event stretch has some.
    first_half = Counter(kinds[:5000])
    assert sum(first_half[k] for k in INJECTABLE_REASONS) == 500
    assert first_half["valid"] == 5000 - 500 - 150 - 100
    per_stretch = [sum(k != "valid" for k in kinds[i:i + 100]) for i in range(0, 10_000, 100)]
    assert min(per_stretch) > 0 and max(per_stretch) < 40


def test_every_invalid_event_gets_exactly_the_reason_it_was_injected_as():
    # Given faulty traffic, When the independent oracle classifies each record as the job must,
    # Then an invalid kind maps to its reason, and valid, late and duplicate events are valid.
    s = ProducerSettings(count=5000, **FAULTY)
    for offset, e in enumerate(generate(s)):
        reason, _ = classify(record(e.value, e.time_ms, offset))
        assert reason == (e.kind if e.kind in INJECTABLE_REASONS else None), (e.kind, e.value)


def test_each_invalid_kind_varies_over_its_possible_forms():
    s = ProducerSettings(count=20_000, **FAULTY)
    events = list(generate(s))
    dropped = set()
    for e in events:
        if e.kind == "missing_field":
            doc = json.loads(e.value)
            dropped |= {"timestamp", "user_id", "session_id", "event_type"} - set(doc)
            if doc.get("event_type") == "page_view" and "page_url" not in doc:
                dropped.add("page_url")
    assert dropped == {"timestamp", "user_id", "session_id", "event_type", "page_url"}
    assert all(e.value[:1] == b"{" for e in events if e.kind == "malformed_json")


def test_late_events_are_shifted_into_the_past_by_late_by():
    s = ProducerSettings(count=3000, late_by=150.0, **FAULTY)
    late = [e for e in generate(s) if e.kind == "late"]
    assert late
    for e in late:
        stamped = datetime.fromisoformat(json.loads(e.value)["timestamp"])
        assert stamped == datetime.fromtimestamp(e.time_ms / 1000, UTC) - timedelta(seconds=150)


def test_future_events_are_an_hour_ahead_of_their_send_time():
    s = ProducerSettings(count=3000, **FAULTY)
    future = [e for e in generate(s) if e.kind == "future_timestamp"]
    for e in future:
        stamped = datetime.fromisoformat(json.loads(e.value)["timestamp"])
        assert stamped - datetime.fromtimestamp(e.time_ms / 1000, UTC) == timedelta(hours=1)


def test_a_duplicate_is_the_same_bytes_as_an_earlier_valid_event():
    s = ProducerSettings(count=5000, **FAULTY)
    seen: dict[bytes, str] = {}
    duplicates = 0
    for e in generate(s):
        if e.kind == "duplicate":
            duplicates += 1
            assert seen.get(e.value) in ("valid", "late")
            assert e.key == json.loads(e.value)["user_id"].encode()
        else:
            seen.setdefault(e.value, e.kind)
    assert duplicates == 100


def test_the_very_first_event_is_never_a_duplicate():
    for seed in range(50):
        s = ProducerSettings(count=3, seed=seed, start_time=START, duplicate_ratio=0.49)
        assert next(iter(generate(s))).kind != "duplicate"


def test_summary_kinds_cover_every_reason_plus_late_and_duplicate():
    assert INJECTED_KINDS == (*INJECTABLE_REASONS, "late", "duplicate")


def test_malformed_json_is_a_cut_event_or_an_event_followed_by_more_text():
    # Given faulty traffic, When its malformed_json records are sorted by form
    events = [e.value for e in generate(ProducerSettings(count=20_000, **FAULTY)) if e.kind == "malformed_json"]
    cut = [v for v in events if not v.endswith(b"}")]
    twice = [v for v in events if v[: len(v) // 2] == v[len(v) // 2:]]
    stray = [v for v in events if v.endswith(b"} }")]
    # Then each form is common, there is no other, and none holds a line break
    assert len(cut) + len(twice) + len(stray) == len(events)
    assert min(len(cut), len(twice), len(stray)) > len(events) // 5
    assert not any(b"\n" in v for v in events)
