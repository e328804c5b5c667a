"""The alert state machine, pure: each round is given its time (the clock is injected), no server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from alerts.settings import RuleSettings
from alerts.state import Episode, Kind, State, Step, step

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
RULE = RuleSettings("batch_age", threshold=60, for_=timedelta(minutes=4), clear=50, clear_for=timedelta(seconds=30))
REPEAT = timedelta(hours=1)


def run(values: list[tuple[float, float | None]], rule: RuleSettings = RULE, repeat: timedelta = REPEAT) -> list[Step]:
    """Feed (seconds after T0, value) rounds through the machine; return each round's step."""
    episode: Episode | None = None
    steps = []
    for seconds, value in values:
        s = step(rule, episode, value, f"value {value}", T0 + timedelta(seconds=seconds), repeat)
        steps.append(s)
        episode = s.episode if s.episode is not None and s.episode.open else None
    return steps


def states(steps: list[Step]) -> list[str | None]:
    return [None if s.episode is None else str(s.episode.state) for s in steps]


def notified(steps: list[Step]) -> list[str | None]:
    return [None if s.notify is None else str(s.notify) for s in steps]


def test_a_value_at_or_below_the_threshold_opens_no_alert():
    assert states(run([(0, 60), (30, 10)])) == [None, None]


def test_a_breach_is_pending_until_it_has_lasted_the_for_duration_then_fires_once():
    # Given a rule that fires after 4 minutes above 60
    # When the value stays above it for 4 minutes and more
    steps = run([(0, 61), (120, 200), (239, 200), (240, 200), (300, 200)])
    # Then it is pending, then firing, and notifies only when it fires
    assert states(steps) == ["pending", "pending", "pending", "firing", "firing"]
    assert notified(steps) == [None, None, None, "firing", None]


def test_a_pending_alert_that_recovers_is_cancelled_without_notifying():
    steps = run([(0, 61), (60, 59)])
    assert states(steps) == ["pending", "cancelled"]
    assert notified(steps) == [None, None]


def test_a_rule_with_no_for_duration_fires_on_its_first_breached_round():
    rule = RuleSettings("x", 0, timedelta(0), 0, timedelta(0))
    steps = run([(0, 1)], rule)
    assert states(steps) == ["firing"] and notified(steps) == ["firing"]
    assert [t.state for t in steps[0].episode.transitions] == [State.PENDING, State.FIRING]


def test_hysteresis_a_firing_alert_between_clear_and_threshold_keeps_firing():
    # Given a firing alert (threshold 60, clear 50)
    # When the value drops to 55: below the threshold but above the clear level
    steps = run([(0, 100), (240, 100), (300, 55), (400, 55)])
    # Then it keeps firing, silently
    assert states(steps)[-2:] == ["firing", "firing"]
    assert notified(steps)[-2:] == [None, None]


def test_a_firing_alert_resolves_after_the_value_stays_clear_for_clear_for_and_notifies():
    steps = run([(0, 100), (240, 100), (300, 50), (320, 40), (330, 45)])
    assert states(steps) == ["pending", "firing", "firing", "firing", "resolved"]
    assert notified(steps) == [None, "firing", None, None, "resolved"]
    assert steps[-1].episode.resolved_at == T0 + timedelta(seconds=330)


def test_a_relapse_during_clear_for_restarts_the_clear_count():
    steps = run([(0, 100), (240, 100), (300, 40), (320, 70), (340, 40), (360, 40), (370, 40)])
    # cleared at 300, broken at 320, cleared again at 340: resolves 30 s after 340
    assert states(steps)[-1] == "resolved" and notified(steps)[-1] == "resolved"
    assert steps[-2].episode.state is State.FIRING


def test_no_duplicate_notification_while_firing_until_the_repeat_interval():
    # Given an alert firing at 240 s and a repeat interval of 1 hour
    rounds = [(0, 100), *((240 + 30 * i, 100) for i in range(120)), (240 + 3600, 100)]
    steps = run(rounds)
    # Then it notifies when it fires, then once more an hour later, never in between
    kinds = [(seconds, str(s.notify)) for (seconds, _), s in zip(rounds, steps, strict=True) if s.notify is not None]
    assert kinds == [(240, "firing"), (240 + 3600, str(Kind.REPEAT))]


def test_an_unknown_value_cancels_a_pending_alert_and_keeps_a_firing_one():
    assert states(run([(0, 100), (30, None)])) == ["pending", "cancelled"]
    steps = run([(0, 100), (240, 100), (270, None), (300, None)])
    assert states(steps)[-2:] == ["firing", "firing"] and notified(steps)[-2:] == [None, None]


def test_every_transition_is_recorded_with_its_time_and_value():
    steps = run([(0, 100), (240, 120), (300, 40), (330, 30)])
    e = steps[-1].episode
    assert [(str(t.state), (t.at - T0).total_seconds(), t.value) for t in e.transitions] == [
        ("pending", 0, 100), ("firing", 240, 120), ("resolved", 330, 30)]
    assert e.checks == 4


def test_a_new_breach_after_resolving_is_a_new_episode():
    steps = run([(0, 100), (240, 100), (300, 10), (330, 10), (400, 100)])
    assert states(steps)[-1] == "pending"
    assert steps[-1].episode.id != steps[0].episode.id
    assert steps[-1].episode.id == "batch_age|2026-11-23T10:06:40.000Z"
