"""`python -m producer`: rate-controlled, realistic, reproducible clickstream into Kafka (or stdout with --dry-run).

Prints one JSON summary line at the end (stdout; stderr for a dry run, whose stdout carries the events):
generated, sent (confirmed by Kafka), failed, errors, injected counts per kind, valid, bots (bot users that sent a
burst) and bot_events, achieved_rate, elapsed_seconds.
Exit codes: 0 all delivered, 1 some events not delivered (or Kafka unreachable), 2 bad arguments.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import secrets
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from kafka.errors import KafkaError

from clickpulse.cli import (
    DURATION_SYNTAX,
    Parser,
    add_logging_arguments,
    argument_type,
    env,
    non_negative_int,
    positive_int,
    program_name,
    seconds,
    setup_logging,
)
from clickpulse.events import DEFAULT_TOPIC
from producer.delivery import DeliveryError, KafkaSink, StreamSink, connect
from producer.generator import TrafficModel
from producer.replay import ReplaySource
from producer.runner import run
from producer.settings import (
    INJECTABLE_REASONS,
    ProducerSettings,
    parse_burst,
    parse_rate,
    parse_start_time,
)

log = logging.getLogger("producer")
PROG = program_name("python -m producer")


def _ratio(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"not a ratio between 0 and 1: {text!r}") from None
    if not 0 <= value <= 1:
        raise ValueError(f"not a ratio between 0 and 1: {text!r}")
    return value


def _kinds(text: str) -> tuple[str, ...]:
    kinds = tuple(k.strip() for k in text.split(",") if k.strip())
    bad = [k for k in kinds if k not in INJECTABLE_REASONS]
    if bad or not kinds:
        raise ValueError(f"unknown invalid kind(s) {', '.join(bad) or text!r}: choose from {', '.join(INJECTABLE_REASONS)}")
    return kinds


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"not a number: {text!r}") from None


def main_parser() -> argparse.ArgumentParser:
    p = Parser(prog=PROG, description=f"{__doc__}\nDurations: {DURATION_SYNTAX}.",
               formatter_class=argparse.RawDescriptionHelpFormatter)
    k = p.add_argument_group("Kafka")
    k.add_argument("--bootstrap-servers", default=env("CLICKPULSE_BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
                   help="host:port[,host:port] (env CLICKPULSE_BOOTSTRAP_SERVERS, default %(default)s)")
    k.add_argument("--topic", default=env("CLICKPULSE_TOPIC", DEFAULT_TOPIC),
                   help="topic, created if missing (env CLICKPULSE_TOPIC, default %(default)s)")
    k.add_argument("--partitions", type=positive_int, default=env("CLICKPULSE_PARTITIONS", "3"),
                   help="partitions when creating the topic (env CLICKPULSE_PARTITIONS, default 3)")
    k.add_argument("--replication-factor", type=positive_int, default="1",
                   help="replication factor when creating the topic (default 1)")
    k.add_argument("--linger-ms", type=non_negative_int, default="20", help="producer linger (default 20)")
    k.add_argument("--kafka-batch-bytes", type=positive_int, default=str(512 * 1024),
                   help="producer batch size in bytes (default 524288)")
    k.add_argument("--compression", choices=["none", "gzip", "snappy", "lz4", "zstd"], default="none",
                   help="batch compression (lz4/snappy/zstd need their Python package; default none)")
    k.add_argument("--max-pending", type=positive_int, default="200000",
                   help="unconfirmed messages allowed before sending waits for the broker (default 200000)")
    k.add_argument("--delivery-timeout", type=seconds, default="2m",
                   help="how long Kafka may take to confirm a message, and the final flush may wait, before "
                        "unconfirmed messages count as failed (default 2m)")
    k.add_argument("--connect-timeout", type=seconds, default=env("CLICKPULSE_CONNECT_TIMEOUT", "2m"),
                   help="how long to keep retrying an unreachable broker at start (env CLICKPULSE_CONNECT_TIMEOUT, "
                        "default 2m)")

    r = p.add_argument_group("Rate and length")
    r.add_argument("--rate", type=argument_type(parse_rate), default=env("CLICKPULSE_RATE", "100"),
                   help="events per second, or 'max' / 0 for as fast as possible (env CLICKPULSE_RATE, default 100)")
    length = r.add_mutually_exclusive_group()
    length.add_argument("--count", type=non_negative_int, help="stop after this many events")
    length.add_argument("--duration", type=seconds, help="stop after this long, e.g. 90s or 10m")
    r.add_argument("--batch-size", type=non_negative_int, default="0",
                   help="events per pacing step, or per burst with --burst (default: auto, ~5 ms of events; "
                        "500 per burst)")
    r.add_argument("--burst", type=argument_type(parse_burst), metavar="LOW:HIGH",
                   help="burst mode: each batch at a random rate between LOW and HIGH events/s")
    r.add_argument("--pause-seconds", type=seconds, default="1",
                   help="pause between bursts (default 1s)")
    r.add_argument("--progress-interval", type=seconds, default="5s",
                   help="how often to log a progress line (default 5s)")

    t = p.add_argument_group("Traffic")
    t.add_argument("--seed", type=non_negative_int, default=os.environ.get("CLICKPULSE_SEED") or None,
                   help="random seed: same seed + same flags = same events (env CLICKPULSE_SEED, default random)")
    t.add_argument("--start-time", type=argument_type(parse_start_time),
                   help="pin the event clock to start here (ISO-8601) and follow the schedule: fully reproducible")
    t.add_argument("--users", type=positive_int, default=env("CLICKPULSE_USERS", "1000"),
                   help="number of users (env CLICKPULSE_USERS, default 1000)")
    t.add_argument("--pages", type=positive_int, default=env("CLICKPULSE_PAGES", "200"),
                   help="number of pages (env CLICKPULSE_PAGES, default 200)")
    t.add_argument("--zipf", type=argument_type(_number), default="1.1", help="page popularity Zipf exponent (default 1.1)")
    t.add_argument("--heavy-share", type=argument_type(_ratio), default="0.05",
                   help="share of much more active users (default 0.05)")
    t.add_argument("--heavy-weight", type=argument_type(_number), default="20",
                   help="how much more active they are (default 20)")
    t.add_argument("--session-length", type=seconds, default="3m",
                   help="median session length in event time (default 3m)")
    t.add_argument("--session-timeout", type=seconds, default="5m",
                   help="idle time after which a user's next event starts a new session (default 5m)")
    t.add_argument("--bot-ratio", type=argument_type(_ratio), default=env("CLICKPULSE_BOT_RATIO", "0"),
                   help="share of users that are bots (at least one when above 0; never heavy users): each time one "
                        "would send an event it sends a burst of --bot-burst page views within one second of event "
                        "time instead, well above the job's --bot-max-events-per-second (default 10) "
                        "(env CLICKPULSE_BOT_RATIO, default 0)")
    t.add_argument("--bot-burst", type=positive_int, default="30",
                   help="events in one bot burst, all stamped within one second (default 30)")

    f = p.add_argument_group("Faults (each injected at its exact ratio)")
    f.add_argument("--invalid-ratio", type=argument_type(_ratio), default=env("CLICKPULSE_INVALID_RATIO", "0.02"),
                   help="share of invalid events, split evenly over --invalid-kinds (env CLICKPULSE_INVALID_RATIO, "
                        "default 0.02)")
    f.add_argument("--invalid-kinds", type=argument_type(_kinds), default=",".join(INJECTABLE_REASONS),
                   help="comma-separated kinds of invalid events (default: all of %(default)s)")
    f.add_argument("--late-ratio", type=argument_type(_ratio), default=env("CLICKPULSE_LATE_RATIO", "0.01"),
                   help="share of late events (env CLICKPULSE_LATE_RATIO, default 0.01)")
    f.add_argument("--late-by", type=seconds, default=env("CLICKPULSE_LATE_BY", "2m"),
                   help="how far a late event's time is shifted into the past (env CLICKPULSE_LATE_BY, default 2m)")
    f.add_argument("--duplicate-ratio", type=argument_type(_ratio), default=env("CLICKPULSE_DUPLICATE_RATIO", "0.01"),
                   help="share of duplicate deliveries, same bytes and event_id again "
                        "(env CLICKPULSE_DUPLICATE_RATIO, default 0.01)")

    o = p.add_argument_group("Input and output")
    o.add_argument("--from-file", type=Path, metavar="EVENTS.jsonl",
                   help="replay this file's lines as-is at --rate instead of generating traffic (no faults added)")
    o.add_argument("--dry-run", action="store_true", help="write the events to stdout (one JSON per line), not Kafka")
    add_logging_arguments(o)
    o.add_argument("-v", "--verbose", dest="log_level", action="store_const", const="DEBUG", default=argparse.SUPPRESS,
                   help="debug logging, including kafka-python's (--log-level DEBUG)")
    o.add_argument("-q", "--quiet", dest="log_level", action="store_const", const="WARNING", default=argparse.SUPPRESS,
                   help="warnings and errors only (--log-level WARNING)")
    return p


def settings_from(ns: argparse.Namespace) -> ProducerSettings:
    """The run's settings from parsed arguments (raises ValueError with a one-line message)."""
    return ProducerSettings(
        bootstrap_servers=ns.bootstrap_servers, topic=ns.topic, partitions=ns.partitions,
        replication_factor=ns.replication_factor, rate=ns.rate, count=ns.count, duration=ns.duration,
        batch_size=ns.batch_size, burst=ns.burst, pause_seconds=ns.pause_seconds,
        seed=ns.seed if ns.seed is not None else secrets.randbits(32), start_time=ns.start_time,
        users=ns.users, pages=ns.pages, zipf_exponent=ns.zipf, heavy_user_share=ns.heavy_share,
        heavy_user_weight=ns.heavy_weight, session_seconds=ns.session_length, session_timeout=ns.session_timeout,
        bot_ratio=ns.bot_ratio, bot_burst=ns.bot_burst,
        invalid_ratio=ns.invalid_ratio, invalid_kinds=ns.invalid_kinds, late_ratio=ns.late_ratio, late_by=ns.late_by,
        duplicate_ratio=ns.duplicate_ratio, from_file=ns.from_file, dry_run=ns.dry_run, linger_ms=ns.linger_ms,
        kafka_batch_bytes=ns.kafka_batch_bytes, compression=None if ns.compression == "none" else ns.compression,
        max_pending=ns.max_pending, delivery_timeout=ns.delivery_timeout, connect_timeout=ns.connect_timeout,
        progress_interval=ns.progress_interval,
    )


