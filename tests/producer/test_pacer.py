"""Rate control on a fake clock: steps are released on schedule, the rate holds over every 10 s, nothing drifts."""

from __future__ import annotations

import random
from bisect import bisect_left
from datetime import UTC, datetime
from itertools import pairwise

import pytest

from producer.pacer import Pacer, Step, burst_schedule, schedule, steady_schedule, step_size
from producer.settings import ProducerSettings


class FakeClock:
    """A monotonic clock that only moves when slept on (oversleeping by up to `jitter`) or told to."""

    def __init__(self, jitter: float = 0.0, seed: int = 0) -> None:
        self.now = 1000.0
        self.jitter = jitter
        self._rng = random.Random(seed)

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds + self._rng.uniform(0, self.jitter)

    def work(self, seconds: float) -> None:
        self.now += seconds


def release_times(steps: list[Step], clock: FakeClock, cost_per_event: float = 0.0) -> list[tuple[float, int]]:
    """Run the pacer over `steps`; return (time each step was released, relative to the start, events)."""
    pacer = Pacer(clock, clock.sleep)
    pacer.start()
    out = []
    for step in steps:
        assert pacer.wait(step.due)
        out.append((clock.now - pacer.origin, step.n))
        clock.work(step.n * cost_per_event)
    return out


def test_no_step_is_released_before_it_is_due_nor_much_after():
    # Given a 1000 ev/s schedule and a clock that oversleeps by up to 2 ms, When paced with some work per event,
    # Then every step is released at or after its due time and within the oversleep plus one step of work.
    clock = FakeClock(jitter=0.002)
    steps = list(steady_schedule(1000, 5, total=20_000))
    for (released, _), step in zip(release_times(steps, clock, 20e-6), steps, strict=True):
        assert step.due <= released <= step.due + 0.002 + 5 * 20e-6 + 1e-9


def test_the_rate_holds_within_1_percent_over_every_10_second_span():
    # Given 2000 ev/s for 10 minutes on a jittery clock, When counting events in every 10 s span (1 s apart),
    # Then each count is within 1% of 20,000.
    clock = FakeClock(jitter=0.003, seed=3)
    releases = release_times(list(steady_schedule(2000, 10, total=2000 * 600)), clock, 30e-6)
    times = [t for t, _ in releases]
    cumulative = [0]
    for _, n in releases:
        cumulative.append(cumulative[-1] + n)
    for start in range(0, 590):
        lo, hi = bisect_left(times, float(start)), bisect_left(times, float(start + 10))
        assert cumulative[hi] - cumulative[lo] == pytest.approx(20_000, rel=0.01)


def test_pacing_does_not_drift_over_a_long_run():
    # Given 20 ev/s for 3 hours on a clock that always oversleeps, Then the last event is released on time.
    clock = FakeClock(jitter=0.004, seed=4)
    steps = list(steady_schedule(20, 1, total=20 * 3 * 3600))
    released, _ = release_times(steps, clock)[-1]
    assert released == pytest.approx(steps[-1].due, abs=0.005)


def test_a_long_stall_moves_the_schedule_instead_of_bursting_to_catch_up():
    # Given a pacer that is stalled 30 s (a broker outage), When it resumes,
    # Then the next step is released at once and the following ones keep their spacing, not a burst.
    clock = FakeClock()
    pacer = Pacer(clock, clock.sleep, max_lag=1.0)
    pacer.start()
    assert pacer.wait(0.0)
    clock.work(30.0)
    assert pacer.wait(0.1)
    resumed = clock.now
    assert pacer.wait(0.2)
    assert clock.now == pytest.approx(resumed + 0.1)
    assert pacer.stalls == 1 and pacer.skipped_seconds == pytest.approx(29.9)


def test_a_stop_request_ends_a_wait_early():
    clock = FakeClock()
    pacer = Pacer(clock, clock.sleep)
    pacer.start()
    assert not pacer.wait(60.0, stop=lambda: clock.now > 1002.0)
    assert clock.now < 1003.0


def test_a_steady_schedule_has_exactly_the_planned_events_evenly_spaced():
    steps = list(steady_schedule(250, 7, total=1000))
    assert sum(s.n for s in steps) == 1000
    assert steps[1].due == pytest.approx(7 / 250) and steps[0].spacing == pytest.approx(1 / 250)
    settings = ProducerSettings(rate=300, duration=2.0)
    assert sum(s.n for s in schedule(settings)) == 600


def test_auto_step_size_is_about_5_ms_of_events():
    assert step_size(100, 0) == 1
    assert step_size(10_000, 0) == 50
    assert step_size(0, 0) == 1000
    assert step_size(10_000, 64) == 64


def test_bursts_run_at_rates_between_the_bounds_with_pauses_between_them():
    # Given bursts of 100 events at 50..500 ev/s with 2 s pauses, Then each burst's spacing is within the bounds
    # and each burst starts 2 s after the previous one ended.
    steps = list(burst_schedule(50, 500, 100, 2.0, random.Random(1), total=1000))
    assert sum(s.n for s in steps) == 1000
    bursts: list[list[Step]] = []
    for s in steps:
        if not bursts or s.spacing != bursts[-1][-1].spacing:
            bursts.append([])
        bursts[-1].append(s)
    assert len(bursts) == 10
    for prev, nxt in pairwise(bursts):
        assert 1 / 500 <= prev[0].spacing <= 1 / 50
        end = prev[0].due + 100 * prev[0].spacing
        assert nxt[0].due == pytest.approx(end + 2.0)


def test_max_rate_model_clock_advances_one_ms_per_event():
    s = ProducerSettings(rate=0, count=2500, start_time=datetime(2026, 11, 23, tzinfo=UTC))
    steps = list(schedule(s))
    assert [st.n for st in steps] == [1000, 1000, 500]
    assert steps[2].due == pytest.approx(2.0)
