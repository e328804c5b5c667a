"""Benchmark: events/s through the job's hot path (parse, validate, dedup, the three exact window aggregates).

Runs the very steps of the streaming query on a cached static frame of Kafka-shaped records (no Kafka, no Mongo:
those are measured by the end-to-end runs), in local mode on this machine, and prints JSON.

    .venv/bin/python bench/job.py [--events 1000000] [--users 10000] [--pages 200] [--repeat 3] [--stages]
                                  [--floor] [--set-free] [--invalid] [--planning] [--huge-methods split|compiled|interpreted]
                                  [--gc parallel|g1]

`--stages` also times each stage on its own, reading the cached output of the stages before it: parsing and validating,
dedup, the window rows, the aggregation (medians, in seconds), and the aggregation of each aggregate's rows alone
(`aggregate_by_kind`: what each one costs of it); and parsing and validating every record, the producer's shape included
(`parse_validate_every_record`: the job reads that shape's fields without parsing). `--floor` times the least any plan
computing these aggregates does: six fields read without validation, the window rows, a count per slot (no dedup, no
sets). `--set-free` times the job's window rows and aggregation against set-free ones (a group per window and user, and
per bot second, instead of a set). `--huge-methods` says what becomes of generated methods over HotSpot's 8,000 bytes:
split by Spark at that size (the job's default), compiled by the JVM (what the job keeps when its JVM has
-XX:-DontCompileHugeMethods), or left to HotSpot's interpreter (HotSpot's and Spark's defaults). `--planning` times what
Spark does before every micro-batch of the aggregates query: optimizing and planning its plan (a stream per partition, 3
here), with the job's settings and with Spark's constraint propagation on, then generating the Java source of its
stages; and counts the Catalyst rules one planning runs. `--invalid` times the invalid-events query's steps over the
same records: as the job runs them (valid events in the producer's own shape left out by one regex before validation)
and validating every record, taking turns.
`--gc` picks the JVM's garbage collector: Parallel (the job's default) or G1 (HotSpot's).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from clickpulse import events as ev
from storage import contract as c
from streaming_job.pipeline import aggregate_steps, aggregated_rows, invalid_steps, parse_steps, run_steps
from streaming_job.session import (
    COMPILE_HUGE_METHODS,
    CONSTRAINT_PROPAGATION,
    HOTSPOT_HUGE_METHOD_BYTES,
    HUGE_METHOD_LIMIT,
    PARALLEL_GC,
    SESSION_DEFAULTS,
)
from streaming_job.settings import JobSettings
from streaming_job.validation import EVENT_TIME, TYPED_FIELDS, invalid_events, struct_of
from streaming_job.windows import (
    ACTIVE_USERS,
    BOT_ACTIVITY,
    EVENTS,
    FIRST,
    KEY,
    KIND,
    LAST,
    MEMBER,
    MINUTE_US,
    PAGE_VIEWS,
    POSITION,
    SECOND_US,
    SUBKEY,
    USER_SESSIONS,
    WINDOW_END,
    aggregate,
)

# The job's own settings of how Spark aggregates and plans (not its partitions, UI or shutdown).
JOB_SQL_CONFS = {k: v for k, v in SESSION_DEFAULTS.items()
                 if k.startswith("spark.sql.objectHashAggregate") or k == CONSTRAINT_PROPAGATION}
PLANNED_STREAMS = 3
ADAPTIVE = "spark.sql.adaptive.enabled"
KINDS = (ACTIVE_USERS, USER_SESSIONS, PAGE_VIEWS, BOT_ACTIVITY)
HUGE_METHODS = {"split": {HUGE_METHOD_LIMIT: str(HOTSPOT_HUGE_METHOD_BYTES)}, "compiled": {}, "interpreted": {}}
COLLECTORS = {"parallel": PARALLEL_GC, "g1": "-XX:+UseG1GC"}


def kafka_records(spark: SparkSession, n: int, users: int, pages: int):
    """`n` valid JSON click events over one hour, built with Spark SQL so generation is not measured in Python."""
    start = 1_795_000_000  # a fixed instant (2026-11-18), events spread over one hour after it
    records = (
        spark.range(n)
        .select(
            F.col("id"),
            F.timestamp_seconds(F.lit(start) + (F.col("id") * 3600 / n)).alias("t"),
            (F.col("id") * 7919 % users).alias("u"),
            (F.col("id") * 104729 % pages).alias("p"),
        )
        .select(
            F.lit("clickstream").alias("topic"),
            (F.col("id") % 3).cast("int").alias("partition"),
            F.col("id").alias("offset"),
            (F.col("t") + F.expr("INTERVAL 1 SECOND")).alias("timestamp"),
            F.to_json(F.struct(
                F.concat(F.lit("e"), F.col("id")).alias("event_id"),
                F.date_format("t", "yyyy-MM-dd'T'HH:mm:ss.SSS'Z'").alias("timestamp"),
                F.concat(F.lit("usr_"), F.col("u")).alias("user_id"),
                F.concat(F.lit("sess_"), F.col("u"), F.lit("_"), (F.col("id") % 3)).alias("session_id"),
                F.when(F.col("id") % 3 == 0, "click").otherwise("page_view").alias("event_type"),
                F.concat(F.lit("/p/"), F.col("p")).alias("page_url"),
            )).cast("binary").alias("value"),
        )
    )
    return records.cache()


def timed(df, repeat: int) -> list[float]:
    """Seconds of each of `repeat` writes of `df` to Spark's no-op sink."""
    seconds = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        df.write.format("noop").mode("overwrite").save()
        seconds.append(time.perf_counter() - t0)
    return seconds


