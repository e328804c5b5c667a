"""The traffic model: seeded users, sessions, funnels and Zipf pages, rendered as the job's event contract.

`TrafficModel(settings).next_event(model_ms, stamp_ms)` returns the next `Event` (key, value bytes, kind, time); it
is pure: the same settings and the same clock readings give byte-identical events.
`generate(settings)` drives it with the run's schedule, stamped from `settings.start_time` (deterministic) or with
the wall clock when no start time is pinned.

The model: each event picks a user (a `heavy_user_share` of users is `heavy_user_weight` times more active), who
continues their session or starts a new one. A session is planned to last a log-normal time around
`session_seconds` (a few minutes); past that the user either logs out (half the sessions) or just leaves, and a
user idle for `session_timeout` seconds starts a new session. Inside a session the event type follows a funnel
(page views, clicks, searches, add_to_cart, purchase; a purchase only ever follows an add_to_cart) and page views
land on pages whose popularity follows a Zipf law with exponent `zipf_exponent` (rank 1 = "/"). The model clock
is the schedule's (ms since the run's start), so sessions do not depend on how fast the machine is. A `bot_ratio`
of the users are bots: picked for a valid event, a bot sends a burst of `bot_burst` page views within one second of
event time instead (producer/bots.py).
"""

from __future__ import annotations

import random
import time
from bisect import bisect
from collections.abc import Iterator
from datetime import UTC, datetime
from functools import lru_cache
from itertools import accumulate
from typing import NamedTuple

from clickpulse.events import EVENT_ID, EVENT_TYPE, PAGE_URL, SESSION_ID, TIMESTAMP, USER_ID
from producer.bots import Burst, pick_bots
from producer.faults import CORRUPTERS, FUTURE_SHIFT_MS, FaultPlan
from producer.settings import BOT, DUPLICATE, LATE, VALID, ProducerSettings


class Event(NamedTuple):
    """One message: Kafka key (user id, utf-8), value (compact JSON, utf-8), what it is, and when it was made.

    kind is "valid", one of the injectable reasons (the job's `reason` for it), "late", "duplicate", "bot" (a valid
    event of a bot's burst) or "replayed". time_ms is the model clock (epoch ms) the event was generated at, before
    any late/future shift (and the burst's own second, for a bot's event).
    """

    key: bytes | None  # None only for a replayed line without a user_id
    value: bytes
    kind: str
    time_ms: int


# Next event type after each event type, with weights (None: the first event of a session). A purchase only ever
# follows an add_to_cart. Sessions end on time, not on a step: see `TrafficModel.next_event`.
FUNNEL: dict[str | None, dict[str, float]] = {
    None: {"page_view": 75, "login": 25},
    "login": {"page_view": 85, "search": 15},
    "page_view": {"page_view": 45, "click": 32, "search": 9, "add_to_cart": 14},
    "click": {"page_view": 58, "click": 15, "add_to_cart": 21, "search": 6},
    "search": {"page_view": 62, "click": 38},
    "add_to_cart": {"page_view": 32, "purchase": 35, "add_to_cart": 11, "click": 22},
    "purchase": {"page_view": 70, "search": 15, "click": 15},
}
LOGOUT_SHARE = 0.5  # share of sessions that end with an explicit logout; the others just stop (and time out)
_CATEGORIES = ("books", "electronics", "home", "toys", "fashion", "sports", "garden", "beauty")
_FIXED_PAGES = ("/", "/deals", *(f"/category/{c}" for c in _CATEGORIES), "/new-arrivals", "/help")
SEARCH_PAGE, CHECKOUT_PAGE, LOGIN_PAGE, LOGOUT_PAGE = "/search", "/checkout", "/login", "/logout"


def page_catalog(n: int) -> list[str]:
    """The site's pages in popularity order: home, deals and categories first, then products."""
    pages = list(_FIXED_PAGES[:n])
    for i in range(n - len(pages)):
        pages.append(f"/products/{_CATEGORIES[i % len(_CATEGORIES)]}/p{i:05d}")
    return pages


def zipf_weights(n: int, exponent: float) -> list[float]:
    """Relative popularity of ranks 1..n: 1 / rank**exponent."""
    return [1.0 / (rank**exponent) for rank in range(1, n + 1)]


@lru_cache(maxsize=4096)
def _second_text(epoch_second: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch_second))


def format_timestamp(ms: int) -> str:
    """ISO-8601 UTC with milliseconds and Z, e.g. "2026-11-23T10:15:30.123Z"."""
    sec, milli = divmod(ms, 1000)
    return f"{_second_text(sec)}.{milli:03d}Z"


