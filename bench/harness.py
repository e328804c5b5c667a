"""What the end-to-end benchmarks share: a local stack (or a given one), the job's checkpoint as a record of its
batches, Kafka offsets and timestamps, the job's memory, and the producer run to its end."""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from array import array
from collections.abc import Callable
from pathlib import Path
from typing import Any, Self

from kafka import KafkaConsumer, TopicPartition

from devstack.paths import ROOT
from devstack.stack import LocalStack
from tests.job.jobrun import job_env

log = logging.getLogger("bench")

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
        """Next offset to read per partition after `batch` (one topic, any number of sources)."""
        lines = (self.path / "offsets" / str(batch)).read_text().splitlines()
        out: dict[int, int] = {}
        for line in lines[2:]:  # one line per source (the aggregates query reads a stream per partition)
            for topic_offsets in json.loads(line).values():
                out.update({int(p): int(o) for p, o in topic_offsets.items()})
        return out

    def committed(self) -> tuple[int | None, dict[int, int]]:
        """(last committed batch, its end offsets)."""
        done = self._ids("commits")
        return (done[-1], self.offsets(done[-1])) if done else (None, {})

    def batches(self) -> dict[int, tuple[dict[int, int], float, float]]:
        """{batch: (end offsets, commit time, planning time)} of the committed batches still in the checkpoint (Spark
        keeps the newest 100: a long run is recorded while it runs, see BatchRecorder)."""
        out = {}
        for b in self._ids("commits"):
            try:
                planned = (self.path / "offsets" / str(b)).stat().st_mtime
                out[b] = (self.offsets(b), (self.path / "commits" / str(b)).stat().st_mtime, planned)
            except FileNotFoundError:  # cleaned up by Spark meanwhile
                continue
        return out


class EverySecond:
    """A daemon thread that calls `tick()` every second between `with` entry and exit (for samplers)."""

    def __init__(self, name: str) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def tick(self) -> None:
        raise NotImplementedError

    def _loop(self) -> None:
        while not self._stop.wait(1.0):
            self.tick()

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


class BatchRecorder(EverySecond):
    """Records every committed batch of a query (its end offsets and commit time) while the job runs, every second."""

    def __init__(self, checkpoint: Checkpoint) -> None:
        super().__init__("batches")
        self.checkpoint = checkpoint
        self.seen: dict[int, tuple[dict[int, int], float, float]] = {}

    def tick(self) -> None:
        self.record()

    def record(self) -> None:
        for b, entry in self.checkpoint.batches().items():
            self.seen.setdefault(b, entry)

    def spans(self) -> list[tuple[dict[int, int], dict[int, int], float]]:
        """(start offsets, end offsets, commit time) of each recorded batch, in order."""
        out, previous = [], {}
        for b in sorted(self.seen):
            end, committed_at, _ = self.seen[b]
            out.append((previous, end, committed_at))
            previous = end
        return out

    def __exit__(self, *exc: object) -> None:
        super().__exit__(*exc)
        self.record()  # the batches committed in the last second


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


class RssSampler(EverySecond):
    """Peak resident memory of a process group (the job: Python driver, JVM and Python workers), sampled every 1 s."""

    def __init__(self, pgid: int) -> None:
        super().__init__("rss")
        self.pgid = pgid
        self.peak_bytes = 0

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

    def tick(self) -> None:
        self.peak_bytes = max(self.peak_bytes, self._sample())



def produce(args: list[str], log_file: Path) -> dict[str, Any]:
    """Run the producer to its end; return its JSON summary."""
    with log_file.open("a") as err:
        done = subprocess.run([sys.executable, "-m", "producer", *args], stdout=subprocess.PIPE, stderr=err,
                              text=True, cwd=ROOT, env=job_env(), check=False)
    if done.returncode != 0:
        raise RuntimeError(f"producer exited {done.returncode}; see {log_file}")
    return json.loads(done.stdout.strip().splitlines()[-1])




def remove_run_data(bootstrap: str, mongo_uri: str, topic: str, database: str) -> None:
    """Delete a run's topic and drop its database. On a stack that outlives the benchmark (`--bootstrap-servers`,
    `--mongo-uri`) runs would pile up otherwise: FerretDB keeps every database's tables in PostgreSQL."""
    from kafka.admin import KafkaAdminClient

    from storage.client import connect

    try:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        try:
            admin.delete_topics([topic])
        finally:
            admin.close()
        client = connect(mongo_uri, "clickpulse-bench")
        try:
            client.drop_database(database)
        finally:
            client.close()
        log.info("removed topic %s and database %s (--keep keeps them)", topic, database)
    except Exception as e:  # the result is measured already; leftovers are only litter
        log.warning("could not remove topic %s and database %s: %s", topic, database, e)


def add_stack_arguments(p: argparse.ArgumentParser) -> None:
    """Where the benchmark runs (its own stack unless given one), what it passes the job, and whether it keeps logs."""
    p.add_argument("--bootstrap-servers", help="use this running Kafka instead of starting one")
    p.add_argument("--mongo-uri", help="use this running Mongo-wire server instead of starting one")
    p.add_argument("--job-arg", action="append", default=[], help="extra job argument (repeatable, e.g. --job-arg=--x)")
    p.add_argument("--keep", action="store_true",
                   help="keep the work folder (logs, checkpoints), and the run's topic and database")


def run_on_stack(parser: argparse.ArgumentParser, args: list[str] | None, positive: tuple[str, ...], name: str,
                 bench: Callable[[argparse.Namespace, str, str, Path], dict[str, Any]]) -> int:
    """Parse `args` (the `positive` ones must be at least 1), run `bench(ns, bootstrap, mongo_uri, work)` on a stack of
    its own (free loopback ports, a temporary folder) or the one given, print its result as one JSON line, clean up."""
    ns = parser.parse_args(args)
    if min(getattr(ns, p) for p in positive) < 1:
        parser.error(f"{', '.join('--' + p.replace('_', '-') for p in positive)} must be at least 1")
    if bool(ns.bootstrap_servers) != bool(ns.mongo_uri):
        parser.error("give both --bootstrap-servers and --mongo-uri, or neither")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("kafka").setLevel(logging.WARNING)
    work = Path(tempfile.mkdtemp(prefix=f"clickpulse-bench-{name}-"))
    stack = None if ns.bootstrap_servers else LocalStack.on_free_ports(work / "stack")
    try:
        if stack is not None:
            log.info("starting a local stack in %s", work / "stack")
            stack.up()
        result = bench(ns, ns.bootstrap_servers or stack.bootstrap_servers, ns.mongo_uri or stack.mongo_uri, work)
        result["server"] = "given" if stack is None else stack.mongo.flavour
    finally:
        if stack is not None:
            stack.down()
            if stack.mongo.postgres is not None:
                stack.mongo.postgres.remove()
        if ns.keep:
            log.info("work folder kept: %s", work)
        else:
            shutil.rmtree(work, ignore_errors=True)
    sys.stdout.write(json.dumps(result) + "\n")
    return 0
