"""Run the clickpulse streaming job: `spark-submit streaming_job/main.py [flags]` or `python -m streaming_job`."""

from __future__ import annotations

import argparse
import faulthandler
import logging
import os
import signal
import sys
import threading
from datetime import timedelta
from pathlib import Path
from typing import NoReturn

if __package__ in (None, ""):  # run as a script by spark-submit: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from storage import contract as c
from storage.client import mask_uri
from streaming_job import events as ev
from streaming_job.settings import JobSettings, Trigger, WindowSpec, parse_duration

log = logging.getLogger("clickpulse.job")
PROG = "clickpulse-job"


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one clear line (and exit code 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _env(name: str, default: str) -> str:
    return os.environ.get(name) or default


def _duration(text: str) -> timedelta:
    try:
        return parse_duration(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _retention(text: str) -> timedelta | None:
    return None if text.strip().lower() in ("none", "off", "0") else _duration(text)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return value


def main_parser() -> argparse.ArgumentParser:
    p = _Parser(prog=PROG, description="Kafka clickstream -> validation, dedup, sliding windows -> MongoDB.",
                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    io = p.add_argument_group("where")
    io.add_argument("--bootstrap-servers", default=_env("CLICKPULSE_BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
                    help="Kafka bootstrap servers (env CLICKPULSE_BOOTSTRAP_SERVERS)")
    io.add_argument("--topic", default=_env("CLICKPULSE_TOPIC", ev.DEFAULT_TOPIC), help="topic (env CLICKPULSE_TOPIC)")
    io.add_argument("--mongo-uri", default=_env("CLICKPULSE_MONGO_URI", "mongodb://127.0.0.1:27017/"),
                    help="MongoDB URI, credentials included (env CLICKPULSE_MONGO_URI)")
    io.add_argument("--database", default=_env("CLICKPULSE_DATABASE", c.DEFAULT_DATABASE),
                    help="database (env CLICKPULSE_DATABASE)")
    io.add_argument("--checkpoint-dir", default=_env("CLICKPULSE_CHECKPOINT_DIR", ".data/checkpoints"),
                    help="base checkpoint dir: local path or file://, hdfs://, s3a:// URI (env CLICKPULSE_CHECKPOINT_DIR)")
    run = p.add_argument_group("how")
    run.add_argument("--starting-offsets", choices=["earliest", "latest"], default="earliest",
                     help="where a new checkpoint starts reading (ignored when resuming)")
    run.add_argument("--max-offsets-per-trigger", type=_positive_int, default=None,
                     help="cap on records per micro-batch (default: no cap)")
    run.add_argument("--trigger", default="processing-time:1s",
                     help="'processing-time:<duration>' to run continuously, or 'available-now' to drain and exit")
    run.add_argument("--watermark", type=_duration, default="10 minutes",
                     help="how late (event time) an event may arrive and still be counted")
    run.add_argument("--shuffle-partitions", type=_positive_int, default=8,
                     help="state partitions (fixed by the checkpoint after the first run)")
    run.add_argument("--fail-on-data-loss", choices=["true", "false"], default="true",
                     help="stop when Kafka deleted records the job had not read yet")
    win = p.add_argument_group("windows")
    win.add_argument("--active-users-window", type=_duration, default="5 minutes")
    win.add_argument("--active-users-slide", type=_duration, default="1 minute")
    win.add_argument("--sessions-window", type=_duration, default="5 minutes")
    win.add_argument("--sessions-slide", type=_duration, default="1 minute")
    win.add_argument("--page-views-window", type=_duration, default="15 minutes")
    win.add_argument("--page-views-slide", type=_duration, default="1 minute")
    val = p.add_argument_group("validation and storage")
    val.add_argument("--event-types", default=",".join(ev.EVENT_TYPES), help="comma-separated accepted event types")
    val.add_argument("--max-event-bytes", type=_positive_int, default=ev.MAX_EVENT_BYTES,
                     help="larger values are stored as invalid (too_large)")
    val.add_argument("--retention", type=_retention, default="7 days",
                     help="keep documents this long after their last update ('none' keeps them forever)")
    val.add_argument("--mongo-writers", type=_positive_int, default=None,
                     help="concurrent Mongo writers per batch (default: one per partition; 1 on FerretDB)")
    val.add_argument("--sink-retry-for", type=_duration, default=_env("CLICKPULSE_SINK_RETRY_FOR", "5 minutes"),
                     help="how long writes retry while MongoDB (or FerretDB's PostgreSQL) is unreachable before the "
                          "job gives up and exits 1 (env CLICKPULSE_SINK_RETRY_FOR)")
    p.add_argument("--log-level", default=_env("CLICKPULSE_LOG_LEVEL", "INFO"),
                   choices=["DEBUG", "INFO", "WARNING", "ERROR"], help="log level (env CLICKPULSE_LOG_LEVEL)")
    return p


def settings_from_args(ns: argparse.Namespace) -> JobSettings:
    return JobSettings(
        bootstrap_servers=ns.bootstrap_servers,
        mongo_uri=ns.mongo_uri,
        checkpoint_dir=ns.checkpoint_dir,
        topic=ns.topic,
        database=ns.database,
        starting_offsets=ns.starting_offsets,
        max_offsets_per_trigger=ns.max_offsets_per_trigger,
        trigger=Trigger.parse(ns.trigger),
        watermark=ns.watermark,
        active_users_window=WindowSpec(ns.active_users_window, ns.active_users_slide),
        sessions_window=WindowSpec(ns.sessions_window, ns.sessions_slide),
        page_views_window=WindowSpec(ns.page_views_window, ns.page_views_slide),
        event_types=tuple(t.strip() for t in ns.event_types.split(",") if t.strip()),
        max_event_bytes=ns.max_event_bytes,
        retention=ns.retention,
        shuffle_partitions=ns.shuffle_partitions,
        fail_on_data_loss=ns.fail_on_data_loss == "true",
        mongo_writers=ns.mongo_writers,
        sink_retry_for=ns.sink_retry_for,
    )


def run_cli(args: list[str] | None = None) -> int:
    parser = main_parser()
    ns = parser.parse_args(args)
    try:
        settings = settings_from_args(ns)
    except ValueError as e:
        parser.error(str(e))
    logging.basicConfig(level=ns.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    faulthandler.register(signal.SIGUSR1)  # `kill -USR1 <pid>` prints every Python thread's stack
    for noisy in ("py4j", "kafka", "pymongo"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # py4j logs a foreachBatch error's whole traceback; the query then fails with it, and the job reports that.
    logging.getLogger("py4j.clientserver").setLevel(logging.CRITICAL)
    return run(settings)


def run(s: JobSettings) -> int:
    """Start both queries and run until they finish (available-now), fail, or the job is stopped."""
    from pymongo.errors import PyMongoError

    from storage.client import connect, is_ferretdb
    from storage.indexes import ensure_indexes, prune_expired
    from storage.retry import Retrier, StoreUnavailable
    from storage.sink import MongoTarget
    from streaming_job.lock import Heartbeat, local_path
    from streaming_job.metrics import ProgressRecorder, ProgressStore
    from streaming_job.pipeline import QUERIES, start_queries
    from streaming_job.session import build_session, ship_packages

    client = connect(s.mongo_uri, "clickpulse-job")
    stop = threading.Event()
    errors: list[str] = []  # logged last, after the shutdown's own noise, so the job's last line says why it failed
    heartbeat: Heartbeat | None = None
    progress: ProgressStore | None = None
    spark = None
    queries = []
    try:
        db = client[s.database]
        # A store that is down at start-up (a restart, a stack still coming up) gets the same patience as the writes.
        prepare = Retrier(f"MongoDB at {mask_uri(s.mongo_uri)}", s.sink_retry_for, log)
        try:
            ttl = prepare.call(lambda: ensure_indexes(db, s.retention))
            ferretdb = prepare.call(lambda: is_ferretdb(client))
        except StoreUnavailable as e:
            log.error("cannot prepare MongoDB: %s", e)
            return 1
        except PyMongoError as e:
            log.error("cannot prepare MongoDB at %s: %s", mask_uri(s.mongo_uri), str(e).split(" (configured")[0])
            return 1
        writers = s.mongo_writers
        target = MongoTarget(s.mongo_uri, s.database, retry_for=s.sink_retry_for)
        if ferretdb:
            # FerretDB v1 holds a backend connection per matched upsert until a command ends; small
            # commands from few writers keep its connection pool from running dry (seen to hang here).
            writers = writers or 1
            target = MongoTarget(s.mongo_uri, s.database, ops_per_command=25, retry_for=s.sink_retry_for)
            log.info("FerretDB detected: %d writer(s) per query, %d upserts per command", writers,
                     target.ops_per_command)
        log.info("MongoDB %s, database %s ready (retention %s)", mask_uri(s.mongo_uri), s.database,
                 "off" if s.retention is None else f"{_human(s.retention)} by {'TTL index' if ttl else 'pruning'}")

        spark = build_session(s)
        spark.sparkContext.setLogLevel("WARN")
        log.info("Spark master %s", spark.sparkContext.master)
        ship_packages(spark)
        progress = ProgressStore(db)
        spark.streams.addListener(ProgressRecorder(progress.put))

        local = local_path(s.checkpoint_dir)
        if local is not None:
            heartbeat = Heartbeat(local, QUERIES).start()
        if s.retention is not None and not ttl:
            threading.Thread(target=_prune_loop, args=(stop, lambda: prune_expired(db, s.retention)),
                             name="clickpulse-retention", daemon=True).start()

        def on_term(signum: int, frame: object) -> None:
            raise KeyboardInterrupt

        signal.signal(signal.SIGTERM, on_term)
        queries = start_queries(spark, s, target, writers)
        log.info("reading %s from %s (%s), checkpoints in %s", s.topic, s.bootstrap_servers, s.trigger.describe(),
                 s.checkpoint_dir)
        if s.trigger.available_now:
            for q in queries:
                q.awaitTermination()
        else:
            spark.streams.awaitAnyTermination()
        failed = [q for q in queries if q.exception() is not None]
        errors += [f"query {q.name} failed: {failure_line(str(q.exception()))}" for q in failed]
        return 1 if failed else 0
    except KeyboardInterrupt:
        log.info("stopping (signal received)")
        return 0
    except Exception as e:  # report, don't dump a Java stack into the user's terminal
        errors.append(f"job failed: {failure_line(str(e)) if str(e) else type(e).__name__}")
        if "data source: kafka" in str(e).lower():
            from streaming_job.session import KAFKA_PACKAGE

            errors.append(f"Spark's Kafka connector is missing: pass --packages {KAFKA_PACKAGE} to spark-submit")
        log.debug("details", exc_info=True)
        return 1
    finally:
        stop.set()
        if errors and spark is not None:
            # The failure was seen and is reported below: stopping the other query after it is only noise.
            spark.sparkContext.setLogLevel("OFF")
        for q in queries:
            try:
                q.stop()
            except Exception as e:
                log.warning("stopping query %s: %s", q.name, e)
        if spark is not None:
            _drain_listener_events(spark)
        if progress is not None:
            progress.close()
        if heartbeat is not None:
            heartbeat.stop()
        client.close()
        if spark is not None:
            spark.stop()
        for line in errors:
            log.error("%s", line)


def failure_line(text: str) -> str:
    """One line for a failure: the sink's own message when MongoDB could not be written, else the text's first line."""
    from storage.sink import unavailable_reason

    reason = unavailable_reason(text)
    if reason is None:
        return text.splitlines()[0] if text else ""
    return f"{reason} (see --sink-retry-for)" if "StoreUnavailable: " in text else reason


def _human(d: timedelta) -> str:
    seconds = int(d.total_seconds())
    for unit, size in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds % size == 0:
            return f"{seconds // size} {unit}"
    return f"{seconds} seconds"


def _prune_loop(stop: threading.Event, prune, every_seconds: float = 600.0) -> None:
    """Retention for servers without TTL indexes: delete expired documents every few minutes."""
    while not stop.wait(every_seconds):
        try:
            removed = prune()
            if any(removed.values()):
                log.info("retention removed %s", removed)
        except Exception as e:
            log.warning("retention pruning failed: %s", e)


def _drain_listener_events(spark, timeout_ms: int = 10000) -> None:
    """Let the last progress events reach the metrics listener before the session goes."""
    try:
        spark.sparkContext._jsc.sc().listenerBus().waitUntilEmpty(timeout_ms)
    except Exception as e:
        log.debug("listener bus did not drain: %s", e)


if __name__ == "__main__":
    sys.exit(run_cli())
