"""What the job records, written by the job's own writer (streaming_job.metrics), for the alerts program to read."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime
from pathlib import Path

from devstack.paths import ROOT
from streaming_job.metrics import progress_document, progress_writer


def record_batch(db, at: datetime, query: str = "aggregates", run: str = "run-1", batch: int = 1, rows: int = 10,
                 invalid: int | None = None, end_offsets: dict | None = None) -> None:
    """Store one batch's progress as the job's listener does (pipeline_metrics and pipeline_minutes)."""
    progress = {"id": "q", "runId": run, "name": query, "batchId": batch,
                "timestamp": at.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z", "batchDuration": 200,
                "numInputRows": rows, "inputRowsPerSecond": float(rows), "processedRowsPerSecond": float(rows) * 5}
    if invalid is not None:
        progress["observedMetrics"] = {query: {"valid_rows": rows - invalid, "invalid_rows": invalid}}
    if end_offsets is not None:
        progress["sources"] = [{"description": "KafkaV2", "endOffset": end_offsets, "latestOffset": end_offsets}]
    progress_writer(db)(progress_document(progress))


def run_alerts(args: list[str], log: Path, timeout: float = 120, env: dict[str, str] | None = None,
               ) -> subprocess.CompletedProcess:
    """`python -m alerts ARGS` as users run it; its stderr is appended to `log`."""
    with log.open("a") as err:
        return subprocess.run([sys.executable, "-m", "alerts", *args], cwd=ROOT, stdout=subprocess.PIPE, stderr=err,
                              text=True, timeout=timeout, env=env, check=False)


def start_alerts(args: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    """The alerts program running on its interval, in the background."""
    with log.open("a") as err:
        return subprocess.Popen([sys.executable, "-m", "alerts", *args], cwd=ROOT, stdout=subprocess.DEVNULL,
                                stderr=err, text=True, env=env)
