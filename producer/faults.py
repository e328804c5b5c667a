"""Fault injection: which slot of the stream gets which fault (at exact ratios), and how each fault is written.

Exactness: the stream is cut into blocks of `BLOCK` events. Block b ends at event E_b and gets, for each kind k,
round(E_b * r_k) - round(E_(b-1) * r_k) faults of that kind at random positions inside the block. So after any
block boundary, and at the end of a run whose count is known (the last block ends there), every kind has been
injected exactly round(events * ratio) times; in between it is off by less than one block's share.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Mapping

from clickpulse.events import EVENT_TYPE, PAGE_URL, PAGE_VIEW, REQUIRED_FIELDS, USER_ID
from producer.settings import DUPLICATE, VALID

BLOCK = 1000
# event_type values that are not in EVENT_TYPES (nor a case variant of one), so the job can only call them unknown.
UNKNOWN_EVENT_TYPES = ("teleport", "rage_click", "scroll_depth", "hover", "pageview")
FUTURE_SHIFT_MS = 3600 * 1000


def round_half_up(x: float) -> int:
    return math.floor(x + 0.5)


class FaultPlan:
    """Yields the kind of each successive slot: "valid", an injectable reason, "late" or "duplicate"."""

    def __init__(self, ratios: Mapping[str, float], rng: random.Random, total: int | None = None,
                 block: int = BLOCK) -> None:
        self._ratios = {k: r for k, r in ratios.items() if r > 0}
        self._rng = rng
        self._total = total
        self._block = block
        self._start = 0  # first index of the current block
        self._plan: list[str] = []
        self._pos = 0

    def next_kind(self) -> str:
        if self._pos == len(self._plan):
            self._plan_next_block()
        kind = self._plan[self._pos]
        self._pos += 1
        return kind

    def _plan_next_block(self) -> None:
        start = self._start + len(self._plan)
        end = start + self._block
        if self._total is not None and start < self._total:
            end = min(end, self._total)  # the last block ends exactly at the total; past it, plain blocks again
        size = end - start
        plan = [VALID] * size
        faults: list[str] = []
        for kind, ratio in self._ratios.items():
            faults += [kind] * (round_half_up(end * ratio) - round_half_up(start * ratio))
        for pos, kind in zip(self._rng.sample(range(size), len(faults)), faults, strict=True):
            plan[pos] = kind
        if start == 0 and plan[0] == DUPLICATE:
            # The very first event cannot repeat an earlier one: swap it with the first slot that is not a duplicate
            # (one exists because duplicate ratios are below 0.5).
            other = next(i for i, k in enumerate(plan) if k != DUPLICATE)
            plan[0], plan[other] = plan[other], plan[0]
        self._start, self._plan, self._pos = start, plan, 0


def compact(doc: Mapping[str, object]) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode()


def malformed_json(doc: Mapping[str, object], rng: random.Random) -> bytes:
    """The event's JSON cut short (an object that never closes), or followed by more text: the event again (two
    concatenated events in one record) or a stray `}`. A parser that stops after the first value would count those.
    Never a line break: the dry run writes one record per line."""
    full = compact(doc)
    form = rng.randrange(3)
    if form == 1:
        return full + full
    if form == 2:
        return full + b" }"
    return full[: rng.randint(len(full) // 3, len(full) - 2)]


def missing_field(doc: Mapping[str, object], rng: random.Random) -> bytes:
    """Drop one required field (page_url counts as required on a page_view)."""
    candidates = list(REQUIRED_FIELDS)
    if doc.get(EVENT_TYPE) == PAGE_VIEW:
        candidates.append(PAGE_URL)
    drop = rng.choice(candidates)
    return compact({k: v for k, v in doc.items() if k != drop})


def wrong_type(doc: Mapping[str, object], rng: random.Random) -> bytes:
    """user_id as a JSON number instead of a string."""
    return compact({**doc, USER_ID: rng.randint(1, 99_999)})


def unknown_event_type(doc: Mapping[str, object], rng: random.Random) -> bytes:
    return compact({**doc, EVENT_TYPE: rng.choice(UNKNOWN_EVENT_TYPES)})


# How each reason rewrites a well-formed event (future_timestamp is a valid event with a shifted clock).
CORRUPTERS = {
    "malformed_json": malformed_json,
    "missing_field": missing_field,
    "wrong_type": wrong_type,
    "unknown_event_type": unknown_event_type,
}