class _Signals:
    """First SIGINT/SIGTERM: stop sending and flush. Second: stop waiting for the flush too."""

    def __init__(self, stop: threading.Event, abandon: threading.Event) -> None:
        self._stop, self._abandon = stop, abandon
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, _frame: object) -> None:
        name = signal.Signals(signum).name
        if self._stop.is_set():
            log.warning("%s again: giving up on the flush; unconfirmed messages count as failed", name)
            self._abandon.set()
        else:
            log.info("%s: stopping, flushing what was sent (send it again to give up waiting)", name)
            self._stop.set()

    def __enter__(self) -> _Signals:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def _kafka_sink(settings: ProducerSettings, stop: threading.Event) -> KafkaSink:
    """Connect (with retries) and wrap the producer; any failure becomes a one-line DeliveryError."""
    try:
        producer = connect(settings, stop)
    except DeliveryError:
        raise
    except (RuntimeError, ValueError) as e:  # e.g. a compression codec whose library is missing
        raise DeliveryError(f"cannot create the Kafka producer: {e}") from None
    try:
        return KafkaSink(producer, settings.topic, settings.max_pending, stopping=stop.is_set)
    except KafkaError as e:
        producer.close(timeout=0)
        raise DeliveryError(f"cannot read the partitions of {settings.topic}: {type(e).__name__}: {e}") from None


