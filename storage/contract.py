"""The storage contract: every collection, field and document id the job writes and the report reads.

Declared once here and imported everywhere else, so a rename is a one-line change.
"""

from __future__ import annotations

import zlib
from datetime import UTC, datetime, timedelta
from urllib.parse import unquote

from clickpulse.queries import AGGREGATES_QUERY as AGGREGATES_QUERY
from clickpulse.queries import INVALID_EVENTS_QUERY as INVALID_EVENTS_QUERY
from clickpulse.queries import QUERIES as QUERIES

DEFAULT_DATABASE = "clickpulse"

# Collections
ACTIVE_USERS = "active_users"
PAGE_VIEWS = "page_views"
USER_SESSIONS = "user_sessions"
INVALID_EVENTS = "invalid_events"
PIPELINE_METRICS = "pipeline_metrics"
PIPELINE_MINUTES = "pipeline_minutes"
PIPELINE_LAYOUT = "pipeline_layout"
ALERTS = "alerts"  # written by the alerts program (alerts/), see below
DEAD_LETTERS = "dead_letters"  # what the sink could not write, see below
BOT_ACTIVITY = "bot_activity"  # users sending more events a second than a person does, see below
USER_SESSIONS_JOURNAL = "user_sessions_journal"  # user_sessions values not folded into their panes yet, see below

AGGREGATE_COLLECTIONS = (ACTIVE_USERS, PAGE_VIEWS, USER_SESSIONS)
ALL_COLLECTIONS = (*AGGREGATE_COLLECTIONS, USER_SESSIONS_JOURNAL, INVALID_EVENTS, PIPELINE_METRICS, PIPELINE_MINUTES,
                   PIPELINE_LAYOUT, ALERTS, DEAD_LETTERS, BOT_ACTIVITY)

ID = "_id"
UPDATED_AT = "updated_at"

# The window aggregates are stored as buckets (MongoDB's bucket pattern): a few documents hold many values, and a
# batch `$set`s only the values that changed, so a batch writes as many documents as the windows it touched, not one
# per (window, key). Every value is complete (never an increment), so a replayed batch rewrites the same values.
#
# active_users: one document per UTC day of window start, the day's windows inside:
#   {_id: "<YYYY-MM-DD>", day, window_seconds, active_users: {"HHMMSS": distinct users of the window starting then},
#    updated_at}
DAY = "day"  # "2026-11-23"
WINDOW_SECONDS = "window_seconds"
ACTIVE_USERS_COUNT = "active_users"
#
# page_views and user_sessions are stored per pane: a slide-long slice of event time (1 minute by default). A window
# is the union of the panes it covers (a 15-minute window sliding by 1 minute = 15 panes), so an event updates one
# pane instead of every window it falls in; the read API (storage/reads.py) sums a window's panes. A pane's keys are
# spread over a fixed number of shard documents by a stable hash, so no document grows past a few thousand keys:
#   page_views:    {_id: "<pane start>|<shard>", pane_start, pane_end, shard, views: {"<page_url>": views}, updated_at}
#   user_sessions: {_id: "<pane start>|<shard>", pane_start, pane_end, shard,
#                   events: {"<user_id>|<session_id>": events of that user in that session in the pane}, updated_at}
# Keys are escaped (`escape_key`): a field name may not contain "." or start with "$", and "|" separates user and
# session. A window's sessions per user are the distinct session ids of its panes, its events their sum.
#
# user_sessions is written through a journal: a batch inserts what it changed as new documents, and the job folds them
# into the pane shards every few seconds. Every batch changes a value in nearly every shard of the current pane (at
# 2,000 events/s from 10,000 users, a batch sees thousands of users), and FerretDB rewrites a document whole on every
# update: `$set`ting into the shards rewrote the whole pane each batch (about 600 ms of each writer's time per batch,
# measured at that rate). An insert costs only what it holds.
#   user_sessions_journal: {_id: "<pane start>|<batch>|<writer's token>", pane_start, pane_end, batch_id,
#                           events: {"<user_id>|<session_id>": events}, updated_at}
# A value is a count that only grows as the pane's events arrive (deduplicated, never undone), so a key's value is the
# greatest found in its pane: its shard and the pane's journal documents. Readers take that greatest value; folding
# `$max`es the journal into the shards and then deletes the journal documents it read. Any order of batches, replays,
# folds and crashes between them leaves the same greatest values.
PANE_START = "pane_start"
PANE_END = "pane_end"
SHARD = "shard"
VIEWS = "views"
EVENTS = "events"
SHARDS = {PAGE_VIEWS: 16, USER_SESSIONS: 64}  # fixed: a key's shard must never change between runs
#
# pipeline_layout: what the job computes, so readers know each aggregate's window (written at job start):
#   {_id: "windows", active_users: {window_seconds, slide_seconds}, page_views: {...}, user_sessions: {...},
#    spark_ui (where the job's Spark UI answers, e.g. "http://127.0.0.1:4040", or null when it is off), updated_at}
# spark_ui is only ever scheme, host, port and path: never credentials, a query or a fragment.
LAYOUT_ID = "windows"
SLIDE_SECONDS = "slide_seconds"
SPARK_UI = "spark_ui"

