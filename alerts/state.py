"""The alert state machine, pure: one rule's episode moves pending -> firing -> resolved (or pending -> cancelled).

A value above the threshold starts a pending episode; it fires once the breach has lasted the rule's "for"
duration, and resolves once the value has stayed at or below `clear` (<= threshold: hysteresis) for `clear_for`.
A firing episode notifies when it fires, again every repeat interval while it fires, and when it resolves.
An unknown value (nothing to measure) proves nothing: it cancels a pending episode and keeps a firing one firing.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from alerts.settings import RuleSettings
from storage import contract as c


class State(StrEnum):
    PENDING = c.ALERT_PENDING
    FIRING = c.ALERT_FIRING
    RESOLVED = c.ALERT_RESOLVED
    CANCELLED = c.ALERT_CANCELLED


class Kind(StrEnum):
    """Why a notification goes out."""

    FIRING = "firing"
    REPEAT = "still firing"
    RESOLVED = "resolved"


@dataclass(frozen=True)
class Transition:
    state: State
    at: datetime
    value: float | None


@dataclass(frozen=True)
class Episode:
    """One breach of one rule, from its first breached round to its end."""

    rule: str
    state: State
    started_at: datetime
    threshold: float
    value: float | None
    summary: str
    transitions: tuple[Transition, ...]
    fired_at: datetime | None = None
    resolved_at: datetime | None = None
    last_notified_at: datetime | None = None
    clear_since: datetime | None = None
    checks: int = 1
    last_checked_at: datetime | None = None
    deliveries: tuple[dict, ...] = ()

    @property
    def id(self) -> str:
        return c.alert_id(self.rule, self.started_at)

    @property
    def open(self) -> bool:
        return self.state in (State.PENDING, State.FIRING)


@dataclass(frozen=True)
class Step:
    """The episode after one round (None: nothing open, nothing to record) and the notification it owes, if any."""

    episode: Episode | None
    notify: Kind | None = None


def _move(e: Episode, state: State, now: datetime, **changes: object) -> Episode:
    return replace(e, state=state, transitions=(*e.transitions, Transition(state, now, e.value)), **changes)


def step(rule: RuleSettings, episode: Episode | None, value: float | None, summary: str, now: datetime,
         repeat_interval: timedelta) -> Step:
    """Advance one rule by one round in which it measured `value` at `now`."""
    breached = value is not None and value > rule.threshold
    if episode is None or not episode.open:
        if not breached:
            return Step(None)
        fresh = Episode(rule.name, State.PENDING, now, rule.threshold, value, summary,
                        (Transition(State.PENDING, now, value),), last_checked_at=now)
        return _fire_if_due(rule, fresh, now)

    e = replace(episode, value=value, summary=summary, threshold=rule.threshold, checks=episode.checks + 1,
                last_checked_at=now)
    if e.state is State.PENDING:
        if not breached:
            return Step(_move(e, State.CANCELLED, now, resolved_at=now))
        return _fire_if_due(rule, e, now)

    # firing
    if value is not None and value <= rule.clear:
        since = e.clear_since or now
        if now - since >= rule.clear_for:
            return Step(_move(e, State.RESOLVED, now, resolved_at=now, clear_since=since, last_notified_at=now),
                        Kind.RESOLVED)
        return Step(replace(e, clear_since=since))
    e = replace(e, clear_since=None)
    if e.last_notified_at is None or now - e.last_notified_at >= repeat_interval:
        return Step(replace(e, last_notified_at=now), Kind.REPEAT)
    return Step(e)


def _fire_if_due(rule: RuleSettings, e: Episode, now: datetime) -> Step:
    if now - e.started_at >= rule.for_:
        return Step(_move(e, State.FIRING, now, fired_at=now, last_notified_at=now), Kind.FIRING)
    return Step(e)