def median_seconds(df, repeat: int) -> float:
    """Median of `repeat` timed writes of `df`, rounded for the JSON."""
    return round(statistics.median(timed(df, repeat)), 2)


def taking_turns(plans: dict, repeat: int) -> dict[str, float]:
    """Median seconds of each plan over `repeat` rounds, each round running every plan once: the machine's slow and fast
    minutes fall on all of them alike."""
    seconds: dict[str, list[float]] = {name: [] for name in plans}
    for _ in range(repeat):
        for name, plan in plans.items():
            seconds[name].extend(timed(plan, 1))
    return {name: round(statistics.median(runs), 2) for name, runs in seconds.items()}


def stage_seconds(records, settings: JobSettings, repeat: int) -> dict[str, float]:
    """Each stage of the hot path timed alone, on the cached output of the stages before it; and parsing and validating
    every record, the producer's shape too (what the job's shortcut saves), on the records."""
    aggregate = aggregate_steps(settings)  # ... dedup, then the window rows, then the aggregation
    stages = {"parse_validate": parse_steps(settings), "dedup": aggregate[:-2], "window_rows": aggregate[-2:-1],
              "aggregate": aggregate[-1:]}
    every_record = run_steps(records, parse_steps(settings, known_shape=False))
    out, df = {"parse_validate_every_record": median_seconds(every_record, repeat)}, records
    for name, steps in stages.items():
        if name == "aggregate":
            out["aggregate_by_kind"] = {
                kind: median_seconds(run_steps(df.where(F.col(KIND) == kind), steps), repeat) for kind in KINDS}
        stage = run_steps(df, steps)
        out[name] = median_seconds(stage, repeat)
        df = stage.cache()
        df.count()
    return out


def floor_seconds(records, settings: JobSettings, repeat: int) -> dict[str, float]:
    """What any plan computing these aggregates does at the least, timed whole from the cached records (medians).

    Six fields read with `from_json` (no validation), the job's window rows, and a count per slot: no dedup, and no set
    of users, so no exact distinct count: a lower bound to compare the hot path with, not a variant of the job.
    """
    fields = F.from_json(F.col("value").cast("string"), struct_of(TYPED_FIELDS, "string")).alias("e")
    events = (records.select(c.PARTITION, c.OFFSET, fields).select(c.PARTITION, c.OFFSET, "e.*")
              .withColumn(EVENT_TIME, F.col(ev.TIMESTAMP).cast("timestamp")))
    rows = run_steps(events, aggregate_steps(settings)[-2:-1])  # the job's own window-rows step
    plans = {"read_fields": events, "window_rows": rows,
             "count_per_slot": rows.groupBy(KIND, WINDOW_END, KEY, SUBKEY).agg(F.count(F.lit(1)))}
    return {name: median_seconds(plan, repeat) for name, plan in plans.items()}