# Fields of windows as the read API returns them (and the report shows them)
WINDOW_START = "window_start"
WINDOW_END = "window_end"
PAGE_URL = "page_url"
USER_ID = "user_id"
SESSIONS = "sessions"

# Time buckets: UTC text that makes a time range a few equality lookups (a server that pushes down only
# equality filters, like FerretDB v1, then never scans a whole collection for the report).
HOUR = "hour"  # "2026-11-23T14"

# invalid_events: {_id, reason, detail, raw, raw_truncated, topic, partition, offset, kafka_timestamp, stored_at,
#                  day, hour} (the buckets of kafka_timestamp)
REASON = "reason"
DETAIL = "detail"
RAW = "raw"
RAW_TRUNCATED = "raw_truncated"
TOPIC = "topic"
PARTITION = "partition"
OFFSET = "offset"
KAFKA_TIMESTAMP = "kafka_timestamp"
STORED_AT = "stored_at"

# Every `reason` an invalid event can carry, in the order validation checks them.
INVALID_REASONS = (
    "too_large",
    "malformed_json",
    "not_an_object",
    "missing_field",
    "wrong_type",
    "unstorable_value",
    "unknown_event_type",
    "bad_timestamp",
    "future_timestamp",
)
RAW_MAX_CHARS = 4096

# The job's streaming queries (AGGREGATES_QUERY, INVALID_EVENTS_QUERY, QUERIES): named in clickpulse/queries.py,
# imported above so that the contract still lists everything the report reads.

# pipeline_metrics: one document per micro-batch per streaming query
QUERY = "query"
RUN_ID = "run_id"
BATCH_ID = "batch_id"
TIMESTAMP = "timestamp"
INPUT_ROWS = "input_rows"
INPUT_ROWS_PER_SECOND = "input_rows_per_second"
PROCESSED_ROWS_PER_SECOND = "processed_rows_per_second"
BATCH_DURATION_MS = "batch_duration_ms"
PHASES_MS = "phases_ms"  # Spark's durationMs of the batch: {phase: milliseconds}
WATERMARK = "watermark"
STATE_ROWS = "state_rows"
# Per stateful operator, in plan order: [{operator, state_rows, updated_rows, removed_rows, update_ms, removal_ms,
# commit_ms}] (Spark's stateOperators progress: where a batch's state time goes, e.g. the eviction scan).
OPERATORS = "operators"
OPERATOR = "operator"
UPDATED_ROWS = "updated_rows"
REMOVED_ROWS = "removed_rows"
UPDATE_MS = "update_ms"
REMOVAL_MS = "removal_ms"
COMMIT_MS = "commit_ms"
DROPPED_BY_WATERMARK = "dropped_by_watermark"
DUPLICATES_DROPPED = "duplicates_dropped"
VALID_ROWS = "valid_rows"
INVALID_ROWS = "invalid_rows"
# Per Kafka partition, when the job reads partitions as streams of their own: [{partition, valid_rows,
# counted_rows}], counted_rows being those deduplication kept (the rest were duplicates or late).
PARTITIONS = "partitions"
COUNTED_ROWS = "counted_rows"


