"""Benchmark: sustained load on the real local stack, end to end (prints JSON).

The producer sends R events/s from U users over P pages for D seconds to a fresh topic, while the streaming job runs
with a processing-time trigger against a Kafka broker and a Mongo-wire server (its own on free loopback ports in a
temporary folder unless --bootstrap-servers/--mongo-uri point at a running stack). A warm-up of a few hundred events
is drained first, so the run starts with a compiled, connected job.

Reported:
- achieved rate (the producer's) and processed rate (records the job committed per second, until it caught up);
- lag in records when the producer stops, the largest lag seen while it ran (sampled every 5 s), and the catch-up
  time from the producer's end to lag 0 (every record of the topic committed by both queries);
- the aggregates query's batch durations (p50/p95/max, batches that read records);
- freshness p50/p95/max: for every record, from its Kafka timestamp to the commit of the aggregates batch that read it
  (the checkpoint's commit file, written once the batch's documents are in MongoDB and its state is saved);
- the aggregates query's state rows after the last batch, and the job's peak RSS (driver, JVM and Python workers).

    .venv/bin/python bench/pipeline.py --rate 2000 --users 10000 --pages 50 --duration 600
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from array import array
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/pipeline.py` puts bench/ first, not the repository
    sys.path.insert(0, str(ROOT))

from kafka import KafkaConsumer, TopicPartition  # noqa: E402
from kafka.admin import KafkaAdminClient, NewTopic  # noqa: E402

from devstack.stack import LocalStack  # noqa: E402
from storage import contract as c  # noqa: E402
from storage.client import connect  # noqa: E402
from tests.job.jobrun import job_env  # noqa: E402

log = logging.getLogger("bench.pipeline")
PAGE_SIZE = 4096


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (0..1) by nearest rank; NaN-free input."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


class Checkpoint:
    """Reads one query's Spark checkpoint: what each batch read (offsets) and when it finished (commit file mtime)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _ids(self, folder: str) -> list[int]:
        d = self.path / folder
        return sorted(int(p.name) for p in d.iterdir() if p.name.isdigit()) if d.is_dir() else []

    def offsets(self, batch: int) -> dict[int, int]:
        """Next offset to read per partition after `batch` (one topic, one source)."""
        lines = (self.path / "offsets" / str(batch)).read_text().splitlines()
        out: dict[int, int] = {}
        for topic_offsets in json.loads(lines[2]).values():
            out.update({int(p): int(o) for p, o in topic_offsets.items()})
        return out

    def committed(self) -> tuple[int | None, dict[int, int]]:
        """(last committed batch, its end offsets)."""
        done = self._ids("commits")
        return (done[-1], self.offsets(done[-1])) if done else (None, {})

    def batches(self) -> list[tuple[int, dict[int, int], dict[int, int], float]]:
        """(batch, start offsets, end offsets, commit time) of every committed batch."""
        out, previous = [], None
        for b in self._ids("commits"):
            end = self.offsets(b)
            start = previous if previous is not None else (self.offsets(b - 1) if b > 0 else {})
            out.append((b, start, end, (self.path / "commits" / str(b)).stat().st_mtime))
            previous = end
        return out


def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        return {tp.partition: int(o) for tp, o in consumer.end_offsets(parts).items()}
    finally:
        consumer.close()


def kafka_timestamps(bootstrap: str, topic: str, until: dict[int, int]) -> dict[int, array]:
    """Every record's Kafka timestamp (ms), per partition, indexed by offset."""
    out = {p: array("q") for p in until}
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest",
                             max_poll_records=5000, fetch_max_bytes=64 * 1024 * 1024)
    try:
        consumer.assign([TopicPartition(topic, p) for p in until])
        consumer.seek_to_beginning()
        remaining = sum(until.values())
        while remaining > 0:
            for tp, records in consumer.poll(timeout_ms=2000).items():
                for r in records:
                    if r.offset < until[tp.partition]:
                        out[tp.partition].append(r.timestamp)
                        remaining -= 1
    finally:
        consumer.close()
    return out


