"""Run the clickpulse streaming job: `spark-submit streaming_job/main.py [flags]` or `python -m streaming_job`."""

from __future__ import annotations

import argparse
import faulthandler
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

if __package__ in (None, ""):  # run as a script by spark-submit: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from clickpulse import events as ev
from clickpulse.cli import (
    DURATION_SYNTAX,
    DefaultsHelpFormatter,
    Parser,
    add_logging_arguments,
    add_mongo_uri_arguments,
    duration,
    env,
    mongo_uri,
    positive_int,
    setup_logging,
    short_error,
)
from clickpulse.lock import local_path
from clickpulse.queries import QUERIES
from storage import contract as c
from storage.client import mask_uri
from streaming_job.lock import Heartbeat
from streaming_job.settings import JobSettings, Trigger, WindowSpec

if TYPE_CHECKING:  # the run imports Spark only once it starts (so --help stays quick)
    from pymongo import MongoClient
    from pymongo.database import Database
    from pyspark.sql import SparkSession
    from pyspark.sql.streaming import StreamingQuery

    from storage.sink import MongoTarget
    from streaming_job.metrics import ProgressStore

log = logging.getLogger("clickpulse.job")
PROG = "clickpulse-job"
# A Spark failure's first line names the failed stage, then the cause: keep it whole in the log.
JOB_ERROR_CHARS = 2000
# Writers per query on FerretDB, each sending commands of FERRETDB_OPS_PER_COMMAND: both queries' writers together
# need FerretDB's PostgreSQL pool (`pool_max_conns`) above 2 * 2 * 25 = 100 connections (make stack-up: 150).
FERRETDB_WRITERS = 2
FERRETDB_OPS_PER_COMMAND = 25
# How often the user-sessions journal is folded into its panes (storage/journal.py): often enough that a pane is read
# from its shards and a few dozen journal documents, seldom enough that folding (which rewrites the panes' shards,
# like every batch did before the journal) costs little.
FOLD_EVERY = timedelta(seconds=10)


def _retention(text: str) -> timedelta | None:
    return None if text.strip().lower() in ("none", "off", "0") else duration(text)


