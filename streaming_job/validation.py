"""Parsing and validating raw Kafka records into events, each invalid one with exactly one reason.

All checks are Spark SQL expressions (no Python UDFs). Spark 4 runs in ANSI mode, so every
conversion here is a `try_*` form that yields NULL instead of failing the batch.

No expression here walks the nesting of a parsed value: a JSON value may be nested 1000 levels deep
(the parser's limit), and recursive functions such as `schema_of_variant`, or a cast of an object to
text, overflow the task's stack on such a value and kill the job. Types are read level by level instead.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from functools import reduce

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from clickpulse import events as ev
from storage import contract as c

# ISO-8601 date-time: a date, 'T' (or a space), hours and minutes, optional seconds and fraction,
# optional offset. Reduced forms such as '2026-11-23' are not event timestamps. ASCII digits only, and
# `\z` (not `$`, which also matches before a final line break) so that nothing may follow.
ISO_TIMESTAMP = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})?\z"
# Spark's cast reads 'HH:MM' without seconds only when no offset follows: such a time gets ':00' (then the
# 17th character, right after the minutes, is the offset's).
_ZONE_AFTER_MINUTES = ("Z", "+", "-")
# Event times must be after the epoch: Spark's watermark starts there and never goes below it, so an
# earlier event would always be dropped as late. The upper bound keeps every window end a date that
# Spark, Python and BSON all hold (years up to 9999).
EARLIEST_EVENT_TIME = datetime(1970, 1, 1, tzinfo=UTC)
LATEST_EVENT_TIME = datetime(9999, 1, 1, tzinfo=UTC)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EARLIEST_US = (EARLIEST_EVENT_TIME - _EPOCH) // timedelta(microseconds=1)
_LATEST_US = (LATEST_EVENT_TIME - _EPOCH) // timedelta(microseconds=1)
# The fields the job stores, or keeps as keys in its state: their text must be storable as it is. A
# MongoDB-wire store over PostgreSQL (FerretDB) cannot hold U+0000 in any string, and its indexes refuse
# keys over about 2.7 KB (PostgreSQL's btree limit): the job would fail on every retry of the batch.
STORED_FIELDS = (ev.USER_ID, ev.SESSION_ID, ev.EVENT_TYPE, ev.PAGE_URL, ev.EVENT_ID)
MAX_STORED_BYTES = 2048
# JSON whitespace (RFC 8259), and a whole JSON number: what may surround and make up a top-level value.
_JSON_SPACE = " \t\n\r"
_JSON_NUMBER = r"^[ \t\n\r]*-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?[ \t\n\r]*\z"
_NUMBER_KINDS = ("BIGINT", "DOUBLE")
# A \uD800-\uDBFF escape not followed by a \uDC00-\uDFFF one, or the reverse: half of a UTF-16 pair, no character
# (Spark's parser rejects it; only the detail uses this). The backslash before `u` must not itself be escaped.
_LONE_SURROGATE = (r"(?i)(?<!\\)(?:\\\\)*\\u(?:d[89ab][0-9a-f]{2}(?!\\ud[c-f][0-9a-f]{2})"
                   r"|(?<!\\ud[89ab][0-9a-f]{2}\\u)d[c-f][0-9a-f]{2})")

# The columns `decode_kafka` leaves for validation.
RAW = c.RAW
RAW_BYTES = "raw_bytes"
REASON = c.REASON
DETAIL = c.DETAIL
EVENT_TIME = "event_time"
DEDUP_KEY = "dedup_key"
_DOC = "_doc"
_TEXTS = "_texts"
_PLAIN = "_plain"
_PLAIN_TS = "_plain_ts"
_PARTS = "_parts"

# Cast to these types, a value gives non-NULL exactly when it is an object, or an array; the cast reads only its
# first level (an object's field `_`, an array's elements, each cast to a boolean or NULL).
_AN_OBJECT = "struct<_:boolean>"
_AN_ARRAY = "array<boolean>"


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
TYPED_FIELDS = (*ev.REQUIRED_FIELDS, ev.PAGE_URL, ev.EVENT_ID)
# The event types that must have a page_url (the events contract's rule, read once for validation and its shortcut).
_NEED_A_PAGE = tuple(t for t, fields in ev.REQUIRED_FOR_TYPE.items() if ev.PAGE_URL in fields)


def _kind_col(field: str) -> str:
    return f"_t_{field}"


def _text_col(field: str) -> str:
    return f"_s_{field}"


def _first_match(branches: Sequence[tuple[Column, Column]]) -> Column:
    """The value of the first branch whose condition holds (NULL when none does), as one flat CASE WHEN.

    Flat, not a `when` nested in each `otherwise`: Spark's optimizer pushes a predicate over a CASE (`reason IS NULL`,
    for one) into its branches one level of nesting per pass, so a reason nested ten deep made it pass over the whole
    plan 14 times, and every micro-batch plans it anew (`bench/job.py --planning`).
    """
    (condition, value), *rest = branches
    return reduce(lambda case, branch: case.when(*branch), rest, F.when(condition, value))


def _listed(names: Sequence[str], conditions: Sequence[Column]) -> Column:
    """Comma-separated names whose condition holds ('' when none)."""
    return F.concat_ws(", ", *[F.when(cond, F.lit(n)) for n, cond in zip(names, conditions, strict=True)])


def struct_of(fields: Sequence[str], field_type: str) -> str:
    """DDL of a struct with each of `fields` of `field_type`."""
    return "struct<" + ", ".join(f"`{f}`: {field_type}" for f in fields) + ">"


def _probe(doc: Column, fields: Sequence[str], probe: str) -> Column:
    """One cast of the document: NULL unless it is an object, else a struct with each field cast to `probe`.

    A struct cast reads only the named fields of the object, and these probes only the first level of each.
    """
    return F.try_variant_get(doc, "$", struct_of(fields, probe))


def _texts(objects: Column, arrays: Column) -> Column:
    """The typed fields read as text by Spark's JSON reader, when none of them is an object or array (else NULL).

    Only a field whose JSON type is a string reads its text here. `try_variant_get(..., "string")` builds a `Cast`
    expression for every value it converts, configuration lookups included: five of them per record were a sixth of
    validation's time (bench/job.py). The JSON reader decodes the same strict JSON to the same text, and where it gives
    NULL the variant is asked. A field that is an object or array would be read as its text, walking its nesting (see
    the module doc): then the variant is asked instead.
    """
    flat = reduce(Column.__and__, [objects[f].isNull() & arrays[f].isNull() for f in TYPED_FIELDS])
    return F.when(flat, F.from_json(F.col(RAW), struct_of(TYPED_FIELDS, "string")))


def _kind(objects: Column, arrays: Column, scalar: Column) -> Column:
    """'OBJECT', 'ARRAY', or the type of the scalar ('STRING', 'BIGINT', 'VOID' for null...); NULL if absent.

    `schema_of_variant` is asked only about a scalar, so nesting is never walked (see the module doc).
    """
    return (F.when(objects.isNotNull(), F.lit("OBJECT")).when(arrays.isNotNull(), F.lit("ARRAY"))
            .otherwise(F.schema_of_variant(scalar)))


def _nul() -> Column:
    """U+0000, made in the JVM (a literal NUL would have to cross Py4J)."""
    return F.char(F.lit(0))


def storable(text: Column) -> Column:
    """`text` with each U+0000 written as the six characters `\\u0000` (its JSON escape), which any store holds."""
    return F.regexp_replace(text, r"\x00", r"\\u0000")


def trailing_text(raw: Column, top_kind: Column) -> Column:
    """True when something other than whitespace follows the first JSON value of `raw` (which parsed).

    Spark's parser reads one value and ignores the rest, so `{...} tail` or two events in one record would
    count once. Without the last character, a value that ends the text no longer parses (an object or
    array loses its bracket, a string its quote, a literal a letter), while one followed by more text still
    does. Numbers are matched whole instead (`12` without its last character is `1`). Most events have a
    single `}`, their last character: they need no second parse.
    """
    number = top_kind.isin(*_NUMBER_KINDS) | F.startswith(top_kind, F.lit("DECIMAL"))
    text = F.rtrim(raw, F.lit(_JSON_SPACE))
    # The only `}` at the last byte. The cut before it counts bytes as characters: exact for ASCII text; other text keeps
    # its last `}` in the cut and takes the second parse. (`locate` of the first `}` compared arrays at every character:
    # 0.8 s per million events, against 0.5 s.)
    only_brace_last = F.endswith(raw, F.lit("}")) & ~F.contains(
        F.substring(raw, F.lit(1), F.octet_length(raw) - 1), F.lit("}"))
    return (F.when((top_kind == "OBJECT") & only_brace_last, F.lit(False))
            .when(number, ~raw.rlike(_JSON_NUMBER))
            .otherwise(F.try_parse_json(F.substring(text, F.lit(1), F.length(text) - 1)).isNotNull()))


def _out_of_range(ts_us: Column) -> Column:
    """True when an event time (epoch microseconds) is missing, or not after the epoch and before the year 9999."""
    return ts_us.isNull() | (ts_us <= F.lit(_EARLIEST_US)) | (ts_us >= F.lit(_LATEST_US))


def _ahead_of_kafka(ts_us: Column, max_future: timedelta) -> Column:
    """True when an event time is more than `max_future` ahead of its record's Kafka timestamp."""
    return ts_us > F.unix_micros(F.col(c.KAFKA_TIMESTAMP)) + F.lit(max_future // timedelta(microseconds=1))


def validate(event_types: Sequence[str], max_event_bytes: int, max_future: timedelta,
             known_shape: bool = True) -> Callable[[DataFrame], DataFrame]:
    """Add `reason` (NULL for a valid event), `detail`, and the parsed event columns.

    The clock for `future_timestamp` is the Kafka record's timestamp (when the event reached Kafka),
    not the wall clock at processing time: this keeps validation identical across replays, restarts
    and both of the job's queries.

    Built in stages of plain columns (parse, then each field's JSON type and text once, then the
    checks, then the reason, then its detail) so that no expression is evaluated twice per record.

    A record `plainly_valid` knows is valid is not parsed: its fields are read from between its quotes, and it gets no
    reason (`known_shape=False` parses every record, for tests to compare with).
    """
    types = list(event_types)
    time_range = f"after {EARLIEST_EVENT_TIME:%Y-%m-%dT%H:%M:%SZ} and before {LATEST_EVENT_TIME:%Y-%m-%dT%H:%M:%SZ}"

    def step(df: DataFrame) -> DataFrame:
        doc, plain, plain_ts = F.col(_DOC), F.col(_PLAIN), F.col(_PLAIN_TS)
        ts = _plain_event_time(event_types) if known_shape else F.lit(None).cast("bigint")
        known = _plainly_valid_at(plain_ts, max_event_bytes, max_future) if known_shape else F.lit(False)
        parsed = df.select("*", ts.alias(_PLAIN_TS)).select("*", known.alias(_PLAIN)).select(
            "*",
            F.when(plain, F.split(F.col(RAW), '"')).alias(_PARTS),
            F.when(~plain & (F.col(RAW_BYTES) <= max_event_bytes), F.try_parse_json(F.col(RAW))).alias(_DOC),
            (plain | F.coalesce(F.is_valid_utf8(F.col(RAW)), F.lit(False))).alias("_utf8"),
        )
        probes = parsed.select("*", _probe(doc, TYPED_FIELDS, _AN_OBJECT).alias("_objects"),
                               _probe(doc, TYPED_FIELDS, _AN_ARRAY).alias("_arrays"))
        objects, arrays = F.col("_objects"), F.col("_arrays")
        kinds = probes.select(
            "*",
            _kind(objects, F.try_variant_get(doc, "$", _AN_ARRAY), doc).alias("_t_doc"),
            *[_kind(objects[f], arrays[f], F.try_variant_get(doc, f"$.{f}", "variant")).alias(_kind_col(f))
              for f in TYPED_FIELDS],
            F.when(~plain, _texts(objects, arrays)).alias(_TEXTS),
        ).drop("_objects", "_arrays")
        fields = kinds.select(
            "*",
            F.when(doc.isNotNull(), trailing_text(F.col(RAW), F.col("_t_doc"))).alias("_trailing"),
            *[F.when(plain, _plain_text(F.col(_PARTS), f))
              .when(F.col(_kind_col(f)) == "STRING",
                    F.coalesce(F.col(_TEXTS)[f], F.try_variant_get(doc, f"$.{f}", "string"))).alias(_text_col(f))
              for f in TYPED_FIELDS],
        ).drop(_DOC, _TEXTS, _PARTS)

        def kind(f: str) -> Column:
            return F.col(_kind_col(f))

        def text(f: str) -> Column:
            return F.col(_text_col(f))

        def absent(f: str) -> Column:
            """Missing, JSON null, or an empty string (an empty required value counts as missing)."""
            return kind(f).isNull() | (kind(f) == "VOID") | ((kind(f) == "STRING") & (F.length(text(f)) == 0))

        required = list(ev.REQUIRED_FIELDS)
        missing_names = [*required, ev.PAGE_URL]
        needs_page = text(ev.EVENT_TYPE).isin(*_NEED_A_PAGE)
        ts_text = text(ev.TIMESTAMP)
        nul_in = [F.contains(text(f), _nul()) for f in STORED_FIELDS]
        too_long = [F.octet_length(text(f)) > MAX_STORED_BYTES for f in STORED_FIELDS]
        ts_cast = F.when(F.substring(ts_text, 17, 1).isin(*_ZONE_AFTER_MINUTES),
                         F.concat(F.substring(ts_text, 1, 16), F.lit(":00"), F.substring(ts_text, 17, 7))).otherwise(ts_text)
        # A plainly valid record passed these checks in `plainly_valid` (its event time too): they are not made again.
        parsed_only = ~plain
        checked = fields.select(
            "*",
            F.when(parsed_only, _listed(missing_names, [absent(f) for f in required]
                                        + [needs_page & absent(ev.PAGE_URL)])).alias("_missing"),
            F.when(parsed_only, _listed(TYPED_FIELDS, [kind(f).isNotNull() & (kind(f) != "VOID") & (kind(f) != "STRING")
                                                       for f in TYPED_FIELDS])).alias("_wrong"),
            (parsed_only & F.coalesce(reduce(Column.__or__, nul_in), F.lit(False))).alias("_has_nul"),
            (parsed_only & F.coalesce(reduce(Column.__or__, too_long), F.lit(False))).alias("_too_long"),
            F.when(plain, plain_ts)
            .when(ts_text.rlike(ISO_TIMESTAMP), F.unix_micros(ts_cast.try_cast("timestamp"))).alias("_ts_us"),
        )

        raw = F.col(RAW)
        ts_us = F.col("_ts_us")
        event_type = text(ev.EVENT_TYPE)
        checks: list[tuple[str, Column, Column]] = [
            ("too_large", F.col(RAW_BYTES) > max_event_bytes,
             F.format_string("value is %d bytes, limit %d", F.col(RAW_BYTES), F.lit(max_event_bytes))),
            ("malformed_json", raw.isNull() | ~F.col("_utf8") | F.col("_t_doc").isNull() | F.col("_trailing"),
             F.when(raw.isNull(), F.lit("empty message"))
             .when(F.col(RAW_BYTES) == 0, F.lit("value is empty"))
             .when(~F.col("_utf8"), F.lit("value is not valid UTF-8"))
             .when(F.col("_trailing"), F.lit("text follows the JSON value (one record must hold exactly one event)"))
             .when(F.startswith(raw, F.lit("\ufeff")), F.lit("value starts with a byte order mark (U+FEFF)"))
             .when(raw.rlike(_LONE_SURROGATE), F.lit("value holds half of a UTF-16 surrogate pair (an escape such as "
                                                    "\\ud800 that is no character)"))
             .otherwise(F.lit("value is not valid JSON"))),
            ("not_an_object", F.col("_t_doc") != "OBJECT",
             F.concat(F.lit("JSON value is "), F.lower(F.regexp_extract(F.col("_t_doc"), r"^([A-Z]+)", 1)),
                      F.lit(", expected an object"))),
            ("missing_field", F.length("_missing") > 0, F.concat(F.lit("missing: "), F.col("_missing"))),
            ("wrong_type", F.length("_wrong") > 0, F.concat(F.lit("not a string: "), F.col("_wrong"))),
            ("unstorable_value", F.col("_has_nul") | F.col("_too_long"),
             F.concat_ws("; ",
                         F.when(F.col("_has_nul"), F.concat(F.lit("U+0000 (NUL) in: "), _listed(STORED_FIELDS, nul_in))),
                         F.when(F.col("_too_long"), F.concat(F.lit(f"over {MAX_STORED_BYTES} bytes in UTF-8: "),
                                                             _listed(STORED_FIELDS, too_long))))),
            ("unknown_event_type", ~event_type.isin(types),
             F.concat(F.lit("event_type '"), F.substring(event_type, 1, 100), F.lit("' is not one of: "),
                      F.lit(", ".join(types)))),
            ("bad_timestamp", _out_of_range(ts_us),
             F.when(ts_us.isNull(), F.concat(F.lit("timestamp '"), F.substring(ts_text, 1, 100),
                                             F.lit("' is not ISO-8601")))
             .otherwise(F.concat(F.lit("timestamp '"), F.substring(ts_text, 1, 100),
                                 F.lit(f"' is out of range: event times must be {time_range}")))),
            ("future_timestamp",
             _ahead_of_kafka(ts_us, max_future),
             F.concat(F.lit("timestamp "), F.date_format(F.timestamp_micros(ts_us), "yyyy-MM-dd'T'HH:mm:ss.SSS'Z'"),
                      F.lit(" is more than "), F.lit(f"{max_future.total_seconds():g}s"),
                      F.lit(" ahead of its Kafka timestamp"))),
        ]
        # A plainly valid record has no reason; any other, the first check it fails.
        reason = _first_match([(plain, F.lit(None).cast("string")),
                               *[(failed, F.lit(name)) for name, failed, _ in checks]])
        with_reason = checked.withColumn(REASON, reason)
        detail = _first_match([(F.col(REASON) == name, why) for name, _, why in checks])

        event_id = text(ev.EVENT_ID)
        return with_reason.select(
            *df.columns,
            REASON,
            detail.alias(DETAIL),
            F.timestamp_micros(ts_us).alias(EVENT_TIME),
            text(ev.USER_ID).alias(ev.USER_ID),
            text(ev.SESSION_ID).alias(ev.SESSION_ID),
            event_type.alias(ev.EVENT_TYPE),
            text(ev.PAGE_URL).alias(ev.PAGE_URL),
            # Same event_id = same event; without one (or with an empty one), the same payload bytes are.
            F.when(F.length(event_id) > 0, F.concat(F.lit("id:"), event_id))
            .otherwise(F.concat(F.lit("sha:"), F.sha2(F.col(RAW), 256))).alias(DEDUP_KEY),
        )

    return step


# A printable ASCII character other than `"` and `\`: a JSON string of these is its own text, one byte a character,
# with no escape, control character or U+0000 in it.
_PLAIN_CHAR = r"[ !#-\[\]-~]"
_PLAIN_TIMESTAMP = r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?Z"


def _plain_string(least: int) -> str:
    """A JSON string of `least` to MAX_STORED_BYTES plain characters, as a regex."""
    return f'"{_PLAIN_CHAR}{{{least},{MAX_STORED_BYTES}}}"'


# The fields of an event in the order the producer writes them; `event_id` may be left out, and so may `page_url` from
# an event of a type that needs none.
PLAIN_ORDER = (ev.EVENT_ID, ev.TIMESTAMP, ev.USER_ID, ev.SESSION_ID, ev.EVENT_TYPE, ev.PAGE_URL)


def _one_of(texts: Sequence[str]) -> str:
    """Regex (Java's) matching exactly one of `texts` (nothing when there is none)."""
    # Every character but a letter or digit escaped: a backslash before any other character is that character in Java.
    return "|".join("".join(ch if ch.isalnum() else "\\" + ch for ch in t) for t in texts) or "(?!)"


def plain_shape(event_types: Sequence[str]) -> str:
    """Regex (Java's) of an event as the producer writes it: one JSON object of plain strings (see `_PLAIN_CHAR`), no
    whitespace, its fields in the producer's order and nothing else; group 1 is its timestamp. `event_id` may be left
    out, and `page_url` too where the event type needs none (every type but a page view).

    A record of this shape is valid JSON, an object with nothing after it, and each field the job stores is a string
    that is present, storable and at most MAX_STORED_BYTES long, its event type one of `event_types`: every check
    `validate` makes but size and time.
    """
    plain_types = [t for t in event_types if re.fullmatch(f"{_PLAIN_CHAR}{{1,{MAX_STORED_BYTES}}}", t)]
    with_page = [t for t in plain_types if t in _NEED_A_PAGE]
    page = f'"{ev.PAGE_URL}":{_plain_string(1)}'
    values = {ev.EVENT_ID: _plain_string(0), ev.TIMESTAMP: f'"({_PLAIN_TIMESTAMP})"'}
    first, *rest = PLAIN_ORDER[:-2]  # the event type and its page follow
    fields = ",".join(f'"{f}":{values.get(f, _plain_string(1))}' for f in rest)
    typed = (f'"{ev.EVENT_TYPE}":(?:"(?:{_one_of(with_page)})",{page}'
             f'|"(?:{_one_of([t for t in plain_types if t not in with_page])})"(?:,{page})?)')
    return rf'^\{{(?:"{first}":{values[first]},)?{fields},{typed}\}}\z'


def plainly_valid(event_types: Sequence[str], max_event_bytes: int, max_future: timedelta) -> Column:
    """True for a record `validate` would find valid, known without parsing it: an event in the producer's own shape
    (`plain_shape`) within the size limit, whose timestamp is a date-time in range and not too far ahead of Kafka's.

    False says nothing: an event with other whitespace, order, fields or characters is checked by `validate`. One regex
    and one cast: the invalid-events query's steps took 3.4 s per million valid events with it, 12.0 s validating every
    one (`bench/job.py --invalid`).
    """
    return _plainly_valid_at(_plain_event_time(event_types), max_event_bytes, max_future)


def _plain_event_time(event_types: Sequence[str]) -> Column:
    """The event time (epoch microseconds) of a record in the producer's own shape, from its timestamp; else NULL."""
    ts_text = F.regexp_extract(F.col(RAW), plain_shape(event_types), 1)
    # The same cast as `validate`'s (which adds ':00' only to a time without seconds: this has them).
    return F.unix_micros(F.when(ts_text != "", ts_text).try_cast("timestamp"))


def _plainly_valid_at(ts_us: Column, max_event_bytes: int, max_future: timedelta) -> Column:
    """`plainly_valid` of a record whose `_plain_event_time` is `ts_us`: its size and time pass `validate`'s checks."""
    within = (F.col(RAW_BYTES) <= max_event_bytes) & ~_out_of_range(ts_us) & ~_ahead_of_kafka(ts_us, max_future)
    return F.coalesce(within, F.lit(False))


def _plain_text(parts: Column, field: str) -> Column:
    """`field` of a plainly valid record split at its quotes (`"`): the value of the n-th field of PLAIN_ORDER is part
    3 + 4n, 4 fewer without an event_id (NULL for it then); an event without a page_url has no such part (NULL)."""
    shift = F.when(F.get(parts, 1) == F.lit(ev.EVENT_ID), F.lit(0)).otherwise(F.lit(4))
    return F.get(parts, F.lit(3 + 4 * PLAIN_ORDER.index(field)) - shift)


def skip_plainly_valid(event_types: Sequence[str], max_event_bytes: int,
                       max_future: timedelta) -> Callable[[DataFrame], DataFrame]:
    """Leave out the records `plainly_valid` knows are valid, before `validate`: for a query that keeps only the invalid
    ones, which then parses only the records that may be invalid."""
    known_valid = plainly_valid(event_types, max_event_bytes, max_future)

    def step(df: DataFrame) -> DataFrame:
        return df.where(~known_valid)

    return step


def valid_events(df: DataFrame) -> DataFrame:
    """The events that passed every check, with only the columns the aggregates need (and their Kafka coordinates)."""
    return df.where(F.col(REASON).isNull()).select(
        EVENT_TIME, ev.USER_ID, ev.SESSION_ID, ev.EVENT_TYPE, ev.PAGE_URL, DEDUP_KEY, c.PARTITION, c.OFFSET
    )


def invalid_events(df: DataFrame) -> DataFrame:
    """The events that failed a check, shaped as `invalid_events` documents.

    `raw` is the value as UTF-8 text, cut to its first `RAW_MAX_CHARS` characters, with each invalid UTF-8
    sequence replaced by U+FFFD and each U+0000 written as `\\u0000`: a store over PostgreSQL holds neither
    as they are. `raw_truncated` says whether the value (as that text) was longer than the cut.
    """
    text = F.make_valid_utf8(F.coalesce(F.col(RAW), F.lit("")))
    return df.where(F.col(REASON).isNotNull()).select(
        F.concat_ws("-", c.TOPIC, c.PARTITION, c.OFFSET).alias(c.ID),
        F.col(REASON).alias(c.REASON),
        storable(F.col(DETAIL)).alias(c.DETAIL),
        storable(F.substring(text, 1, c.RAW_MAX_CHARS)).alias(c.RAW),
        (F.length(text) > c.RAW_MAX_CHARS).alias(c.RAW_TRUNCATED),
        c.TOPIC,
        c.PARTITION,
        c.OFFSET,
        F.col(c.KAFKA_TIMESTAMP).cast("timestamp_ntz").alias(c.KAFKA_TIMESTAMP),
    )