def epoch_ms(t: datetime) -> int:
    return round(t.astimezone(UTC).timestamp() * 1000)


class _Session:
    __slots__ = ("ends_ms", "id", "last_ms", "page", "state")

    def __init__(self, sid: str, ends_ms: int, now_ms: int) -> None:
        self.id = sid
        self.ends_ms = ends_ms
        self.last_ms = now_ms
        self.state: str | None = None
        self.page = "/"


class TrafficModel:
    """Seeded clickstream: call `next_event(now_ms)` once per message, with a non-decreasing clock."""

    def __init__(self, settings: ProducerSettings) -> None:
        s = settings
        self._rng = random.Random(s.seed)
        self._tag = f"{self._rng.getrandbits(32):08x}"
        self._faults = FaultPlan(s.ratios(), random.Random(f"faults:{s.seed}"), total=s.planned_count)
        self._fault_rng = random.Random(f"corrupt:{s.seed}")
        width = max(5, len(str(s.users - 1)))
        self.user_ids = [f"usr_{i:0{width}d}" for i in range(s.users)]
        self._user_keys = [u.encode() for u in self.user_ids]
        heavy = set(self._rng.sample(range(s.users), s.heavy_users))
        self.heavy_users = frozenset(self.user_ids[i] for i in heavy)
        # Bots draw from a generator of their own, so traffic without bots is the same as before they existed.
        self._bot_rng = random.Random(f"bots:{s.seed}")
        self._bots = pick_bots(set(range(s.users)) - heavy, s.bot_users, self._bot_rng)
        self.bot_users = frozenset(self.user_ids[i] for i in self._bots)
        self._bot_burst = s.bot_burst
        self._burst: Burst | None = None
        self._user_cum = list(accumulate(s.heavy_user_weight if i in heavy else 1.0 for i in range(s.users)))
        self.pages = page_catalog(s.pages)
        self._page_cum = list(accumulate(zipf_weights(s.pages, s.zipf_exponent)))
        self._funnel = {
            state: (list(nexts), list(accumulate(nexts.values()))) for state, nexts in FUNNEL.items()
        }
        self._sessions: list[_Session | None] = [None] * s.users
        self._session_seq = 0
        self._seq = 0
        self._timeout_ms = round(s.session_timeout * 1000)
        self._session_median = s.session_seconds
        self._late_ms = round(s.late_by * 1000)
        # Recent well-formed events a duplicate can repeat (a small ring: retries repeat recent sends).
        self._recent: list[tuple[bytes, bytes]] = []
        self._recent_at = 0
        self._last: tuple[bytes, bytes] | None = None

    def next_event(self, now_ms: int, stamp_ms: int | None = None) -> Event:
        """The next message at model time `now_ms` (ms, non-decreasing; it drives sessions), stamped `stamp_ms`.

        The model clock is the run's schedule, so the same seed and flags always give the same sequence;
        `stamp_ms` (default: `now_ms`) is only written into `timestamp`, e.g. the wall clock of a live run.
        """
        stamp_ms = now_ms if stamp_ms is None else stamp_ms
        kind = self._faults.next_kind()
        if kind == DUPLICATE:
            key, value = self._recent[self._rng.randrange(len(self._recent))] if self._recent else self._last
            return Event(key, value, DUPLICATE, stamp_ms)
        if kind == VALID and self._burst is not None:
            return self._bot_event(self._burst, now_ms, stamp_ms)
        rng = self._rng
        u = bisect(self._user_cum, rng.random() * self._user_cum[-1])
        if kind == VALID and self._bots and u in self._bots:
            # A bot keeps no cookies: each burst is a session of its own.
            self._burst = Burst(u, self._start_session(u, now_ms), stamp_ms, self._bot_burst)
            return self._bot_event(self._burst, now_ms, stamp_ms)
        session = self._sessions[u]
        if session is not None and now_ms - session.last_ms > self._timeout_ms:
            session = None  # idle too long: timed out
        if session is not None and now_ms >= session.ends_ms and rng.random() >= LOGOUT_SHARE:
            session = None  # over its planned length: the user just left
        if session is None:
            session = self._start_session(u, now_ms)
            etype = self._next_type(None)
        elif now_ms >= session.ends_ms:
            etype = "logout"
        else:
            etype = self._next_type(session.state)
        if etype == "page_view":
            session.page = page = self.pages[bisect(self._page_cum, rng.random() * self._page_cum[-1])]
        elif etype == "search":
            page = SEARCH_PAGE
        elif etype == "purchase":
            page = CHECKOUT_PAGE
        elif etype == "login":
            page = LOGIN_PAGE
        elif etype == "logout":
            page = LOGOUT_PAGE
        else:  # click, add_to_cart: on the page the user is looking at
            page = session.page
        session.state = etype
        session.last_ms = now_ms
        if etype == "logout":
            self._sessions[u] = None
        self._seq += 1
        event_id = f"evt_{self._tag}_{self._seq:09d}"
        ts = stamp_ms - self._late_ms if kind == LATE else stamp_ms + FUTURE_SHIFT_MS if kind == "future_timestamp" \
            else stamp_ms
        key = self._user_keys[u]
        corrupt = CORRUPTERS.get(kind)
        if corrupt is None:
            value = (
                f'{{"{EVENT_ID}":"{event_id}","{TIMESTAMP}":"{format_timestamp(ts)}","{USER_ID}":"{self.user_ids[u]}",'
                f'"{SESSION_ID}":"{session.id}","{EVENT_TYPE}":"{etype}","{PAGE_URL}":"{page}"}}'
            ).encode()
            if kind in (VALID, LATE):
                self._remember(key, value)
        else:
            doc = {EVENT_ID: event_id, TIMESTAMP: format_timestamp(ts), USER_ID: self.user_ids[u],
                   SESSION_ID: session.id, EVENT_TYPE: etype, PAGE_URL: page}
            value = corrupt(doc, self._fault_rng)
        self._last = (key, value)
        return Event(key, value, kind, stamp_ms)

    def _bot_event(self, burst: Burst, now_ms: int, stamp_ms: int) -> Event:
        """The next page view of a bot's burst, stamped inside the burst's second (crawlers sweep the whole site, so
        its pages are drawn evenly, not by popularity)."""
        session = burst.session
        session.page = page = self.pages[self._bot_rng.randrange(len(self.pages))]
        session.state = "page_view"
        session.last_ms = now_ms
        self._seq += 1
        value = (
            f'{{"{EVENT_ID}":"evt_{self._tag}_{self._seq:09d}","{TIMESTAMP}":"{format_timestamp(burst.next_stamp())}",'
            f'"{USER_ID}":"{self.user_ids[burst.user]}","{SESSION_ID}":"{session.id}","{EVENT_TYPE}":"page_view",'
            f'"{PAGE_URL}":"{page}"}}'
        ).encode()
        if not burst:
            self._burst = None
        key = self._user_keys[burst.user]
        self._last = (key, value)
        return Event(key, value, BOT, stamp_ms)

    def _next_type(self, state: str | None) -> str:
        types, cum = self._funnel[state]
        return types[bisect(cum, self._rng.random() * cum[-1])]

    def _start_session(self, u: int, now_ms: int) -> _Session:
        self._session_seq += 1
        # Lengths are log-normal around the median: most sessions last a few minutes, a few much longer.
        length_ms = round(self._rng.lognormvariate(0.0, 0.5) * self._session_median * 1000)
        session = _Session(f"sess_{self._tag}_{self._session_seq:08d}", now_ms + length_ms, now_ms)
        self._sessions[u] = session
        return session

    def _remember(self, key: bytes, value: bytes) -> None:
        if len(self._recent) < 64:
            self._recent.append((key, value))
        else:
            self._recent[self._recent_at] = (key, value)
            self._recent_at = (self._recent_at + 1) % 64


def model_times(settings: ProducerSettings) -> Iterator[int]:
    """Each event's model clock: ms since the run's start on its schedule (max rate: 1 ms apart)."""
    from producer.pacer import schedule

    for step in schedule(settings):
        for j in range(step.n):
            yield round((step.due + j * step.spacing) * 1000)


def generate(settings: ProducerSettings) -> Iterator[Event]:
    """The run's events in order (finite when settings.count or a steady-rate duration is set).

    With `settings.start_time` each event is stamped start_time + its schedule time, so the output is a pure
    function of the settings; without it each event is stamped with the wall clock when it is generated (and the
    sequence is still the same apart from the timestamps).
    """
    model = TrafficModel(settings)
    start_ms = epoch_ms(settings.start_time) if settings.start_time is not None else None
    for t in model_times(settings):
        yield model.next_event(t, start_ms + t if start_ms is not None else time.time_ns() // 1_000_000)
