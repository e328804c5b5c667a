"""`make demo`: the whole pipeline on the local stack: producer, streaming job and report, until Ctrl-C."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

from devstack.paths import DATA, ROOT, SPARK_JARS
from devstack.stack import LocalStack

log = logging.getLogger("devstack.demo")


def _start(name: str, argv: list[str], env: dict[str, str], logs: Path) -> subprocess.Popen:
    out = (logs / f"{name}.log").open("ab")
    log.info("starting %s (log: %s)", name, logs / f"{name}.log")
    return subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def _stop(name: str, proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    # SIGTERM to the program only: the job then stops its queries and its JVM gracefully (a SIGTERM to the whole
    # group would kill the JVM under it first).
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    log.info("%s stopped", name)


def run_demo(stack: LocalStack, rate: int = 1000, users: int = 5000, port: int = 8501) -> int:
    """Run producer and job in the background and the report in the foreground; stop all on exit.

    Realistic traffic: 1,000 events/s from 5,000 users over 50 pages (1% of them bots), a batch every second, which
    the local stack keeps up with (bench/pipeline.py holds 2,000 events/s on 2 cores).
    """
    logs = DATA / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "CLICKPULSE_BOOTSTRAP_SERVERS": stack.bootstrap_servers,
        "CLICKPULSE_MONGO_URI": stack.mongo_uri,
        # Checkpoints belong to the stack whose Kafka offsets they record.
        "CLICKPULSE_CHECKPOINT_DIR": str(stack.data_dir / "checkpoints"),
        "CLICKPULSE_SPARK_JARS": ",".join(str(p) for p in sorted(SPARK_JARS.glob("*.jar"))),
        "PYSPARK_PYTHON": sys.executable,
    }
    background = {
        "producer": _start("producer", [sys.executable, "-m", "producer", "--rate", str(rate), "--users", str(users),
                                        "--pages", "50", "--bot-ratio", "0.01"], env, logs),
        "job": _start("job", [sys.executable, "-m", "streaming_job", "--trigger", "processing-time:1s"], env, logs),
    }
    log.info("report at http://localhost:%d (Ctrl-C stops producer, job and report; `make stack-down` the servers)",
             port)
    try:
        report = subprocess.run([sys.executable, "-m", "reporting", "--port", str(port)], cwd=ROOT, env=env,
                                check=False)
        return report.returncode
    except KeyboardInterrupt:
        return 0
    finally:
        for name, proc in background.items():
            _stop(name, proc)
