"""One producer run: follow the schedule, hand each event to the sink, report progress, and sum it all up."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Protocol

from producer.delivery import Sink
from producer.generator import Event, epoch_ms
from producer.pacer import Pacer, schedule
from producer.settings import BOT, INJECTED_KINDS, REPLAYED, ProducerSettings

log = logging.getLogger("producer")


class Source(Protocol):
    def next_event(self, now_ms: int, stamp_ms: int | None = None) -> Event | None: ...


class Progress:
    """Logs a live line every `interval` seconds from a background thread (so a blocked loop still reports)."""

    def __init__(self, sink: Sink, interval: float, target: str, clock: Callable[[], float]) -> None:
        self._sink = sink
        self._interval = interval
        self._target = target
        self._clock = clock
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="producer-progress", daemon=True)

    def __enter__(self) -> Progress:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()

    def _loop(self) -> None:
        last_t, last_n = self._clock(), self._sink.handed
        warned = False
        while not self._done.wait(self._interval):
            now, n = self._clock(), self._sink.handed
            rate = (n - last_n) / max(now - last_t, 1e-9)
            sink = self._sink
            log.info("sent %s (acked %s, failed %s, pending %s) | %s ev/s over the last %.1fs (target %s)",
                     f"{n:,}", f"{sink.acked:,}", f"{sink.failed:,}", f"{sink.pending:,}", f"{rate:,.1f}",
                     now - last_t, self._target)
            silent = now - sink.last_progress
            if sink.pending and silent > 10:
                warned = True
                log.warning("no answer from Kafka for %.0fs with %s messages pending: broker unreachable? "
                            "the producer keeps retrying until the delivery timeout", silent, f"{sink.pending:,}")
            elif warned:
                warned = False
                log.info("Kafka is answering again")
            last_t, last_n = now, n


def _send_all(s: ProducerSettings, source: Source, sink: Sink, stop: threading.Event, pacer: Pacer,
              clock: Callable[[], float], kinds: Counter[str], bots: set[bytes | None]) -> str:
    """The send loop; returns why it ended."""
    pinned_ms = epoch_ms(s.start_time) if s.start_time is not None else None
    # A steady schedule ends by itself after rate x duration events; other modes stop on the clock.
    clock_deadline = s.duration if s.duration is not None and (s.burst is not None or s.rate == 0) else None
    send = sink.send
    started = clock()
    pacer.start()
    for step in schedule(s):
        if stop.is_set() or (s.paced and not pacer.wait(step.due, stop.is_set)):
            return "signal"
        if clock_deadline is not None and clock() - started >= clock_deadline:
            return "duration"
        wall_ms = time.time_ns() // 1_000_000
        for j in range(step.n):
            # The model follows the schedule (reproducible); the timestamp is the wall clock unless pinned.
            model_ms = round((step.due + j * step.spacing) * 1000)
            event = source.next_event(model_ms, wall_ms if pinned_ms is None else pinned_ms + model_ms)
            if event is None:
                sink.reap()
                return "end_of_file"
            send(event.key, event.value)
            kinds[event.kind] += 1
            if event.kind == BOT:
                bots.add(event.key)
        sink.reap()
    return "count" if s.count is not None else "duration" if s.duration is not None else "end_of_schedule"


def run(settings: ProducerSettings, source: Source, sink: Sink, stop: threading.Event,
        clock: Callable[[], float] = time.monotonic, abandon: threading.Event | None = None) -> dict[str, object]:
    """Send the run's events to `sink` on schedule until done or `stop` is set; flush; return the summary."""
    s = settings
    abandon = abandon or threading.Event()
    pacer = Pacer(clock, sleep=stop.wait)
    kinds: Counter[str] = Counter()
    bots: set[bytes | None] = set()
    target = "burst" if s.burst else f"{s.rate:,.0f}/s" if s.rate else "max"
    started = clock()
    with Progress(sink, s.progress_interval, target, clock):
        try:
            stopped_by = _send_all(s, source, sink, stop, pacer, clock, kinds, bots)
        except BrokenPipeError:
            stopped_by = "closed_output"
        finally:
            sending = clock() - started
            if sink.pending:
                log.info("flushing %s pending messages", f"{sink.pending:,}")
            try:
                sink.close(s.delivery_timeout, abandon.is_set)
            except BrokenPipeError:
                pass
    elapsed = clock() - started
    handed = sink.handed
    return {
        "topic": s.topic,
        "dry_run": s.dry_run,
        "seed": s.seed,
        "target_rate": None if s.burst or not s.rate else s.rate,
        "generated": handed,
        "sent": sink.acked,
        "failed": sink.failed,
        "errors": sink.errors(),
        "injected": {k: kinds[k] for k in INJECTED_KINDS},
        "valid": kinds["valid"],
        "bots": len(bots),  # bot users that sent a burst
        "bot_events": kinds[BOT],
        "replayed": kinds[REPLAYED],
        "achieved_rate": round(handed / sending, 1) if sending > 0 else 0.0,
        "elapsed_seconds": round(elapsed, 3),
        "stopped_by": stopped_by,
        "pacing_stalls": pacer.stalls,
        "skipped_seconds": round(pacer.skipped_seconds, 3),
    }
