"""Parsing and validating raw Kafka records into events, each invalid one with exactly one reason.

All checks are Spark SQL expressions (no Python UDFs). Spark 4 runs in ANSI mode, so every
conversion here is a `try_*` form that yields NULL instead of failing the batch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from storage import contract as c
from streaming_job import events as ev

# ISO-8601 date-time: a date, 'T' (or a space), hours and minutes, optional seconds and fraction,
# optional offset. Reduced forms such as '2026-11-23' are not event timestamps.
ISO_TIMESTAMP = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})?$"

# The columns `decode_kafka` leaves for validation.
RAW = "raw"
RAW_BYTES = "raw_bytes"
REASON = "reason"
DETAIL = "detail"
EVENT_TIME = "event_time"
DEDUP_KEY = "dedup_key"
_DOC = "_doc"


def decode_kafka(df: DataFrame) -> DataFrame:
    """Keep the Kafka coordinates and the value, as text (`raw`) and its size in bytes."""
    return df.select(
        F.col("topic").alias(c.TOPIC),
        F.col("partition").alias(c.PARTITION),
        F.col("offset").alias(c.OFFSET),
        F.col("timestamp").alias(c.KAFKA_TIMESTAMP),
        F.col("value").cast("string").alias(RAW),
        F.coalesce(F.octet_length("value"), F.lit(0)).alias(RAW_BYTES),
    )


def _json_type(doc: Column, name: str) -> Column:
    """SQL type name of a top-level JSON field ('STRING', 'BIGINT', 'VOID' for null), NULL when absent."""
    return F.schema_of_variant(F.try_variant_get(doc, f"$.{name}", "variant"))


def _text(doc: Column, name: str) -> Column:
    return F.try_variant_get(doc, f"$.{name}", "string")


def _present(doc: Column, name: str) -> Column:
    """The field exists, is not JSON null and is not an empty string (empty required values count as missing)."""
    t = _json_type(doc, name)
    return t.isNotNull() & (t != "VOID") & ~((t == "STRING") & (F.length(_text(doc, name)) == 0))


def _listed(names: Sequence[str], conditions: Sequence[Column]) -> Column:
    """Comma-separated names whose condition holds ('' when none)."""
    return F.concat_ws(", ", *[F.when(cond, F.lit(n)) for n, cond in zip(names, conditions, strict=True)])


def validate(event_types: Sequence[str], max_event_bytes: int, max_future: timedelta) -> Callable[[DataFrame], DataFrame]:
    """Add `reason` (NULL for a valid event), `detail`, and the parsed event columns.

    The clock for `future_timestamp` is the Kafka record's timestamp (when the event reached Kafka),
    not the wall clock at processing time: this keeps validation identical across replays, restarts
    and both of the job's queries.
    """
    types = list(event_types)
    future_us = max_future // timedelta(microseconds=1)

    def step(df: DataFrame) -> DataFrame:
        doc = F.col(_DOC)
        required = list(ev.REQUIRED_FIELDS)
        needs_page = _text(doc, ev.EVENT_TYPE) == ev.PAGE_VIEW
        missing = [~_present(doc, f) for f in required] + [needs_page & ~_present(doc, ev.PAGE_URL)]
        missing_names = [*required, ev.PAGE_URL]
        typed = [*required, ev.PAGE_URL, ev.EVENT_ID]
        wrong = [
            _json_type(doc, f).isNotNull() & (_json_type(doc, f) != "VOID") & (_json_type(doc, f) != "STRING")
            for f in typed
        ]
        ts_text = _text(doc, ev.TIMESTAMP)
        ts = F.when(ts_text.rlike(ISO_TIMESTAMP), F.expr(f"try_cast(`{_DOC}`:{ev.TIMESTAMP}::string AS TIMESTAMP)"))
        is_object = F.startswith(F.schema_of_variant(doc), F.lit("OBJECT"))
        event_type = _text(doc, ev.EVENT_TYPE)
        too_late_us = F.unix_micros(F.col(c.KAFKA_TIMESTAMP)) + F.lit(future_us)

        checks: list[tuple[str, Column, Column]] = [
            ("too_large", F.col(RAW_BYTES) > max_event_bytes,
             F.format_string("value is %d bytes, limit %d", F.col(RAW_BYTES), F.lit(max_event_bytes))),
            ("malformed_json", F.col(RAW).isNull() | ~F.is_valid_utf8(F.col(RAW)) | doc.isNull(),
             F.when(F.col(RAW).isNull(), F.lit("empty message"))
             .when(~F.is_valid_utf8(F.col(RAW)), F.lit("value is not valid UTF-8"))
             .otherwise(F.lit("value is not valid JSON"))),
            ("not_an_object", ~is_object,
             F.concat(F.lit("JSON value is "), F.lower(F.regexp_extract(F.schema_of_variant(doc), r"^([A-Z]+)", 1)),
                      F.lit(", expected an object"))),
            ("missing_field", F.length(_listed(missing_names, missing)) > 0,
             F.concat(F.lit("missing: "), _listed(missing_names, missing))),
            ("wrong_type", F.length(_listed(typed, wrong)) > 0,
             F.concat(F.lit("not a string: "), _listed(typed, wrong))),
            ("unknown_event_type", ~event_type.isin(types),
             F.concat(F.lit("event_type '"), F.substring(event_type, 1, 100), F.lit("' is not one of: "),
                      F.lit(", ".join(types)))),
            ("bad_timestamp", ts.isNull(),
             F.concat(F.lit("timestamp '"), F.substring(ts_text, 1, 100), F.lit("' is not ISO-8601"))),
            ("future_timestamp", F.unix_micros(ts) > too_late_us,
             F.concat(F.lit("timestamp "), F.date_format(ts, "yyyy-MM-dd'T'HH:mm:ss.SSS'Z'"),
                      F.lit(" is more than "), F.lit(f"{max_future.total_seconds():g}s"),
                      F.lit(" ahead of its Kafka timestamp"))),
        ]
        reason = F.lit(None).cast("string")
        detail = F.lit(None).cast("string")
        for name, failed, why in reversed(checks):  # the first failing check wins
            reason = F.when(failed, F.lit(name)).otherwise(reason)
            detail = F.when(failed, why).otherwise(detail)

        parsed = df.withColumn(_DOC, F.when(F.col(RAW_BYTES) <= max_event_bytes, F.try_parse_json(F.col(RAW))))
        return parsed.select(
            "*",
            reason.alias(REASON),
            detail.alias(DETAIL),
            ts.alias(EVENT_TIME),
            _text(doc, ev.USER_ID).alias(ev.USER_ID),
            _text(doc, ev.SESSION_ID).alias(ev.SESSION_ID),
            event_type.alias(ev.EVENT_TYPE),
            _text(doc, ev.PAGE_URL).alias(ev.PAGE_URL),
            # Same event_id = same event; without one, the same payload bytes are the same event.
            F.coalesce(F.concat(F.lit("id:"), _text(doc, ev.EVENT_ID)),
                       F.concat(F.lit("sha:"), F.sha2(F.col(RAW), 256))).alias(DEDUP_KEY),
        ).drop(_DOC)

    return step


def valid_events(df: DataFrame) -> DataFrame:
    """The events that passed every check, with only the columns the aggregates need."""
    return df.where(F.col(REASON).isNull()).select(
        EVENT_TIME, ev.USER_ID, ev.SESSION_ID, ev.EVENT_TYPE, ev.PAGE_URL, DEDUP_KEY
    )


def invalid_events(df: DataFrame) -> DataFrame:
    """The events that failed a check, shaped as `invalid_events` documents (raw value truncated)."""
    return df.where(F.col(REASON).isNotNull()).select(
        F.concat_ws("-", c.TOPIC, c.PARTITION, c.OFFSET).alias(c.ID),
        F.col(REASON).alias(c.REASON),
        F.col(DETAIL).alias(c.DETAIL),
        F.substring(F.coalesce(F.col(RAW), F.lit("")), 1, c.RAW_MAX_CHARS).alias(c.RAW),
        (F.coalesce(F.length(RAW), F.lit(0)) > c.RAW_MAX_CHARS).alias(c.RAW_TRUNCATED),
        c.TOPIC,
        c.PARTITION,
        c.OFFSET,
        F.col(c.KAFKA_TIMESTAMP).cast("timestamp_ntz").alias(c.KAFKA_TIMESTAMP),
    )