def set_free_seconds(records, settings: JobSettings, repeat: int) -> dict[str, float]:
    """The job's window rows and aggregation against set-free ones, on the same cached deduplicated events (medians of
    runs taking turns).

    `set_free`: the job's rows with an active user's id moved from the set's member into the key (a group per window
    and user) and a bot minute's member into a group per user and second; counts and positions only, so Spark
    aggregates into fixed-width buffers (HashAggregate) instead of a set per group (ObjectHashAggregate).
    `set_free_but_bot_minutes`: the same, but bot minutes keep their set. Neither is the job: a window's distinct users
    would have to be counted from its new groups in each batch, and bot seconds hold a state row per event.
    """
    steps = aggregate_steps(settings)  # ... dedup, then the window rows, then the aggregation
    events = run_steps(records, [*parse_steps(settings), *steps[:-2]]).cache()
    events.count()
    rows = run_steps(events, steps[-2:-1])
    is_bot, is_active = F.col(KIND) == BOT_ACTIVITY, F.col(KIND) == ACTIVE_USERS
    # A bot member is `SS:position`: its second of the minute that ends at WINDOW_END.
    second_end = F.timestamp_micros(F.unix_micros(WINDOW_END) - F.lit(MINUTE_US)
                                    + (F.substring(MEMBER, 1, 2).cast("bigint") + 1) * F.lit(SECOND_US))
    key = F.when(is_active, F.col(MEMBER)).otherwise(F.col(KEY)).alias(KEY)  # an active user's id, else the key
    groups = [KIND, F.when(is_bot, second_end).otherwise(F.col(WINDOW_END)).alias(WINDOW_END), key, SUBKEY]
    plans = {
        "job": run_steps(rows, steps[-1:]),
        "set_free": rows.groupBy(*groups).agg(F.count(F.lit(1)).alias(EVENTS), F.min(POSITION).alias(FIRST),
                                              F.max(POSITION).alias(LAST)),
        "set_free_but_bot_minutes": aggregate(rows.select(
            KIND, WINDOW_END, key, SUBKEY, F.when(is_bot, F.col(MEMBER)).alias(MEMBER), POSITION)),
    }
    try:
        return taking_turns(plans, repeat)
    finally:
        events.unpersist()


def invalid_query_seconds(records, settings: JobSettings, repeat: int) -> dict[str, float]:
    """The invalid-events query's steps on the same (valid) records, as the job runs them (valid events in the
    producer's shape left out by one regex) and validating every record, the two taking turns (medians)."""
    plans = {"skip_plainly_valid": run_steps(records, [*invalid_steps(settings), invalid_events]),
             "validate_all": run_steps(records, [*parse_steps(settings, known_shape=False), invalid_events])}
    return taking_turns(plans, repeat)


