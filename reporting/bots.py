"""Bot traffic from query results (pure): bot seconds over time, the top bot users, and a window's figures without
its bot users.

A bot second is one user's second of event time in which the job counted more valid events from that user than
its --bot-max-events-per-second (storage/contract.py, bot_activity).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from reporting.charts import bucket_start
from storage import contract as c

Doc = dict[str, Any]


def per_bucket(seconds: Iterable[Doc], size: timedelta) -> dict[datetime, tuple[int, int]]:
    """Bot seconds and their events per time bucket of `size`, oldest first: {bucket start: (seconds, events)}."""
    counts: dict[datetime, list[int]] = defaultdict(lambda: [0, 0])
    for d in seconds:
        entry = counts[bucket_start(d[c.SECOND], size)]
        entry[0] += 1
        entry[1] += int(d[c.EVENTS])
    return {t: (n, events) for t, (n, events) in sorted(counts.items())}


def top_bots(seconds: Iterable[Doc], n: int) -> list[Doc]:
    """The `n` users with the most bot seconds (then most events, then by id): {user_id, seconds, events, first,
    last} with first and last the bounds of their bot seconds."""
    users: dict[str, Doc] = {}
    for d in seconds:
        u = users.setdefault(d[c.USER_ID], {c.USER_ID: d[c.USER_ID], "seconds": 0, c.EVENTS: 0,
                                            "first": d[c.SECOND], "last": d[c.SECOND]})
        u["seconds"] += 1
        u[c.EVENTS] += int(d[c.EVENTS])
        u["first"], u["last"] = min(u["first"], d[c.SECOND]), max(u["last"], d[c.SECOND])
    return sorted(users.values(), key=lambda u: (-u["seconds"], -u[c.EVENTS], str(u[c.USER_ID])))[:n]


@dataclass(frozen=True)
class WithoutBots:
    """One user-sessions window's users and sessions per user, leaving out the users who were bots in it."""

    window: Doc
    users: int  # users of the window who were never a bot in it
    bot_users: int  # users of the window left out
    sessions_per_user: float | None  # None when no user is left


def without_bots(window: Doc, users: Sequence[Doc], bots: set[str]) -> WithoutBots:
    """The figures of a window (`reads.window_users`) without the users in `bots` (`reads.bot_users` of it)."""
    people = [u for u in users if u[c.USER_ID] not in bots]
    sessions = sum(int(u[c.SESSIONS]) for u in people)
    return WithoutBots(window, len(people), len(users) - len(people), sessions / len(people) if people else None)