class RssSampler:
    """Peak resident memory of a process group (the job: Python driver, JVM and Python workers), sampled every 1 s."""

    def __init__(self, pgid: int) -> None:
        self.pgid = pgid
        self.peak_bytes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="rss", daemon=True)

    def _sample(self) -> int:
        total = 0
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                if os.getpgid(int(proc.name)) != self.pgid:
                    continue
                for line in (proc / "status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
            except (OSError, ProcessLookupError):
                continue
        return total

    def _loop(self) -> None:
        while not self._stop.wait(1.0):
            self.peak_bytes = max(self.peak_bytes, self._sample())

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def produce(args: list[str], log_file: Path) -> dict[str, Any]:
    """Run the producer to its end; return its JSON summary."""
    with log_file.open("a") as err:
        done = subprocess.run([sys.executable, "-m", "producer", *args], stdout=subprocess.PIPE, stderr=err,
                              text=True, cwd=ROOT, env=job_env(), check=False)
    if done.returncode != 0:
        raise RuntimeError(f"producer exited {done.returncode}; see {log_file}")
    return json.loads(done.stdout.strip().splitlines()[-1])


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


def freshness(cp: Checkpoint, stamps: dict[int, array], first: dict[int, int]) -> list[float]:
    """Seconds from each record's Kafka timestamp to the commit of the batch that read it (records from `first` on)."""
    out: list[float] = []
    for _, start, end, committed_at in cp.batches():
        for p, stop in end.items():
            lo = max(start.get(p, 0), first.get(p, 0))
            out.extend(committed_at - stamps[p][o] / 1000 for o in range(lo, min(stop, len(stamps[p]))))
    return out


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
        produce([*traffic, "--rate", "200", "--count", "400", "--seed", "1"], work / "producer.log")
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
        with RssSampler(job.pid) as rss:
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
        fresh = freshness(checkpoints[0], stamps, warm)
        db = client[database]
        metrics = [m for m in db[c.PIPELINE_METRICS].find({c.QUERY: c.AGGREGATES_QUERY})]
        run_batches = [m for m in metrics if m[c.INPUT_ROWS] > 0]
        durations = [m[c.BATCH_DURATION_MS] / 1000 for m in run_batches]
        last = max(metrics, key=lambda m: m[c.BATCH_ID])
        return {
            "benchmark": "pipeline_sustained_load",
            "rate_target": ns.rate, "users": ns.users, "pages": ns.pages, "duration_s": ns.duration,
            "trigger": ns.trigger, "partitions": ns.partitions, "job_args": ns.job_arg,
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
            "state_rows": last[c.STATE_ROWS],
            "job_peak_rss_mb": round(rss.peak_bytes / 2**20),
            "cores": os.cpu_count(),
        }
    finally:
        client.close()
        try:
            os.killpg(job.pid, signal.SIGTERM)
            job.wait(timeout=60)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(job.pid, signal.SIGKILL)


def main_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python bench/pipeline.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rate", type=int, default=2000, help="events per second (default %(default)s)")
    p.add_argument("--users", type=int, default=10_000, help="distinct users (default %(default)s)")
    p.add_argument("--pages", type=int, default=50, help="distinct pages (default %(default)s)")
    p.add_argument("--duration", type=int, default=600, help="seconds of traffic (default %(default)s)")
    p.add_argument("--trigger", default="1s", help="the job's processing-time trigger (default %(default)s)")
    p.add_argument("--partitions", type=int, default=3, help="topic partitions (default %(default)s)")
    p.add_argument("--catch-up-timeout", type=float, default=900, help="give up waiting after this many seconds")
    p.add_argument("--bootstrap-servers", help="use this running Kafka instead of starting one")
    p.add_argument("--mongo-uri", help="use this running Mongo-wire server instead of starting one")
    p.add_argument("--job-arg", action="append", default=[], help="extra job argument (repeatable, e.g. --job-arg=--x)")
    p.add_argument("--producer-arg", action="append", default=[], help="extra producer argument (repeatable)")
    p.add_argument("--keep", action="store_true", help="keep the work folder (logs, checkpoints)")
    return p


def run_cli(args: list[str] | None = None) -> int:
    ns = main_parser().parse_args(args)
    if min(ns.rate, ns.users, ns.pages, ns.duration, ns.partitions) < 1:
        main_parser().error("rate, users, pages, duration and partitions must be at least 1")
    if bool(ns.bootstrap_servers) != bool(ns.mongo_uri):
        main_parser().error("give both --bootstrap-servers and --mongo-uri, or neither")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("kafka").setLevel(logging.WARNING)
    work = Path(tempfile.mkdtemp(prefix="clickpulse-bench-pipeline-"))
    stack = None if ns.bootstrap_servers else LocalStack.on_free_ports(work / "stack")
    try:
        if stack is not None:
            log.info("starting a local stack in %s", work / "stack")
            stack.up()
        result = run_bench(ns, ns.bootstrap_servers or stack.bootstrap_servers, ns.mongo_uri or stack.mongo_uri, work)
        result["server"] = "given" if stack is None else stack.mongo.flavour
    finally:
        if stack is not None:
            stack.down()
            if stack.mongo.postgres is not None:
                stack.mongo.postgres.remove()
        if not ns.keep:
            import shutil

            shutil.rmtree(work, ignore_errors=True)
        else:
            log.info("work folder kept: %s", work)
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli())