def planning_ms(spark: SparkSession, records, settings: JobSettings, repeat: int) -> dict[str, int]:
    """Median milliseconds to optimize and plan the aggregates query as Spark does before each micro-batch, with the
    job's settings and with constraint propagation on (Spark's default), the two taking turns; then, for the job's
    settings, to generate the Java source of the plan's whole-stage codegen stages (`job_java_source`), which each
    micro-batch also does before its tasks start (Spark compiles a source once, but builds it for every batch).

    Each run plans a fresh copy of the analyzed plan, as each batch does: a plan's nodes keep what the optimizer inferred
    about them. The first rounds warm the JIT up and are left out. `rule_runs` counts the Catalyst rules one planning runs
    (the optimizer's fixed-point batches run all their rules again while any of them still changes the plan).
    """
    plan = aggregated_rows(settings, [records] * PLANNED_STREAMS, range(PLANNED_STREAMS))
    analyzed = plan._jdf.queryExecution().analyzed()
    jvm = spark._jvm
    mode = jvm.org.apache.spark.sql.execution.CommandExecutionMode.ALL()
    debug = getattr(jvm.org.apache.spark.sql.execution.debug, "package$").__getattr__("MODULE$")
    rules = getattr(jvm.org.apache.spark.sql.catalyst.rules, "RuleExecutor$").__getattr__("MODULE$")
    settings_by_name = {"job": JOB_SQL_CONFS[CONSTRAINT_PROPAGATION], "constraint_propagation": "true"}
    seconds: dict[str, list[float]] = {name: [] for name in [*settings_by_name, "job_java_source"]}
    adaptive = spark.conf.get(ADAPTIVE)
    spark.conf.set(ADAPTIVE, "false")  # as in a streaming query, which plans every stage up front
    warm_up = 5

    def executed_plan():
        return spark._jsparkSession.sessionState().executePlan(analyzed.clone(), mode).executedPlan()

    for _ in range(warm_up + repeat):
        for name, value in settings_by_name.items():
            spark.conf.set(CONSTRAINT_PROPAGATION, value)
            t0 = time.perf_counter()
            executed = executed_plan()
            seconds[name].append(time.perf_counter() - t0)
            if name == "job":
                t0 = time.perf_counter()
                debug.codegenStringSeq(executed)
                seconds["job_java_source"].append(time.perf_counter() - t0)
    spark.conf.set(CONSTRAINT_PROPAGATION, JOB_SQL_CONFS[CONSTRAINT_PROPAGATION])
    rules.resetMetrics()
    executed_plan()
    rule_runs = rules.getCurrentMetrics().numRuns()
    spark.conf.set(ADAPTIVE, adaptive)
    return {**{name: round(statistics.median(runs[warm_up:]) * 1000) for name, runs in seconds.items()},
            "rule_runs": rule_runs}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--events", type=int, default=1_000_000)
    p.add_argument("--users", type=int, default=10_000)
    p.add_argument("--pages", type=int, default=200)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--shuffle-partitions", type=int, default=4)
    p.add_argument("--stages", action="store_true", help="also time each stage on its own")
    p.add_argument("--floor", action="store_true",
                   help="also time the least any plan for these aggregates does (no validation, dedup or sets)")
    p.add_argument("--set-free", action="store_true",
                   help="also time the job's window rows and aggregation against set-free ones (no set per group)")
    p.add_argument("--invalid", action="store_true",
                   help="also time the invalid-events query's steps, as the job runs them and validating every record")
    p.add_argument("--planning", action="store_true",
                   help="also time the planning of one micro-batch of the aggregates query, with and without the job's "
                        "planner settings")
    p.add_argument("--huge-methods", choices=HUGE_METHODS, default="split",
                   help="generated methods over 8,000 bytes: split (the job's default), compiled or interpreted")
    p.add_argument("--gc", choices=COLLECTORS, default="parallel",
                   help="the JVM's garbage collector: parallel (the job's default) or g1 (HotSpot's)")
    ns = p.parse_args()
    builder = SparkSession.builder
    java = " ".join([COLLECTORS[ns.gc], *([COMPILE_HUGE_METHODS] if ns.huge_methods == "compiled" else [])])
    for key, value in {**JOB_SQL_CONFS, **HUGE_METHODS[ns.huge_methods], "spark.driver.defaultJavaOptions": java}.items():
        builder = builder.config(key, value)
    spark = (builder.master("local[*]").appName("clickpulse-bench-job")
             .config("spark.sql.session.timeZone", "UTC").config("spark.ui.enabled", "false")
             .config("spark.sql.shuffle.partitions", str(ns.shuffle_partitions))
             .config("spark.driver.memory", "4g").getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    try:
        settings = JobSettings(bootstrap_servers="unused:9092", mongo_uri="mongodb://unused/", checkpoint_dir="/tmp/x")
        records = kafka_records(spark, ns.events, ns.users, ns.pages)
        records.count()  # materialise the cache: generation is not part of the measurement
        steps = [*parse_steps(settings), *aggregate_steps(settings)]
        seconds = timed(run_steps(records, steps), ns.repeat)
        out_rows = run_steps(records, steps).count()
        median = statistics.median(seconds)
        stages = stage_seconds(records, settings, ns.repeat) if ns.stages else None
        floor = floor_seconds(records, settings, ns.repeat) if ns.floor else None
        set_free = set_free_seconds(records, settings, ns.repeat) if ns.set_free else None
        invalid = invalid_query_seconds(records, settings, ns.repeat) if ns.invalid else None
        planning = planning_ms(spark, records, settings, max(ns.repeat, 10)) if ns.planning else None
        print(json.dumps({
            "benchmark": "job_hot_path_static", "events": ns.events, "users": ns.users, "pages": ns.pages,
            "output_rows": out_rows, "runs_seconds": [round(s, 2) for s in seconds],
            "median_seconds": round(median, 2), "events_per_second": round(ns.events / median),
            "cores": spark.sparkContext.defaultParallelism, "huge_methods": ns.huge_methods,
            "gc": ns.gc,
            **({"stages_median_seconds": stages} if stages else {}),
            **({"floor_median_seconds": floor} if floor else {}),
            **({"rows_and_aggregation_median_seconds": set_free} if set_free else {}),
            **({"invalid_query_median_seconds": invalid} if invalid else {}),
            **({"planning_median_ms": planning} if planning else {}),
        }))
    finally:
        spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