def _configure_logging(level: str, log_format: str) -> None:
    setup_logging(level, log_format)
    # kafka-python logs every reconnect attempt; our own lines say what matters unless asked for more.
    logging.getLogger("kafka").setLevel(logging.DEBUG if level == "DEBUG" else logging.CRITICAL)


def run_cli(args: list[str] | None = None, stop: threading.Event | None = None) -> int:
    """Run the producer with `args` (default sys.argv); `stop` lets a caller end an endless run."""
    ns = main_parser().parse_args(args)
    _configure_logging(ns.log_level, ns.log_format)
    try:
        settings = settings_from(ns)
    except ValueError as e:
        sys.stderr.write(f"{PROG}: error: {e}\n")
        return 2
    if settings.from_file is not None and not settings.from_file.is_file():
        sys.stderr.write(f"{PROG}: error: --from-file {settings.from_file}: no such file\n")
        return 2
    stop = stop or threading.Event()
    abandon = threading.Event()
    source = ReplaySource(settings.from_file) if settings.from_file else TrafficModel(settings)
    where = "stdout (dry run)" if settings.dry_run else f"{settings.topic} on {settings.bootstrap_servers}"
    pace = (f"burst {settings.burst[0]:g}-{settings.burst[1]:g}/s" if settings.burst
            else f"{settings.rate:g}/s" if settings.rate else "max")
    length = (f"{settings.count} events" if settings.count is not None
              else f"for {settings.duration:g}s" if settings.duration else "until stopped")
    log.info("producing to %s: rate %s, %s, seed %d", where, pace, length, settings.seed)
    if settings.bot_users and settings.from_file is None:
        log.info("%d of %d users are bots: bursts of %d page views within one second of event time",
                 settings.bot_users, settings.users, settings.bot_burst)
    with _Signals(stop, abandon):
        try:
            sink = StreamSink(sys.stdout.buffer) if settings.dry_run else _kafka_sink(settings, stop)
            summary = run(settings, source, sink, stop, abandon=abandon)
        except DeliveryError as e:
            log.error("%s", e)
            return 1
        finally:
            if isinstance(source, ReplaySource):
                source.close()
    if summary["stopped_by"] == "closed_output":
        # The reader went away (e.g. `| head`): point stdout at /dev/null so the exit flush cannot fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    out = sys.stderr if settings.dry_run else sys.stdout
    out.write(json.dumps(summary) + "\n")
    out.flush()
    if summary["failed"]:
        log.error("%s of %s events were not delivered", f"{summary['failed']:,}", f"{summary['generated']:,}")
        return 1
    return 0
