"""Parsing and validating raw Kafka records into events, each invalid one with exactly one reason.

All checks are Spark SQL expressions (no Python UDFs). Spark 4 runs in ANSI mode, so every
conversion here is a `try_*` form that yields NULL instead of failing the batch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from clickpulse import events as ev
from storage import contract as c

# ISO-8601 date-time: a date, 'T' (or a space), hours and minutes, optional seconds and fraction,
# optional offset. Reduced forms such as '2026-11-23' are not event timestamps.
ISO_TIMESTAMP = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})?$"

# The columns `decode_kafka` leaves for validation.
RAW = c.RAW
RAW_BYTES = "raw_bytes"
REASON = c.REASON
DETAIL = c.DETAIL
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


# Fields whose JSON type is checked; the first four are always required, page_url only for page views.
_TYPED = (*ev.REQUIRED_FIELDS, ev.PAGE_URL, ev.EVENT_ID)


def _type_col(field: str) -> str:
    return f"_t_{field}"


def _text_col(field: str) -> str:
    return f"_s_{field}"


def _listed(names: Sequence[str], conditions: Sequence[Column]) -> Column:
    """Comma-separated names whose condition holds ('' when none)."""
    return F.concat_ws(", ", *[F.when(cond, F.lit(n)) for n, cond in zip(names, conditions, strict=True)])


def validate(event_types: Sequence[str], max_event_bytes: int, max_future: timedelta) -> Callable[[DataFrame], DataFrame]:
    """Add `reason` (NULL for a valid event), `detail`, and the parsed event columns.

    The clock for `future_timestamp` is the Kafka record's timestamp (when the event reached Kafka),
    not the wall clock at processing time: this keeps validation identical across replays, restarts
    and both of the job's queries.

    Built in stages of plain columns (parse, then each field's JSON type and text once, then the
    checks, then the reason, then its detail) so that no expression is evaluated twice per record.
    """
    types = list(event_types)
    future_us = max_future // timedelta(microseconds=1)

    def step(df: DataFrame) -> DataFrame:
        doc = F.col(_DOC)
        parsed = df.select(
            "*",
            F.when(F.col(RAW_BYTES) <= max_event_bytes, F.try_parse_json(F.col(RAW))).alias(_DOC),
            F.coalesce(F.is_valid_utf8(F.col(RAW)), F.lit(False)).alias("_utf8"),
        )
        fields = parsed.select(
            "*",
            F.schema_of_variant(doc).alias("_t_doc"),
            *[F.schema_of_variant(F.try_variant_get(doc, f"$.{f}", "variant")).alias(_type_col(f)) for f in _TYPED],
            *[F.try_variant_get(doc, f"$.{f}", "string").alias(_text_col(f)) for f in _TYPED],
        ).drop(_DOC)

        def typ(f: str) -> Column:
            return F.col(_type_col(f))

        def text(f: str) -> Column:
            return F.col(_text_col(f))

        def absent(f: str) -> Column:
            """Missing, JSON null, or an empty string (an empty required value counts as missing)."""
            return typ(f).isNull() | (typ(f) == "VOID") | ((typ(f) == "STRING") & (F.length(text(f)) == 0))

        required = list(ev.REQUIRED_FIELDS)
        missing_names = [*required, ev.PAGE_URL]
        needs_page = text(ev.EVENT_TYPE) == ev.PAGE_VIEW
        ts_text = text(ev.TIMESTAMP)
        checked = fields.select(
            "*",
            _listed(missing_names, [absent(f) for f in required] + [needs_page & absent(ev.PAGE_URL)]).alias("_missing"),
            _listed(_TYPED, [typ(f).isNotNull() & (typ(f) != "VOID") & (typ(f) != "STRING") for f in _TYPED])
            .alias("_wrong"),
            F.when(ts_text.rlike(ISO_TIMESTAMP), F.expr(f"try_cast(`{_text_col(ev.TIMESTAMP)}` AS TIMESTAMP)"))
            .alias(EVENT_TIME),
        )

        event_type = text(ev.EVENT_TYPE)
        checks: list[tuple[str, Column, Column]] = [
            ("too_large", F.col(RAW_BYTES) > max_event_bytes,
             F.format_string("value is %d bytes, limit %d", F.col(RAW_BYTES), F.lit(max_event_bytes))),
            ("malformed_json", F.col(RAW).isNull() | ~F.col("_utf8") | F.col("_t_doc").isNull(),
             F.when(F.col(RAW).isNull(), F.lit("empty message"))
             .when(~F.col("_utf8"), F.lit("value is not valid UTF-8"))
             .otherwise(F.lit("value is not valid JSON"))),
            ("not_an_object", ~F.startswith(F.col("_t_doc"), F.lit("OBJECT")),
             F.concat(F.lit("JSON value is "), F.lower(F.regexp_extract(F.col("_t_doc"), r"^([A-Z]+)", 1)),
                      F.lit(", expected an object"))),
            ("missing_field", F.length("_missing") > 0, F.concat(F.lit("missing: "), F.col("_missing"))),
            ("wrong_type", F.length("_wrong") > 0, F.concat(F.lit("not a string: "), F.col("_wrong"))),
            ("unknown_event_type", ~event_type.isin(types),
             F.concat(F.lit("event_type '"), F.substring(event_type, 1, 100), F.lit("' is not one of: "),
                      F.lit(", ".join(types)))),
            ("bad_timestamp", F.col(EVENT_TIME).isNull(),
             F.concat(F.lit("timestamp '"), F.substring(ts_text, 1, 100), F.lit("' is not ISO-8601"))),
            ("future_timestamp",
             F.unix_micros(F.col(EVENT_TIME)) > F.unix_micros(F.col(c.KAFKA_TIMESTAMP)) + F.lit(future_us),
             F.concat(F.lit("timestamp "), F.date_format(EVENT_TIME, "yyyy-MM-dd'T'HH:mm:ss.SSS'Z'"),
                      F.lit(" is more than "), F.lit(f"{max_future.total_seconds():g}s"),
                      F.lit(" ahead of its Kafka timestamp"))),
        ]
        reason = F.lit(None).cast("string")
        for name, failed, _ in reversed(checks):  # the first failing check wins
            reason = F.when(failed, F.lit(name)).otherwise(reason)
        with_reason = checked.withColumn(REASON, reason)
        detail = F.lit(None).cast("string")
        for name, _, why in checks:
            detail = F.when(F.col(REASON) == name, why).otherwise(detail)

        return with_reason.select(
            *df.columns,
            REASON,
            detail.alias(DETAIL),
            EVENT_TIME,
            text(ev.USER_ID).alias(ev.USER_ID),
            text(ev.SESSION_ID).alias(ev.SESSION_ID),
            event_type.alias(ev.EVENT_TYPE),
            text(ev.PAGE_URL).alias(ev.PAGE_URL),
            # Same event_id = same event; without one, the same payload bytes are the same event.
            F.coalesce(F.concat(F.lit("id:"), text(ev.EVENT_ID)),
                       F.concat(F.lit("sha:"), F.sha2(F.col(RAW), 256))).alias(DEDUP_KEY),
        )

    return step


def valid_events(df: DataFrame) -> DataFrame:
    """The events that passed every check, with only the columns the aggregates need (and their Kafka coordinates)."""
    return df.where(F.col(REASON).isNull()).select(
        EVENT_TIME, ev.USER_ID, ev.SESSION_ID, ev.EVENT_TYPE, ev.PAGE_URL, DEDUP_KEY, c.PARTITION, c.OFFSET
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
