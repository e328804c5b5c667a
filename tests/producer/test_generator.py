"""The traffic model: reproducible, on contract, and shaped like real traffic (statistics on fixed seeds)."""

from __future__ import annotations

import json
import math
import re
import statistics
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest

from clickpulse.events import EVENT_TYPES, PAGE_URL, PAGE_VIEW, REQUIRED_FIELDS
from producer.generator import TrafficModel, format_timestamp, generate, page_catalog
from producer.settings import ProducerSettings

START = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
ISO_MILLIS_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


def clean(**changes) -> ProducerSettings:
    return ProducerSettings(**{"seed": 11, "start_time": START, "rate": 200, "count": 20_000, **changes})


@pytest.fixture(scope="module")
def sample() -> list[dict]:
    """120k clean events from 500 users at 200 ev/s: 10 minutes of event time."""
    s = clean(count=120_000, users=500)
    return [json.loads(e.value) for e in generate(s)]


def test_same_seed_and_start_time_give_byte_identical_events():
    # Given the same settings twice, When the events are generated, Then every key and value is identical.
    s = clean(invalid_ratio=0.05, late_ratio=0.02, duplicate_ratio=0.02)
    assert list(generate(s)) == list(generate(s))


def test_a_different_seed_gives_different_events():
    assert [e.value for e in generate(clean(count=100))] != [e.value for e in generate(clean(count=100, seed=12))]


def test_without_a_pinned_start_only_the_timestamps_differ():
    # Given the same seed, one run on the wall clock and one pinned, Then they match once timestamps are masked.
    pinned = generate(clean(count=2000, invalid_ratio=0.05, duplicate_ratio=0.01))
    live = generate(clean(count=2000, invalid_ratio=0.05, duplicate_ratio=0.01, start_time=None))

    def mask(v: bytes) -> bytes:
        return re.sub(rb'"timestamp":"[^"]*"', b'"timestamp":"T"', v)

    assert [mask(e.value) for e in pinned] == [mask(e.value) for e in live]


def test_clean_events_follow_the_event_contract():
    # Given clean traffic, Then each value is compact JSON with every required field, a known type, a page on
    # page views, a millisecond UTC timestamp, a unique event_id, and the user id as the Kafka key.
    events = list(generate(clean(count=5000)))
    ids = set()
    for e in events:
        doc = json.loads(e.value)
        assert e.value == json.dumps(doc, separators=(",", ":")).encode()
        assert all(isinstance(doc[f], str) and doc[f] for f in REQUIRED_FIELDS)
        assert doc["event_type"] in EVENT_TYPES
        assert doc["event_type"] != PAGE_VIEW or doc[PAGE_URL].startswith("/")
        assert ISO_MILLIS_Z.match(doc["timestamp"])
        assert e.key == doc["user_id"].encode()
        assert e.kind == "valid"
        ids.add(doc["event_id"])
    assert len(ids) == len(events)


def test_timestamps_follow_the_schedule_from_the_pinned_start():
    events = list(generate(clean(count=3, rate=4)))
    assert [json.loads(e.value)["timestamp"] for e in events] == [
        "2026-11-23T10:00:00.000Z", "2026-11-23T10:00:00.250Z", "2026-11-23T10:00:00.500Z"]


def test_timestamp_format_is_iso_utc_with_millis_and_z():
    assert format_timestamp(1_795_428_930_123) == "2026-11-23T10:15:30.123Z"


def test_page_popularity_follows_zipf(sample):
    # Given page views over 200 pages with exponent 1.1, When ranks are fitted on a log-log scale,
    # Then the slope is about -1.1 and the home page is the most viewed.
    views = Counter(d["page_url"] for d in sample if d["event_type"] == PAGE_VIEW)
    catalog = page_catalog(200)
    ranks = range(1, 41)
    xs = [math.log(r) for r in ranks]
    ys = [math.log(views[catalog[r - 1]]) for r in ranks]
    slope = statistics.linear_regression(xs, ys).slope
    assert slope == pytest.approx(-1.1, abs=0.12)
    assert views.most_common(1)[0][0] == "/"
    harmonic = sum(1 / r**1.1 for r in range(1, 201))
    assert views["/"] / views.total() == pytest.approx(1 / harmonic, rel=0.1)


def test_a_few_heavy_users_make_much_of_the_traffic():
    # Given 5% heavy users 20x as active, Then they make about 0.05*20 / (0.05*20 + 0.95) = 51% of the events.
    s = clean(count=40_000, users=1000)
    model = TrafficModel(s)
    share = sum(json.loads(e.value)["user_id"] in model.heavy_users for e in generate(s)) / 40_000
    assert len(model.heavy_users) == 50
    assert share == pytest.approx(1.0 / 1.95, abs=0.03)


def test_sessions_belong_to_one_user_last_minutes_and_never_idle_past_the_timeout(sample):
    sessions: dict[str, list[dict]] = defaultdict(list)
    for d in sample:
        sessions[d["session_id"]].append(d)
    spans = []
    for events in sessions.values():
        assert len({d["user_id"] for d in events}) == 1
        times = [datetime.fromisoformat(d["timestamp"]) for d in events]
        assert all(b - a <= timedelta(minutes=5) for a, b in pairwise(times))
        spans.append((times[-1] - times[0]).total_seconds())
    multi = [s for s in spans if s > 0]
    # Sessions end: users come back in new ones, a few minutes long, rarely longer than a quarter hour.
    assert len(sessions) > 2 * 500
    assert 60 <= statistics.median(multi) <= 300
    assert statistics.quantiles(multi, n=100)[98] <= 15 * 60


def test_sessions_follow_the_funnel(sample):
    # Then page views > clicks > add_to_cart > purchases, and a purchase only ever follows an add_to_cart.
    types = Counter(d["event_type"] for d in sample)
    assert types["page_view"] > types["click"] > types["add_to_cart"] > types["purchase"] > 0
    assert set(types) == set(EVENT_TYPES)
    carted: set[str] = set()
    for d in sample:
        if d["event_type"] == "add_to_cart":
            carted.add(d["session_id"])
        if d["event_type"] == "purchase":
            assert d["session_id"] in carted
            assert d["page_url"] == "/checkout"
    # Some sessions end with an explicit logout (the others time out).
    assert 0 < types["logout"] < len({d["session_id"] for d in sample})
