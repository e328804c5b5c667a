"""The storage contract: every collection, field and document id the job writes and the report reads.

Declared once here and imported everywhere else, so a rename is a one-line change.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

DEFAULT_DATABASE = "clickpulse"

# Collections
ACTIVE_USERS = "active_users"
PAGE_VIEWS = "page_views"
USER_SESSIONS = "user_sessions"
INVALID_EVENTS = "invalid_events"
PIPELINE_METRICS = "pipeline_metrics"
WINDOW_CATALOG = "window_catalog"
PIPELINE_MINUTES = "pipeline_minutes"

AGGREGATE_COLLECTIONS = (ACTIVE_USERS, PAGE_VIEWS, USER_SESSIONS)
ALL_COLLECTIONS = (*AGGREGATE_COLLECTIONS, INVALID_EVENTS, PIPELINE_METRICS, PIPELINE_MINUTES, WINDOW_CATALOG)

# Fields shared by the window aggregates
ID = "_id"
WINDOW_START = "window_start"
WINDOW_END = "window_end"
UPDATED_AT = "updated_at"

# active_users: {_id, window_start, window_end, active_users, updated_at}
ACTIVE_USERS_COUNT = "active_users"
# page_views: {_id, window_start, window_end, page_url, views, updated_at}
PAGE_URL = "page_url"
VIEWS = "views"
# user_sessions: {_id, window_start, window_end, user_id, sessions, events, updated_at}
USER_ID = "user_id"
SESSIONS = "sessions"
EVENTS = "events"

# Time buckets: UTC text that makes a time range a few equality lookups (a server that pushes down only
# equality filters, like FerretDB v1, then never scans a whole collection for the report).
DAY = "day"  # "2026-11-23"
HOUR = "hour"  # "2026-11-23T14"

# window_catalog: which windows exist, one document per aggregate collection and UTC day of window start:
# {_id: "<collection>|<day>", collection, day, window_seconds, windows: {"HHMMSS": value}, updated_at}.
# `value` is the window's distinct users for active_users (so the catalog is also the active-users series) and
# 1 for page_views and user_sessions. The job records a window after writing its documents.
COLLECTION = "collection"
WINDOW_SECONDS = "window_seconds"
WINDOWS = "windows"

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

# The job's streaming queries, as named in pipeline_metrics and under the checkpoint dir.
AGGREGATES_QUERY = "aggregates"
INVALID_EVENTS_QUERY = "invalid_events"
QUERIES = (AGGREGATES_QUERY, INVALID_EVENTS_QUERY)

# pipeline_metrics: one document per micro-batch per streaming query (plus day and hour of its timestamp)
QUERY = "query"
RUN_ID = "run_id"
BATCH_ID = "batch_id"
TIMESTAMP = "timestamp"
INPUT_ROWS = "input_rows"
INPUT_ROWS_PER_SECOND = "input_rows_per_second"
PROCESSED_ROWS_PER_SECOND = "processed_rows_per_second"
BATCH_DURATION_MS = "batch_duration_ms"
WATERMARK = "watermark"
STATE_ROWS = "state_rows"
DROPPED_BY_WATERMARK = "dropped_by_watermark"
DUPLICATES_DROPPED = "duplicates_dropped"
VALID_ROWS = "valid_rows"
INVALID_ROWS = "invalid_rows"


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


def catalog_id(collection: str, day: str) -> str:
    """Document id of one aggregate collection's catalog for one UTC day."""
    return f"{collection}|{day}"


def catalog_key(window_start: datetime) -> str:
    """Key of a window inside its day's catalog document: the start's UTC time of day."""
    return _utc(window_start).strftime("%H%M%S")


def catalog_start(day: str, key: str) -> datetime:
    """Inverse of (`day_bucket`, `catalog_key`): the window start a catalog entry stands for."""
    return datetime.strptime(f"{day}{key}", "%Y-%m-%d%H%M%S").replace(tzinfo=UTC)


def catalog_entry(collection: str, window_start: datetime, window_end: datetime, value: int) -> tuple[str, dict[str, object]]:
    """(_id, fields to `$set`) that record one window in its day's catalog document (idempotent, commutative)."""
    day = day_bucket(window_start)
    return catalog_id(collection, day), {
        COLLECTION: collection, DAY: day, WINDOW_SECONDS: int((window_end - window_start).total_seconds()),
        f"{WINDOWS}.{catalog_key(window_start)}": value,
    }