def partition_metric(name: str, partition: int) -> str:
    """Name of a per-partition observed metric, e.g. valid_rows_p3 (parsed back by the progress listener)."""
    return f"{name}_p{partition}"

# pipeline_metrics, Kafka lag (from the batch's Kafka source progress; absent when the source reported none):
# offsets_behind_latest = records in Kafka past the batch's end offsets when the batch ran, summed over partitions
# (Spark's latestOffset minus endOffset; Spark itself reports only the min, avg and max per partition);
# avg_/max_offsets_behind_latest = Spark's avgOffsetsBehindLatest / maxOffsetsBehindLatest;
# end_offsets = [{topic, partition, offset}]: the next offset the query reads in each partition once this batch is
# committed, so lag can be measured against Kafka's latest offsets even after the job died.
OFFSETS_BEHIND_LATEST = "offsets_behind_latest"
AVG_OFFSETS_BEHIND_LATEST = "avg_offsets_behind_latest"
MAX_OFFSETS_BEHIND_LATEST = "max_offsets_behind_latest"
END_OFFSETS = "end_offsets"


def iso_minute(ts: datetime) -> str:
    """Render a UTC instant as the fixed-width text used inside document ids."""
    if ts.tzinfo is not None:
        ts = ts.astimezone(UTC).replace(tzinfo=None)
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ")


def window_id(window_start: datetime, key: str | None = None) -> str:
    """Document id of one window aggregate: the window start, plus the key where there is one."""
    return iso_minute(window_start) if key is None else f"{iso_minute(window_start)}|{key}"


def invalid_event_id(topic: str, partition: int, offset: int) -> str:
    """Document id of one invalid event: its Kafka coordinates, so a replay rewrites the same document."""
    return f"{topic}-{partition}-{offset}"


def metrics_id(query: str, run_id: str, batch_id: int) -> str:
    """Document id of one batch's progress: a replayed batch (same run) overwrites its own document."""
    return f"{query}|{run_id}|{batch_id}"

# pipeline_minutes: one streaming query's batches of one UTC minute, summed per run, so a chart over hours reads a
# document per minute whatever the trigger: {_id: "<query>|<YYYY-MM-DDTHH:MM>", query, minute (its start), day,
# hour, runs: {"<run_id>": {batches, input_rows, input_seconds, batch_duration_ms (sum), max_batch_duration_ms,
# dropped_by_watermark, duplicates_dropped, valid_rows, invalid_rows, and of the run's last batch in the minute:
# batch_id, timestamp, watermark, state_rows}}, updated_at}. A run's sums are rewritten whole after each of its
# batches (idempotent); a restart is a new run, so nothing is counted twice or lost.
MINUTE = "minute"
RUNS = "runs"
BATCHES = "batches"
INPUT_SECONDS = "input_seconds"
MAX_BATCH_DURATION_MS = "max_batch_duration_ms"


def _utc(ts: datetime) -> datetime:
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def day_bucket(ts: datetime) -> str:
    """The DAY bucket of an instant (naive instants are UTC, as pymongo returns them)."""
    return _utc(ts).strftime("%Y-%m-%d")


def hour_bucket(ts: datetime) -> str:
    """The HOUR bucket of an instant."""
    return _utc(ts).strftime("%Y-%m-%dT%H")


