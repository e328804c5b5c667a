"""Rate control: the run's schedule (when each step of events is due) and a pacer that keeps to it.

The schedule is absolute: step k of a steady run is due at k*n/rate seconds after the start, computed from k, never
by adding up sleeps, so pacing cannot drift however long the run. The pacer waits on an injectable monotonic
clock; when it falls behind by more than `max_lag` (a stalled broker, a suspended laptop) it moves the schedule
forward instead of bursting to catch up, and counts the time it skipped.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Iterator
from typing import NamedTuple

from producer.settings import ProducerSettings

STEPS_PER_SECOND = 200  # auto step size: about one step every 5 ms
MAX_STEP = 1000  # auto step size cap (also the step size at max rate)


class Step(NamedTuple):
    """`n` events, the first due `due` seconds after the start, the next ones `spacing` seconds apart."""

    due: float
    n: int
    spacing: float


def step_size(rate: float, batch_size: int) -> int:
    """Events per pacing step: the given batch size, or about 5 ms worth of events."""
    if batch_size:
        return batch_size
    if rate <= 0:
        return MAX_STEP
    return max(1, min(MAX_STEP, round(rate / STEPS_PER_SECOND)))


def _limit(total: int | None, duration: float | None) -> tuple[float, float]:
    return (math.inf if total is None else total), (math.inf if duration is None else duration)


def steady_schedule(rate: float, step: int, total: int | None = None, duration: float | None = None) -> Iterator[Step]:
    """Evenly spaced events at `rate`/s, `step` per step, until `total` events or the last one due before
    `duration` seconds."""
    max_events, max_seconds = _limit(total, duration)
    max_events = min(max_events, math.ceil(max_seconds * rate - 1e-9)) if math.isfinite(max_seconds) else max_events
    k = 0
    while k * step < max_events:
        first = k * step
        yield Step(first / rate, int(min(step, max_events - first)), 1.0 / rate)
        k += 1


def unpaced_schedule(step: int, total: int | None = None) -> Iterator[Step]:
    """As fast as possible: never waited on; the model clock (sessions, pinned timestamps) advances 1 ms per event."""
    max_events, _ = _limit(total, None)
    first = 0
    while first < max_events:
        n = int(min(step, max_events - first))
        yield Step(first / 1000.0, n, 0.001)
        first += n


def burst_schedule(low: float, high: float, batch: int, pause: float, rng: random.Random,
                   total: int | None = None, duration: float | None = None) -> Iterator[Step]:
    """Batches of `batch` events, each at a random rate in [low, high], with `pause` seconds between batches."""
    max_events, max_seconds = _limit(total, duration)
    sent, t0 = 0, 0.0
    while sent < max_events and t0 < max_seconds:
        rate = rng.uniform(low, high)
        size = int(min(batch, max_events - sent))
        for step in steady_schedule(rate, step_size(rate, 0), size, max_seconds - t0):
            yield Step(t0 + step.due, step.n, step.spacing)
            sent += step.n
        t0 += size / rate + pause


def schedule(settings: ProducerSettings) -> Iterator[Step]:
    """The whole run's schedule from its settings (infinite when neither count nor duration is set)."""
    s = settings
    if s.burst is not None:
        low, high = s.burst
        return burst_schedule(low, high, s.batch_size or 500, s.pause_seconds, random.Random(f"burst:{s.seed}"),
                              s.count, s.duration)
    if s.rate > 0:
        # A steady run of known length sends exactly planned_count events (rate x duration, rounded).
        return steady_schedule(s.rate, step_size(s.rate, s.batch_size), s.planned_count)
    return unpaced_schedule(step_size(0, s.batch_size), s.count)


class Pacer:
    """Waits until each step is due on a monotonic clock; `clock` and `sleep` are injectable for tests."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], object] = time.sleep,
                 max_lag: float = 1.0) -> None:
        self._clock = clock
        self._sleep = sleep
        self.max_lag = max_lag
        self.origin = clock()
        self.skipped_seconds = 0.0  # schedule time given up after stalls
        self.stalls = 0

    def start(self) -> None:
        self.origin = self._clock()

    def wait(self, due: float, stop: Callable[[], bool] = lambda: False) -> bool:
        """Block until `due` seconds after the start (unless `stop()` turns true); return False if stopped."""
        while True:
            late = self._clock() - (self.origin + due)
            if late >= 0:
                if late > self.max_lag:
                    self.origin += late
                    self.skipped_seconds += late
                    self.stalls += 1
                return True
            if stop():
                return False
            # Sleep in slices so a stop request is seen quickly even in a long burst pause.
            self._sleep(min(-late, 0.25))