def main_parser() -> argparse.ArgumentParser:
    p = Parser(prog=PROG, description="Kafka clickstream -> validation, dedup, sliding windows -> MongoDB. "
                                      f"Durations: {DURATION_SYNTAX}. With a local master, Spark's driver, block "
                                      "manager and UI listen on 127.0.0.1; SPARK_LOCAL_IP sets where the UI listens.",
               formatter_class=DefaultsHelpFormatter)
    io = p.add_argument_group("where")
    io.add_argument("--bootstrap-servers", default=env("CLICKPULSE_BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
                    help="Kafka bootstrap servers (env CLICKPULSE_BOOTSTRAP_SERVERS)")
    io.add_argument("--topic", default=env("CLICKPULSE_TOPIC", ev.DEFAULT_TOPIC), help="topic (env CLICKPULSE_TOPIC)")
    add_mongo_uri_arguments(io)
    io.add_argument("--database", default=env("CLICKPULSE_DATABASE", c.DEFAULT_DATABASE),
                    help="database (env CLICKPULSE_DATABASE)")
    io.add_argument("--checkpoint-dir", default=env("CLICKPULSE_CHECKPOINT_DIR", ".data/checkpoints"),
                    help="base checkpoint dir: local path or file://, hdfs://, s3a:// URI (env CLICKPULSE_CHECKPOINT_DIR)")
    run = p.add_argument_group("how")
    run.add_argument("--starting-offsets", choices=["earliest", "latest"], default="earliest",
                     help="where a new checkpoint starts reading (ignored when resuming)")
    run.add_argument("--max-offsets-per-trigger", type=positive_int, default=None,
                     help="cap on records per micro-batch (default: no cap)")
    run.add_argument("--trigger", default="processing-time:1s",
                     help="'processing-time:<duration>' to run continuously, or 'available-now' to drain and exit")
    run.add_argument("--watermark", type=duration, default="10 minutes",
                     help="how late (event time) an event may arrive and still be counted")
    run.add_argument("--shuffle-partitions", type=positive_int, default=None,
                     help="state partitions, fixed by the checkpoint after the first run (default: spark-submit's "
                          "--conf spark.sql.shuffle.partitions, else one per core of a local master, 8 on a cluster)")
    run.add_argument("--metrics", choices=["none", "prometheus"], default=env("CLICKPULSE_METRICS", "none"),
                     help="'prometheus': serve Spark's and the streaming queries' metrics for Prometheus on the Spark "
                          "UI's port at /metrics/prometheus (env CLICKPULSE_METRICS)")
    run.add_argument("--fail-on-data-loss", choices=["true", "false"], default="true",
                     help="stop when Kafka deleted records the job had not read yet")
    win = p.add_argument_group("windows")
    win.add_argument("--active-users-window", type=duration, default="5 minutes")
    win.add_argument("--active-users-slide", type=duration, default="1 minute")
    win.add_argument("--sessions-window", type=duration, default="5 minutes")
    win.add_argument("--sessions-slide", type=duration, default="1 minute")
    win.add_argument("--page-views-window", type=duration, default="15 minutes")
    win.add_argument("--page-views-slide", type=duration, default="1 minute")
    val = p.add_argument_group("validation and storage")
    val.add_argument("--event-types", default=",".join(ev.EVENT_TYPES), help="comma-separated accepted event types")
    val.add_argument("--max-event-bytes", type=positive_int, default=ev.MAX_EVENT_BYTES,
                     help="larger values are stored as invalid (too_large)")
    val.add_argument("--retention", type=_retention, default="7 days",
                     help="keep documents this long after their last update ('none' keeps them forever)")
    val.add_argument("--mongo-writers", type=positive_int, default=None,
                     help="concurrent Mongo writers per batch (default: one per partition; 2 on FerretDB)")
    val.add_argument("--sink-retry-for", type=duration, default=env("CLICKPULSE_SINK_RETRY_FOR", "5 minutes"),
                     help="how long writes retry while MongoDB (or FerretDB's PostgreSQL) is unreachable before the "
                          "job gives up and exits 1 (env CLICKPULSE_SINK_RETRY_FOR)")
    bots = p.add_argument_group("bots")
    bots.add_argument("--bot-filter", choices=["on", "off"], default="on",
                      help="record users who send more events in one second of event time than a person does "
                           "(collection bot_activity, shown in the report); their events still count")
    bots.add_argument("--bot-max-events-per-second", type=positive_int, default=10,
                      help="more valid events than this from one user in one second make the user a bot for it")
    add_logging_arguments(p)
    return p


def settings_from_args(ns: argparse.Namespace) -> JobSettings:
    return JobSettings(
        bootstrap_servers=ns.bootstrap_servers,
        mongo_uri=mongo_uri(ns),
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
        metrics=None if ns.metrics == "none" else ns.metrics,
        sink_retry_for=ns.sink_retry_for,
        bot_max_events_per_second=ns.bot_max_events_per_second if ns.bot_filter == "on" else None,
    )


def run_cli(args: list[str] | None = None) -> int:
    parser = main_parser()
    ns = parser.parse_args(args)
    try:
        settings = settings_from_args(ns)
    except ValueError as e:
        parser.error(str(e))
    setup_logging(ns.log_level, ns.log_format, quiet=("py4j", "kafka", "pymongo"))
    # py4j logs a foreachBatch error's whole traceback; the query then fails with it, and the job reports that.
    logging.getLogger("py4j.clientserver").setLevel(logging.CRITICAL)
    faulthandler.register(signal.SIGUSR1)  # `kill -USR1 <pid>` prints every Python thread's stack
    return run(settings, json_logs=ns.log_format == "json")


class _CannotStart(Exception):
    """A step found the job cannot run (the message says why, in one line)."""


@dataclass
class _Running:
    """What a run has started so far, so that `_shut_down` stops exactly that, in order."""

    client: MongoClient
    stop: threading.Event = field(default_factory=threading.Event)
    spark: SparkSession | None = None
    heartbeat: Heartbeat | None = None
    progress: ProgressStore | None = None
    folding: threading.Thread | None = None
    fold_rest: Callable[[], None] | None = None
    queries: list[StreamingQuery] = field(default_factory=list)
    # Logged last, after the shutdown's own noise, so that the job's last line says why it failed.
    errors: list[str] = field(default_factory=list)


def run(s: JobSettings, json_logs: bool = False) -> int:
    """The job's story: prepare MongoDB, start Spark and both queries, run until they end, fail or are stopped."""
    from storage.client import connect
    from streaming_job.pipeline import start_queries

    running = _Running(connect(s.mongo_uri, "clickpulse-job"))
    try:
        db = running.client[s.database]
        has_ttl = _prepare_mongo(db, s)
        target, writers = _writers_for_server(running.client, s)
        running.spark = _start_session(s, json_logs)
        _record_spark_ui(db, s, running.spark)
        running.progress = _record_progress(running.spark, db)
        running.heartbeat = _start_heartbeat(s)
        _start_retention(running.stop, db, s, has_ttl)
        running.folding, running.fold_rest = _start_folding(running.stop, db, target.ops_per_command)
        _stop_on_sigterm()
        running.queries = start_queries(running.spark, s, target, writers)
        log.info("reading %s from %s (%s), checkpoints in %s", s.topic, s.bootstrap_servers, s.trigger.describe(),
                 s.checkpoint_dir)
        return _await_queries(running.spark, running.queries, s, running.errors)
    except _CannotStart as e:
        log.error("%s", e)
        return 1
    except KeyboardInterrupt:
        log.info("stopping (signal received)")
        return 0
    except Exception as e:  # report, don't dump a Java stack into the user's terminal
        running.errors += _failure(e)
        return 1
    finally:
        _shut_down(running)


def _retrier(s: JobSettings):
    """A server that is down at start-up (a restart, a stack still coming up) gets the same patience as the writes."""
    from storage.retry import Retrier

    return Retrier(f"MongoDB at {mask_uri(s.mongo_uri)}", s.sink_retry_for, log)


def _prepare_mongo(db: Database, s: JobSettings) -> bool:
    """Create the indexes (and the TTL index where the server has them) and record the windows the job computes;
    True when expiry is the server's job."""
    from pymongo.errors import PyMongoError

    from storage.indexes import ensure_indexes
    from storage.layout import write_layout
    from storage.retry import StoreUnavailable

    prepare = _retrier(s)
    try:
        has_ttl = prepare.call(lambda: ensure_indexes(db, s.retention))
        prepare.call(lambda: write_layout(db, s.layout()))  # readers learn each aggregate's windows from it
    except StoreUnavailable as e:
        raise _CannotStart(f"cannot prepare MongoDB: {e}") from None
    except PyMongoError as e:
        raise _CannotStart(f"cannot prepare MongoDB at {mask_uri(s.mongo_uri)}: {short_error(e)}") from None
    log.info("MongoDB %s, database %s ready (retention %s)", mask_uri(s.mongo_uri), s.database,
             "off" if s.retention is None else f"{_human(s.retention)} by {'TTL index' if has_ttl else 'pruning'}")
    return has_ttl


def _record_spark_ui(db: Database, s: JobSettings, spark: SparkSession) -> None:
    """Add where the Spark UI answers (known once the session runs) to the layout document, for the report's link."""
    from storage.layout import write_layout

    _retrier(s).call(lambda: write_layout(db, s.layout(), spark.sparkContext.uiWebUrl))


def _writers_for_server(client: MongoClient, s: JobSettings) -> tuple[MongoTarget, int | None]:
    """Where and how the queries write: FerretDB gets few writers and small commands."""
    from storage.client import is_ferretdb
    from storage.sink import MongoTarget

    if not _retrier(s).call(lambda: is_ferretdb(client)):
        return MongoTarget(s.mongo_uri, s.database, retry_for=s.sink_retry_for), s.mongo_writers
    # FerretDB v1 holds a backend connection per matched upsert until a command ends; small
    # commands from few writers keep its connection pool from running dry (seen to hang here with
    # 4 writers of 25 on a pool of 50). Two writers wait on it in parallel (1.25-2.2x the writes/s, idle).
    writers = s.mongo_writers or FERRETDB_WRITERS
    target = MongoTarget(s.mongo_uri, s.database, ops_per_command=FERRETDB_OPS_PER_COMMAND, retry_for=s.sink_retry_for)
    log.info("FerretDB detected: %d writer(s) per query, %d upserts per command", writers, target.ops_per_command)
    return target, writers


def _start_session(s: JobSettings, json_logs: bool) -> SparkSession:
    """The Spark session, with our packages shipped to the executors; logs where its UI (and metrics) answer."""
    from streaming_job.session import PROMETHEUS_PATH, build_session, ship_packages

    spark = build_session(s, json_logs=json_logs)
    spark.sparkContext.setLogLevel("WARN")
    ui = spark.sparkContext.uiWebUrl
    log.info("Spark %s, master %s, UI %s", spark.version, spark.sparkContext.master, ui or "off")
    if s.metrics == "prometheus":
        log.info("Prometheus metrics at %s", f"{ui}{PROMETHEUS_PATH}" if ui else "nowhere: the Spark UI is off")
    ship_packages(spark)
    return spark


def _record_progress(spark: SparkSession, db: Database) -> ProgressStore:
    """Every batch's progress goes to pipeline_metrics and pipeline_minutes (a listener hands it to a writer thread,
    so Spark's listener bus never waits for MongoDB)."""
    from streaming_job.metrics import ProgressRecorder, ProgressStore

    progress = ProgressStore(db)
    spark.streams.addListener(ProgressRecorder(progress.put))
    return progress


def _start_heartbeat(s: JobSettings) -> Heartbeat | None:
    """The lock file that tells the checkpoint CLI the job runs (local checkpoint dirs only)."""
    local = local_path(s.checkpoint_dir)
    return None if local is None else Heartbeat(local, QUERIES).start()


def _start_retention(stop: threading.Event, db: Database, s: JobSettings, has_ttl: bool) -> None:
    """Without TTL indexes (FerretDB), a thread deletes expired documents until `stop` is set."""
    from storage.indexes import prune_expired

    if s.retention is not None and not has_ttl:
        threading.Thread(target=_prune_loop, args=(stop, lambda: prune_expired(db, s.retention)),
                         name="clickpulse-retention", daemon=True).start()


def _start_folding(stop: threading.Event, db: Database, ops_per_command: int
                   ) -> tuple[threading.Thread, Callable[[], None]]:
    """Fold the user-sessions journal every FOLD_EVERY until `stop` is set, starting with what a previous run left;
    return the thread, and what folds the rest once the queries stopped."""
    from storage.journal import fold, fold_all

    def loop() -> None:
        while True:
            try:
                started = time.perf_counter()
                done = fold(db, ops_per_command)
                if done.documents:
                    log.debug("folded %d journal documents into %d panes (%d values) in %d ms", done.documents,
                              done.panes, done.values, (time.perf_counter() - started) * 1000)
            except Exception as e:  # an outage: the journal waits, and readers still read it
                log.warning("folding the user-sessions journal failed, tried again in %s: %s", _human(FOLD_EVERY),
                            short_error(e))
            if stop.wait(FOLD_EVERY.total_seconds()):
                return

    def rest() -> None:
        try:
            done = fold_all(db, ops_per_command)
            log.info("folded the user-sessions journal: %d documents into their panes", done.documents)
        except Exception as e:
            log.warning("could not fold the user-sessions journal (the next run does): %s", short_error(e))

    thread = threading.Thread(target=loop, name="clickpulse-journal", daemon=True)
    thread.start()
    return thread, rest


# What py4j logs, with a traceback and at ERROR, when a stop signal interrupts the Java call the job waits in.
PY4J_INTERRUPTED = "KeyboardInterrupt while sending command."


class StopNotError(logging.Filter):
    """Drops py4j's traceback for the interrupt that a stop signal raises (the stop is logged as what it is)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != PY4J_INTERRUPTED


def _stop_on_sigterm() -> None:
    """SIGTERM stops the job like Ctrl-C: the queries stop gracefully and the run exits 0."""

    def on_term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    logging.getLogger().addFilter(StopNotError())  # py4j logs on the root logger itself
    signal.signal(signal.SIGTERM, on_term)


def _await_queries(spark: SparkSession, queries: list[StreamingQuery], s: JobSettings, errors: list[str]) -> int:
    """Wait for both queries (available-now) or for either to end (continuous); 1 when one failed (said in `errors`)."""
    if s.trigger.available_now:
        for q in queries:
            q.awaitTermination()
    else:
        spark.streams.awaitAnyTermination()
    failed = [q for q in queries if q.exception() is not None]
    errors += [f"query {q.name} failed: {failure_line(str(q.exception()))}" for q in failed]
    return 1 if failed else 0


def _failure(e: Exception) -> list[str]:
    """What to say of an exception that ended the run."""
    lines = [f"job failed: {failure_line(str(e)) if str(e) else type(e).__name__}"]
    if "data source: kafka" in str(e).lower():
        from streaming_job.session import KAFKA_PACKAGE

        lines.append(f"Spark's Kafka connector is missing: pass --packages {KAFKA_PACKAGE} to spark-submit")
    log.debug("details", exc_info=True)
    return lines


def failure_line(text: str) -> str:
    """One line for a failure: the sink's own message when MongoDB could not be written, else the text's first line."""
    from storage.sink import unavailable_reason

    reason = unavailable_reason(text)
    if reason is None:
        return short_error(Exception(text), JOB_ERROR_CHARS) if text else ""
    return f"{reason} (see --sink-retry-for)" if "StoreUnavailable: " in text else reason


def _shut_down(running: _Running) -> None:
    """Stop what the run started: retention, queries, (the last progress events), heartbeat, client, Spark; then say
    why the run failed, if it did."""
    running.stop.set()
    if running.errors and running.spark is not None:
        # The failure was seen and is reported below: stopping the other query after it is only noise.
        running.spark.sparkContext.setLogLevel("OFF")
    for q in running.queries:
        try:
            q.stop()
        except Exception as e:
            log.warning("stopping query %s: %s", q.name, e)
    if running.spark is not None:
        _drain_listener_events(running.spark)
    if running.progress is not None:
        running.progress.close()
    if running.folding is not None:
        running.folding.join(timeout=60)
    if running.fold_rest is not None:
        running.fold_rest()  # what the last batches journaled
    if running.heartbeat is not None:
        running.heartbeat.stop()
    running.client.close()
    if running.spark is not None:
        running.spark.stop()
    for line in running.errors:
        log.error("%s", line)


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
