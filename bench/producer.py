"""Benchmark the producer against a local Kafka broker it starts itself; print JSON.

Measures: the generator alone, kafka-python's send path alone (pre-built events), the producer's maximum sustained
rate (events handed to Kafka and confirmed with acks=all), the rate error at 1k / 10k / 50k events/s over every
10 s span after warm-up, and a cProfile of a max-rate run (main thread) showing where the time goes.

    .venv/bin/python bench/producer.py [--quick]     # about 2 minutes; --quick about 1
"""

from __future__ import annotations

import argparse
import cProfile
import json
import logging
import pstats
import shutil
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from devstack.stack import LocalStack
from producer.delivery import KafkaSink, connect
from producer.generator import TrafficModel
from producer.runner import run
from producer.settings import ProducerSettings

# The CLI's default traffic: 2% invalid, 1% late, 1% duplicates.
DEFAULT_FAULTS = {"invalid_ratio": 0.02, "late_ratio": 0.01, "duplicate_ratio": 0.01}
WARMUP = 3.0
WINDOW = 10.0


def settings(bootstrap: str, **changes) -> ProducerSettings:
    return ProducerSettings(bootstrap_servers=bootstrap, topic=f"bench-{uuid.uuid4().hex[:8]}", seed=1,
                            progress_interval=3600, **{**DEFAULT_FAULTS, **changes})


def generator_only(n: int = 300_000) -> dict[str, float]:
    model = TrafficModel(ProducerSettings(seed=1, **DEFAULT_FAULTS))
    size = 0
    t0 = time.perf_counter()
    for i in range(n):
        size += len(model.next_event(i // 100, 1_795_428_930_000 + i // 100).value)
    dt = time.perf_counter() - t0
    return {"events_per_second": round(n / dt), "us_per_event": round(dt / n * 1e6, 2), "mean_event_bytes": round(size / n, 1)}


def send_only(bootstrap: str, n: int = 300_000) -> dict[str, float]:
    """kafka-python's path alone: pre-built events handed to the sink as fast as possible, then flushed."""
    s = settings(bootstrap, rate=0)
    model = TrafficModel(s)
    events = [model.next_event(i // 100) for i in range(n)]
    sink = KafkaSink(connect(s), s.topic)
    t0 = time.perf_counter()
    for e in events:
        sink.send(e.key, e.value)
        if sink.handed % 1000 == 0:
            sink.reap()
    handed = time.perf_counter() - t0
    sink.close(60)
    total = time.perf_counter() - t0
    return {"events_per_second_handed": round(n / handed), "events_per_second_confirmed": round(sink.acked / total),
            "us_per_event": round(handed / n * 1e6, 2), "failed": sink.failed}


def measured_run(bootstrap: str, rate: float, seconds: float) -> dict[str, object]:
    """Run the real producer loop for `seconds`, sampling the handed/confirmed counters every 0.25 s."""
    s = settings(bootstrap, rate=rate, duration=seconds)
    sink = KafkaSink(connect(s), s.topic)
    samples: list[tuple[float, int, int]] = []
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.25):
            samples.append((time.monotonic(), sink.handed, sink.acked))

    sampler = threading.Thread(target=sample, daemon=True)
    start = time.monotonic()
    samples.append((start, 0, 0))
    sampler.start()
    summary = run(s, TrafficModel(s), sink, threading.Event())
    done.set()
    sampler.join()
    # Only the sending part (the counters stop moving once the schedule ends; the flush follows).
    sending = [x for x in samples if x[0] - start <= seconds]
    warm = [x for x in sending if x[0] - start >= WARMUP]
    t_a, n_a, c_a = warm[0]
    t_b, n_b, c_b = warm[-1]
    out: dict[str, object] = {
        "target_rate": rate or "max",
        "seconds": seconds,
        "generated": summary["generated"],
        "confirmed": summary["sent"],
        "failed": summary["failed"],
        "sustained_rate_handed": round((n_b - n_a) / (t_b - t_a)),
        "sustained_rate_confirmed": round((c_b - c_a) / (t_b - t_a)),
        "pacing_stalls": summary["pacing_stalls"],
    }
    if rate:
        errors = []
        for i, (t_i, n_i, _) in enumerate(warm):
            later = [x for x in warm[i:] if x[0] - t_i >= WINDOW]
            if later:
                t_j, n_j, _ = later[0]
                errors.append(abs((n_j - n_i) / (t_j - t_i) - rate) / rate * 100)
        out["windows_10s"] = len(errors)
        out["max_rate_error_pct_10s"] = round(max(errors), 3) if errors else None
        out["mean_rate_error_pct_10s"] = round(sum(errors) / len(errors), 3) if errors else None
    return out


def profiled(bootstrap: str, count: int = 150_000, top: int = 14) -> dict[str, object]:
    """cProfile of a max-rate run (main thread only; kafka-python's sender thread is not in it)."""
    s = settings(bootstrap, rate=0, count=count)
    sink = KafkaSink(connect(s), s.topic)
    profile = cProfile.Profile()
    profile.enable()
    run(s, TrafficModel(s), sink, threading.Event())
    profile.disable()
    stats = pstats.Stats(profile)
    total = sum(row[2] for row in stats.stats.values())  # tottime
    rows = sorted(stats.stats.items(), key=lambda kv: kv[1][2], reverse=True)[:top]

    def name(key: tuple) -> str:
        file, line, func = key
        return f"{'/'.join(Path(file).parts[-2:])}:{line}({func})"

    cum = {name(k): v[3] for k, v in stats.stats.items()}
    pick = {
        "generator (TrafficModel.next_event)": "producer/generator.py",
        "kafka-python KafkaProducer.send": "producer/kafka.py",
    }
    shares = {}
    for label, where in pick.items():
        hits = [v for k, v in cum.items() if k.startswith(where) and ("next_event" in k or "(send)" in k)]
        shares[label] = round(max(hits, default=0.0) / total * 100, 1)
    return {
        "events": count,
        "main_thread_seconds_profiled": round(total, 2),
        "share_of_main_thread_pct": shares,
        "top_by_own_time": [
            {"function": name(k), "calls": v[1], "own_s": round(v[2], 3), "own_pct": round(v[2] / total * 100, 1)}
            for k, v in rows
        ],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="shorter runs (rate windows still 10 s)")
    ns = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("kafka").setLevel(logging.CRITICAL)
    max_seconds, rate_seconds = (12.0, 14.0) if ns.quick else (20.0, 16.0)
    tmp = Path(tempfile.mkdtemp(prefix="clickpulse-bench-"))
    stack = LocalStack.on_free_ports(tmp)
    result: dict[str, object] = {"benchmark": "producer"}
    started = time.monotonic()
    try:
        stack.kafka.start()
        from kafka.record import util as record_util

        result["environment"] = {
            "python": sys.version.split()[0],
            "crc32c_c_extension": getattr(record_util, "crc32c_c", None) is not None,
            "broker": stack.bootstrap_servers,
        }
        result["generator_only"] = generator_only()
        result["send_only"] = send_only(stack.bootstrap_servers)
        result["max_rate"] = measured_run(stack.bootstrap_servers, 0, max_seconds)
        result["rates"] = [measured_run(stack.bootstrap_servers, r, rate_seconds) for r in (1000, 10_000, 50_000)]
        result["profile"] = profiled(stack.bootstrap_servers)
    finally:
        stack.kafka.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    result["bench_seconds"] = round(time.monotonic() - started, 1)
    sys.stdout.write(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