def time_buckets(ts: datetime) -> dict[str, str]:
    """Both bucket fields of a document stamped with `ts`."""
    return {DAY: day_bucket(ts), HOUR: hour_bucket(ts)}


def buckets_between(field: str, after: datetime, until: datetime) -> list[str]:
    """The DAY or HOUR buckets that instants in `(after, until]` fall in, newest first."""
    step, name = (timedelta(days=1), day_bucket) if field == DAY else (timedelta(hours=1), hour_bucket)
    out, at = [], _utc(until)
    while True:
        out.append(name(at))
        if at - step < _utc(after):
            break
        at -= step
    # `after` itself is excluded, but its bucket still holds the instants just after it
    if name(after) not in out:
        out.append(name(after))
    return out


def minute_start(ts: datetime) -> datetime:
    """The start of the UTC minute holding `ts` (aware)."""
    return _utc(ts).replace(second=0, microsecond=0)


def minute_id(query: str, ts: datetime) -> str:
    """Document id of one query's minute in pipeline_minutes."""
    return f"{query}|{minute_start(ts):%Y-%m-%dT%H:%M}"


def window_day_key(window_start: datetime) -> tuple[str, str]:
    """(document id, key inside it) of an active-users window: its start's UTC day, and its time of day "HHMMSS"."""
    start = _utc(window_start)
    return start.strftime("%Y-%m-%d"), start.strftime("%H%M%S")


def window_start_of(day: str, key: str) -> datetime:
    """Inverse of `window_day_key`: the (aware UTC) start of the window stored under `key` in `day`'s document."""
    return datetime.strptime(f"{day}{key}", "%Y-%m-%d%H%M%S").replace(tzinfo=UTC)


def pane_id(pane_start: datetime, shard: int) -> str:
    """Document id of one shard of one pane."""
    return f"{iso_minute(pane_start)}|{shard:02d}"


def journal_id(pane_start: datetime, batch_id: int, token: str) -> str:
    """Document id of one writer's journal document of one pane in one batch (the token tells writers apart)."""
    return f"{iso_minute(pane_start)}|{batch_id}|{token}"


def shard_of(key: str, collection: str) -> int:
    """The shard a key's values live in: a stable hash (CRC-32 of its UTF-8), the same in every process and run."""
    return zlib.crc32(key.encode("utf-8", "surrogatepass")) % SHARDS[collection]


# Characters a field name cannot hold as they are: "." (a path separator), "$" (operators), "|" (our separator),
# "%" (the escape itself) and control characters (PostgreSQL's JSONB, under FerretDB, refuses U+0000).
_ESCAPED = frozenset("%.$|") | frozenset(chr(i) for i in range(0x20)) | {"\x7f"}


def escape_key(text: str) -> str:
    """A field name that stands for `text`: the characters above as %XX (uppercase hex), everything else as it is."""
    if not any(ch in _ESCAPED for ch in text):
        return text
    return "".join(f"%{ord(ch):02X}" if ch in _ESCAPED else ch for ch in text)


def unescape_key(name: str) -> str:
    """Inverse of `escape_key`."""
    return unquote(name) if "%" in name else name


def session_key(user_id: str, session_id: str) -> str:
    """The user_sessions field name of one (user, session) pair."""
    return f"{escape_key(user_id)}|{escape_key(session_id)}"


def split_session_key(name: str) -> tuple[str, str]:
    """Inverse of `session_key`: (user_id, session_id)."""
    user, session = name.split("|", 1)
    return unescape_key(user), unescape_key(session)


