"""Benchmark: sustained load on the real local stack, end to end (prints JSON).

The producer sends R events/s from U users over P pages for D seconds to a fresh topic, while the streaming job runs
with a processing-time trigger against a Kafka broker and a Mongo-wire server (its own on free loopback ports in a
temporary folder unless --bootstrap-servers/--mongo-uri point at a running stack). A warm-up (by default 400 events
at 200/s) is drained first, so the run starts with a connected job; a longer one (`--warm-up-events`, at
`--warm-up-rate`) also lets the JVM compile the hot code first, as in a job that has run for a while.

Reported:
- achieved rate (the producer's) and processed rate (records the job committed per second, until it caught up);
- lag in records when the producer stops, the largest lag seen while it ran (sampled every 5 s), and the catch-up
  time from the producer's end to lag 0 (every record of the topic committed by both queries);
- the aggregates query's batch durations (p50/p95/max, batches that read records);
- freshness p50/p95/max: for every record, from its Kafka timestamp to the commit of the aggregates batch that read it
  (the checkpoint's commit file, written once the batch's documents are in MongoDB and its state is saved), and its
  p95 per minute of the run (by the records' Kafka timestamps), which shows a cold start and a filling state apart;
- the aggregates query's state rows after the last batch, and the job's peak RSS (driver, JVM and Python workers).

    .venv/bin/python bench/pipeline.py --rate 2000 --users 10000 --pages 50 --duration 600
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from array import array
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/pipeline.py` puts bench/ first, not the repository
    sys.path.insert(0, str(ROOT))

from kafka.admin import KafkaAdminClient, NewTopic  # noqa: E402

from bench.harness import (  # noqa: E402
    BatchRecorder,
    Checkpoint,
    RssSampler,
    add_stack_arguments,
    end_offsets,
    kafka_timestamps,
    percentile,
    produce,
    remove_run_data,
    run_on_stack,
)
from storage import contract as c  # noqa: E402
from storage.client import connect  # noqa: E402
from tests.job.jobrun import job_env  # noqa: E402

log = logging.getLogger("bench.pipeline")
PAGE_SIZE = 4096


def wait_until(condition, timeout: float, what: str, job: subprocess.Popen) -> float:
    """Poll `condition` every 0.2 s; return the seconds it took. Fails if the job died or the time is up."""
    started = time.monotonic()
    while not condition():
        if job.poll() is not None:
            raise RuntimeError(f"the job exited ({job.returncode}) while waiting for {what}")
        if time.monotonic() - started > timeout:
            raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.2)
    return time.monotonic() - started


def caught_up(checkpoints: list[Checkpoint], target: dict[int, int]) -> bool:
    return all(cp.committed()[1] == target for cp in checkpoints)


def freshness(batches: BatchRecorder, stamps: dict[int, array], first: dict[int, int]) -> list[tuple[float, float]]:
    """(Kafka timestamp, seconds from it to the commit of the batch that read it) of each record from `first` on."""
    out: list[tuple[float, float]] = []
    for start, end, committed_at in batches.spans():
        for p, stop in end.items():
            lo = max(start.get(p, 0), first.get(p, 0))
            out.extend((stamps[p][o] / 1000, committed_at - stamps[p][o] / 1000)
                       for o in range(lo, min(stop, len(stamps[p]))))
    return out


def p95_by_minute(fresh: list[tuple[float, float]]) -> list[float]:
    """The freshness p95 of the records of each minute of the run, counted from its first record's timestamp."""
    if not fresh:
        return []
    start = min(stamp for stamp, _ in fresh)
    minutes: dict[int, list[float]] = {}
    for stamp, seconds in fresh:
        minutes.setdefault(int((stamp - start) // 60), []).append(seconds)
    return [round(percentile(minutes[m], 0.95), 2) for m in sorted(minutes)]


def run_bench(ns: argparse.Namespace, bootstrap: str, mongo_uri: str, work: Path) -> dict[str, Any]:
    topic, database = f"bench-{uuid.uuid4().hex[:8]}", f"bench_{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(topic, ns.partitions, 1)])
    finally:
        admin.close()
    checkpoint = work / "checkpoints"
    checkpoints = [Checkpoint(checkpoint / q) for q in c.QUERIES]
    common = ["--bootstrap-servers", bootstrap, "--topic", topic]
    traffic = [*common, "--users", str(ns.users), "--pages", str(ns.pages), "--partitions", str(ns.partitions),
               "--progress-interval", "30s", *ns.producer_arg]
    job_log = work / "job.log"
    job_cmd = [sys.executable, "-m", "streaming_job", *common, "--mongo-uri", mongo_uri, "--database", database,
               "--checkpoint-dir", str(checkpoint), "--trigger", f"processing-time:{ns.trigger}", *ns.job_arg]
    with job_log.open("w") as out:
        job = subprocess.Popen(job_cmd, env=job_env(), cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                               start_new_session=True)
    client = connect(mongo_uri, "clickpulse-bench")
    try:
        log.info("warming up: job log %s", job_log)
        produce([*traffic, "--rate", str(ns.warm_up_rate), "--count", str(ns.warm_up_events), "--seed", "1"],
                work / "producer.log")
        warm = end_offsets(bootstrap, topic)
        wait_until(lambda: caught_up(checkpoints, warm), ns.catch_up_timeout, "the warm-up to drain", job)
        log.info("running: %s events/s from %s users for %s s", ns.rate, ns.users, ns.duration)
        lag_samples: list[int] = []
        stop_sampling = threading.Event()

        def sample_lag() -> None:
            while not stop_sampling.wait(5.0):
                try:
                    end = end_offsets(bootstrap, topic)
                    done = checkpoints[0].committed()[1]
                    lag_samples.append(sum(end.values()) - sum(done.get(p, 0) for p in end))
                except Exception as e:  # a sample lost is not a result lost
                    log.debug("lag sample failed: %s", e)

        sampler = threading.Thread(target=sample_lag, name="lag", daemon=True)
        with RssSampler(job.pid) as rss, BatchRecorder(checkpoints[0]) as batches:
            sampler.start()
            started = time.monotonic()
            summary = produce([*traffic, "--rate", str(ns.rate), "--duration", f"{ns.duration}s", "--seed", "2"],
                              work / "producer.log")
            produced_s = time.monotonic() - started
            stop_sampling.set()
            sampler.join()
            final = end_offsets(bootstrap, topic)
            at_stop = checkpoints[0].committed()[1]
            lag_at_stop = sum(final.values()) - sum(at_stop.get(p, 0) for p in final)
            catch_up_s = wait_until(lambda: caught_up(checkpoints, final), ns.catch_up_timeout,
                                    "the job to catch up", job)
        total_s = time.monotonic() - started
        records = sum(final.values()) - sum(warm.values())
        stamps = kafka_timestamps(bootstrap, topic, final)
        fresh_by_record = freshness(batches, stamps, warm)
        fresh = [seconds for _, seconds in fresh_by_record]
        db = client[database]
        metrics = [m for m in db[c.PIPELINE_METRICS].find({c.QUERY: c.AGGREGATES_QUERY})]
        run_batches = [m for m in metrics if m[c.INPUT_ROWS] > 0]
        durations = [m[c.BATCH_DURATION_MS] / 1000 for m in run_batches]
        last = max(metrics, key=lambda m: m[c.BATCH_ID])
        phases = {k: round(statistics.median(m.get(c.PHASES_MS, {}).get(k, 0) for m in run_batches))
                  for k in sorted({k for m in run_batches for k in m.get(c.PHASES_MS, {})})}
        # Each stateful operator's median timings over the run, and its state rows after the last batch.
        operators = {
            op[c.OPERATOR] + f"#{i}": {
                **{k: round(statistics.median(m[c.OPERATORS][i][k] for m in run_batches if len(m.get(c.OPERATORS, [])) > i))
                   for k in (c.UPDATE_MS, c.REMOVAL_MS, c.COMMIT_MS)},
                c.STATE_ROWS: op[c.STATE_ROWS]}
            for i, op in enumerate(last.get(c.OPERATORS, []))
        }
        return {
            "benchmark": "pipeline_sustained_load",
            "rate_target": ns.rate, "users": ns.users, "pages": ns.pages, "duration_s": ns.duration,
            "trigger": ns.trigger, "partitions": ns.partitions, "job_args": ns.job_arg,
            "warm_up_events": ns.warm_up_events, "warm_up_rate": ns.warm_up_rate,
            "records": records,
            "achieved_rate": summary["achieved_rate"],
            "processed_rate": round(records / total_s, 1),
            "lag_at_producer_stop_records": lag_at_stop,
            "lag_max_while_producing_records": max(lag_samples, default=0),
            "lag_samples_every_5s": lag_samples,
            "catch_up_s": round(catch_up_s, 2),
            "producer_s": round(produced_s, 1),
            "batch_duration_s": {"p50": round(statistics.median(durations), 2),
                                 "p95": round(percentile(durations, 0.95), 2), "max": round(max(durations), 2),
                                 "batches": len(durations)},
            "freshness_s": {"p50": round(statistics.median(fresh), 2), "p95": round(percentile(fresh, 0.95), 2),
                            "max": round(max(fresh), 2), "records": len(fresh)},
            "freshness_p95_by_minute_s": p95_by_minute(fresh_by_record),
            "aggregates_phases_ms_p50": phases,
            "aggregates_operators_p50": operators,
            "state_rows": last[c.STATE_ROWS],
            "job_peak_rss_mb": round(rss.peak_bytes / 2**20),
            "cores": os.cpu_count(),
        }
    finally:
        client.close()
        try:
            job.send_signal(signal.SIGTERM)  # the job stops its queries and its JVM itself
            job.wait(timeout=60)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(job.pid, signal.SIGKILL)
        if not ns.keep:
            remove_run_data(bootstrap, mongo_uri, topic, database)


def main_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python bench/pipeline.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rate", type=int, default=2000, help="events per second (default %(default)s)")
    p.add_argument("--users", type=int, default=10_000, help="distinct users (default %(default)s)")
    p.add_argument("--pages", type=int, default=50, help="distinct pages (default %(default)s)")
    p.add_argument("--duration", type=int, default=600, help="seconds of traffic (default %(default)s)")
    p.add_argument("--trigger", default="1s", help="the job's processing-time trigger (default %(default)s)")
    p.add_argument("--partitions", type=int, default=3, help="topic partitions (default %(default)s)")
    p.add_argument("--warm-up-events", type=int, default=400,
                   help="events the job drains before the run is measured (default %(default)s)")
    p.add_argument("--warm-up-rate", type=int, default=200, help="their rate, events per second (default %(default)s)")
    p.add_argument("--catch-up-timeout", type=float, default=900, help="give up waiting after this many seconds")
    p.add_argument("--producer-arg", action="append", default=[], help="extra producer argument (repeatable)")
    add_stack_arguments(p)
    return p


def run_cli(args: list[str] | None = None) -> int:
    return run_on_stack(main_parser(), args, ("rate", "users", "pages", "duration", "partitions"), "pipeline", run_bench)


if __name__ == "__main__":
    sys.exit(run_cli())
