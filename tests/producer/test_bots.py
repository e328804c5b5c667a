"""Bots (--bot-ratio): a share of users who burst far above the job's bot limit, each burst in one second."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime

import pytest

from producer.bots import burst_stamps
from producer.faults import round_half_up
from producer.generator import TrafficModel, generate
from producer.settings import INJECTED_KINDS, ProducerSettings

START = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
JOB_LIMIT = 10  # the job's default --bot-max-events-per-second
BOTS = {"seed": 21, "start_time": START, "rate": 200, "users": 500, "bot_ratio": 0.02, "bot_burst": 30}


def per_user_second(events) -> Counter[tuple[str, str]]:
    """Valid events (bots' included) per (user, second of event time), as the job counts them."""
    seconds: Counter[tuple[str, str]] = Counter()
    for e in events:
        if e.kind in ("valid", "bot"):
            doc = json.loads(e.value)
            seconds[(doc["user_id"], doc["timestamp"][:19])] += 1
    return seconds


def test_without_a_bot_ratio_there_are_no_bots():
    model = TrafficModel(ProducerSettings(seed=1))
    assert model.bot_users == frozenset()
    assert all(e.kind != "bot" for e in generate(ProducerSettings(seed=1, start_time=START, count=5000)))


def test_bots_are_the_ratio_of_users_at_least_one_and_never_heavy_users():
    model = TrafficModel(ProducerSettings(seed=3, users=1000, bot_ratio=0.01))
    assert len(model.bot_users) == 10 and not model.bot_users & model.heavy_users
    assert len(TrafficModel(ProducerSettings(seed=3, users=50, bot_ratio=0.001)).bot_users) == 1


def test_each_burst_is_bot_burst_page_views_of_one_user_within_one_second():
    # Given traffic with bots sending bursts of 30
    events = list(generate(ProducerSettings(count=20_000, **BOTS)))
    bots = {json.loads(e.value)["user_id"] for e in events if e.kind == "bot"}
    # When the bots' events are counted per user and second of event time
    seconds = per_user_second(e for e in events if e.kind == "bot")
    # Then every burst lands in one second: each second holds a whole burst (or two), only the run's last burst
    # may be cut short
    assert len(bots) > 3
    short = [n for n in seconds.values() if n % 30]
    assert len(short) <= 1
    # And every bot event is a page view keyed by its user
    for e in events:
        if e.kind == "bot":
            doc = json.loads(e.value)
            assert doc["event_type"] == "page_view" and e.key == doc["user_id"].encode()


def test_at_the_demos_rate_only_bots_pass_the_jobs_limit():
    # Given the demo's traffic shape (20 events/s, 200 users) with 5% bots
    s = ProducerSettings(seed=8, start_time=START, rate=20, users=200, count=20_000, bot_ratio=0.05)
    events = list(generate(s))
    # When valid events are counted per user and second, as the job does
    over = {user for (user, _), n in per_user_second(events).items() if n > JOB_LIMIT}
    # Then the users over the limit are exactly the bots that sent a burst
    assert over == {json.loads(e.value)["user_id"] for e in events if e.kind == "bot"}
    assert over <= TrafficModel(s).bot_users and len(over) > 1


def test_fault_ratios_stay_exact_with_bots():
    s = ProducerSettings(count=12_345, invalid_ratio=0.05, late_ratio=0.02, duplicate_ratio=0.01, **BOTS)
    kinds = Counter(e.kind for e in generate(s))
    for kind in INJECTED_KINDS:
        assert kinds[kind] == round_half_up(12_345 * s.ratios()[kind]), kind
    assert kinds["bot"] > 0 and kinds.total() == 12_345


def test_the_same_seed_gives_the_same_bots_and_bursts():
    s = ProducerSettings(count=5000, **BOTS)
    assert list(generate(s)) == list(generate(s))
    assert TrafficModel(s).bot_users != TrafficModel(ProducerSettings(**{**BOTS, "seed": 22})).bot_users


def test_burst_times_are_spread_over_the_rest_of_the_first_events_second():
    assert burst_stamps(1_000_250, 4) == [1_000_250, 1_000_499, 1_000_749, 1_000_999]
    assert burst_stamps(1_000_999, 3) == [1_000_999] * 3


@pytest.mark.parametrize(("changes", "message"), [
    ({"bot_ratio": 1.5}, "bot-ratio must be between 0 and 1"),
    ({"bot_ratio": 0.1, "bot_burst": 1}, "bot-burst must be at least 2"),
    ({"bot_ratio": 0.5, "users": 2, "heavy_user_share": 1.0}, "no user is left to be a bot"),
])
def test_impossible_bot_settings_are_refused(changes, message):
    with pytest.raises(ValueError, match=message):
        ProducerSettings(**changes)

