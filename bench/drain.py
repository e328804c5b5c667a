"""Benchmark: how fast the job drains a backlog end to end, writes included (prints JSON).

Writes N valid events from U users over P pages, spread evenly over S of event time, to a fresh topic (through the
producer, replaying a generated file), then runs the job once with `--trigger available-now` against the real local
stack and times it:
- `job_s`: the job's process from start to exit (JVM start, Spark planning, every batch, shutdown);
- `drain_s`: from the start of its first batch to the commit of its last (what a running job would take);
- events/s over both, batches, rows dropped as late, state rows, and what it stored.

    .venv/bin/python bench/drain.py --events 1000000 --users 1000 --span-seconds 1800
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/drain.py` puts bench/ first, not the repository
    sys.path.insert(0, str(ROOT))

from kafka.admin import KafkaAdminClient, NewTopic  # noqa: E402

from bench.harness import (  # noqa: E402
    BatchRecorder,
    Checkpoint,
    RssSampler,
    add_stack_arguments,
    end_offsets,
    produce,
    remove_run_data,
    run_on_stack,
)
from storage import contract as c  # noqa: E402
from storage.client import connect  # noqa: E402
from tests.job.jobrun import job_env  # noqa: E402

log = logging.getLogger("bench.drain")
TYPES = ("page_view", "page_view", "page_view", "click", "add_to_cart", "search", "login")


def write_events(path: Path, n: int, users: int, pages: int, start: datetime, span: timedelta, seed: int = 7) -> None:
    """`n` valid events as JSON lines, evenly spread over `span` from `start` (each user keeps one session)."""
    rng = random.Random(seed)
    step = span / n
    with path.open("w") as out:
        for i in range(n):
            t = start + i * step
            u = rng.randrange(users)
            etype = rng.choice(TYPES)
            ev = {"event_id": f"d{i}", "timestamp": t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z",
                  "user_id": f"user_{u}", "session_id": f"s_{u}_{i * 10 // n}", "event_type": etype}
            if etype == "page_view":
                ev["page_url"] = f"/page/{min(int(rng.paretovariate(1.2)), pages) - 1}"
            out.write(json.dumps(ev, separators=(",", ":")) + "\n")


def run_bench(ns: argparse.Namespace, bootstrap: str, mongo_uri: str, work: Path) -> dict[str, Any]:
    topic, database = f"drain-{uuid.uuid4().hex[:8]}", f"drain_{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(topic, ns.partitions, 1)])
    finally:
        admin.close()
    span = timedelta(seconds=ns.span_seconds)
    start = datetime.now(UTC).replace(second=0, microsecond=0) - span - timedelta(hours=1)
    events = work / "events.jsonl"
    write_events(events, ns.events, ns.users, ns.pages, start, span)
    log.info("producing %s events to %s", f"{ns.events:,}", topic)
    summary = produce(["--bootstrap-servers", bootstrap, "--topic", topic, "--from-file", str(events), "--rate", "max",
                       "--progress-interval", "30s"], work / "producer.log")
    records = sum(end_offsets(bootstrap, topic).values())
    checkpoint = work / "checkpoints"
    cmd = [sys.executable, "-m", "streaming_job", "--bootstrap-servers", bootstrap, "--topic", topic, "--mongo-uri",
           mongo_uri, "--database", database, "--checkpoint-dir", str(checkpoint), "--trigger", "available-now",
           *ns.job_arg]
    log.info("draining with the job (log %s)", work / "job.log")
    with (work / "job.log").open("w") as out:
        started = time.monotonic()
        job = subprocess.Popen(cmd, env=job_env(), cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                               start_new_session=True)
        with RssSampler(job.pid) as rss, BatchRecorder(Checkpoint(checkpoint / c.AGGREGATES_QUERY)) as recorded:
            code = job.wait(timeout=ns.timeout)
        job_s = time.monotonic() - started
    if code != 0:
        raise RuntimeError(f"the job exited {code}; see {work / 'job.log'}")
    batches = recorded.seen
    drain_s = max(committed for _, committed, _ in batches.values()) - min(planned for *_, planned in batches.values())
    client = connect(mongo_uri, "clickpulse-bench")
    try:
        db = client[database]
        metrics = list(db[c.PIPELINE_METRICS].find({c.QUERY: c.AGGREGATES_QUERY}))
        stored = {coll: db[coll].estimated_document_count() for coll in c.AGGREGATE_COLLECTIONS}
    finally:
        client.close()
        if not ns.keep:
            remove_run_data(bootstrap, mongo_uri, topic, database)
    return {
        "benchmark": "drain_available_now", "events": ns.events, "records": records, "users": ns.users,
        "pages": ns.pages, "span_s": ns.span_seconds, "partitions": ns.partitions, "job_args": ns.job_arg,
        "producer_rate": summary["achieved_rate"],
        "job_s": round(job_s, 1), "job_events_per_s": round(records / job_s),
        "drain_s": round(drain_s, 1), "drain_events_per_s": round(records / drain_s),
        "batches": len(batches), "dropped_by_watermark": sum(m[c.DROPPED_BY_WATERMARK] for m in metrics),
        "state_rows": max(metrics, key=lambda m: m[c.BATCH_ID])[c.STATE_ROWS], "stored_documents": stored,
        "job_peak_rss_mb": round(rss.peak_bytes / 2**20),
    }


def main_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python bench/drain.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--events", type=int, default=1_000_000, help="events in the backlog (default %(default)s)")
    p.add_argument("--users", type=int, default=1000, help="distinct users (default %(default)s)")
    p.add_argument("--pages", type=int, default=50, help="distinct pages (default %(default)s)")
    p.add_argument("--span-seconds", type=int, default=1800, help="event time they cover (default %(default)s)")
    p.add_argument("--partitions", type=int, default=3, help="topic partitions (default %(default)s)")
    p.add_argument("--timeout", type=float, default=3600, help="give up after this many seconds")
    add_stack_arguments(p)
    return p


def run_cli(args: list[str] | None = None) -> int:
    return run_on_stack(main_parser(), args, ("events", "users", "pages", "span_seconds", "partitions"), "drain", run_bench)


if __name__ == "__main__":
    sys.exit(run_cli())
