"""Bots: users who send bursts of events far above the job's bot limit, each burst within one second of event time.

The job counts a user who sends more than `--bot-max-events-per-second` valid events (default 10) in one second of
event time as a bot for that second. A bot user here sends `bot_burst` page views (default 30) each time it is
picked: the model's later valid slots carry the burst's events, one each, until it is sent, all stamped within the
second the burst started (an event therefore reaches Kafka up to burst / rate seconds after its timestamp). Slots
the fault plan gives to invalid, late or duplicate events stay theirs, so every fault ratio stays exact.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Iterable
from typing import Any


def pick_bots(candidates: Iterable[int], n: int, rng: random.Random) -> frozenset[int]:
    """`n` of the candidate user indexes, chosen by `rng` (the same seed picks the same bots)."""
    pool = sorted(candidates)
    return frozenset(rng.sample(pool, min(n, len(pool))))


def burst_stamps(first_ms: int, size: int) -> list[int]:
    """`size` event times (epoch ms) from `first_ms` to the last millisecond of its second, evenly spread."""
    last = (first_ms // 1000) * 1000 + 999
    if size == 1:
        return [first_ms]
    return [first_ms + (j * (last - first_ms)) // (size - 1) for j in range(size)]


class Burst:
    """The events a bot still has to send in its current burst: who, in which session, and when each is stamped."""

    __slots__ = ("session", "stamps", "user")

    def __init__(self, user: int, session: Any, first_ms: int, size: int) -> None:
        self.user = user
        self.session = session
        self.stamps = deque(burst_stamps(first_ms, size))

    def next_stamp(self) -> int:
        return self.stamps.popleft()

    def __bool__(self) -> bool:
        return bool(self.stamps)