# alerts: one document per alert episode, written by the alerts program (alerts/): one rule's breach, from pending
# to firing and resolved, or cancelled when the value recovered within the rule's "for" duration:
# {_id: "<rule>|<started_at>", rule, state, started_at, fired_at, resolved_at, last_notified_at, clear_since, value
#  (the newest measured), threshold, summary (the newest measurement in words), checks (rounds that measured it),
#  last_checked_at, transitions: [{state, at, value}], deliveries: [{channel, kind, at, ok, attempts, error}],
#  day, hour (buckets of started_at), updated_at}. The open ones (pending, firing) are the program's state, so a
#  restart or a `--once` run from cron carries on where the previous round stopped.
RULE = "rule"
STATE = "state"
STARTED_AT = "started_at"
FIRED_AT = "fired_at"
RESOLVED_AT = "resolved_at"
LAST_NOTIFIED_AT = "last_notified_at"
CLEAR_SINCE = "clear_since"
VALUE = "value"
THRESHOLD = "threshold"
SUMMARY = "summary"
CHECKS = "checks"
LAST_CHECKED_AT = "last_checked_at"
TRANSITIONS = "transitions"
DELIVERIES = "deliveries"
AT = "at"
CHANNEL = "channel"
KIND = "kind"
DELIVERED = "ok"
ATTEMPTS = "attempts"
ERROR = "error"
ALERT_PENDING = "pending"
ALERT_FIRING = "firing"
ALERT_RESOLVED = "resolved"
ALERT_CANCELLED = "cancelled"
OPEN_ALERT_STATES = (ALERT_PENDING, ALERT_FIRING)


def alert_id(rule: str, started_at: datetime) -> str:
    """Document id of one alert episode: its rule and the instant it started, to the millisecond (as BSON keeps it)."""
    at = _utc(started_at)
    return f"{rule}|{at:%Y-%m-%dT%H:%M:%S}.{at.microsecond // 1000:03d}Z"


# dead_letters: a document, or an entry of a `$set` merge, that the sink could not write for a reason of its own (the
# server refused it, or it could not be encoded), set aside so that the rest of its batch is written:
# {_id: "<collection>|<document id>[|<field>]", collection (where it was going), document_id, field (the merge entry's
# path; null for a whole document or merge), operation ("replace" or "merge"), error (type and message), error_code
# (the server's, or null), excerpt (the document or entry as ASCII-escaped JSON, at most DEAD_LETTER_EXCERPT_CHARS),
# excerpt_truncated, failed_at, day, hour} (the buckets of failed_at). Every text is ASCII-escaped and bounded, so the
# dead letter itself is always writable; the `_id` is deterministic, so a replayed batch rewrites the same dead letter.
TARGET_COLLECTION = "collection"
DOCUMENT_ID = "document_id"
FIELD = "field"
OPERATION = "operation"
REPLACE = "replace"
MERGE = "merge"
ERROR_CODE = "error_code"
EXCERPT = "excerpt"
EXCERPT_TRUNCATED = "excerpt_truncated"
FAILED_AT = "failed_at"
DEAD_LETTER_EXCERPT_CHARS = 4096
DEAD_LETTER_ID_CHARS = 512


def dead_letter_id(collection: str, document_id: str, field: str | None = None) -> str:
    """Document id of one dead letter (from already escaped parts); over DEAD_LETTER_ID_CHARS, cut and hashed."""
    import hashlib

    full = f"{collection}|{document_id}" if field is None else f"{collection}|{document_id}|{field}"
    if len(full) <= DEAD_LETTER_ID_CHARS:
        return full
    return f"{full[: DEAD_LETTER_ID_CHARS - 17]}~{hashlib.sha256(full.encode()).hexdigest()[:16]}"


# bot_activity: one document per user and second of event time in which the user sent more valid events (after
# deduplication) than the job's --bot-max-events-per-second: {_id: "<second>|<escaped user_id>", user_id, second (its
# start), events, first and last ({partition, offset}: the Kafka coordinates of the user's first and last event of
# that second), day, hour (buckets of `second`), updated_at}. Complete values, so a replay rewrites the same document.
SECOND = "second"
FIRST = "first"
LAST = "last"


def bot_activity_id(second: datetime, user_id: str) -> str:
    """Document id of one user's second of bot activity."""
    return f"{iso_minute(second)}|{escape_key(user_id)}"
