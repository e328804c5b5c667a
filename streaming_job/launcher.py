"""`clickpulse-job`: the job under spark-submit, as `spark-submit streaming_job/main.py` runs it, from any shell.

It supplies what a bare spark-submit leaves to the user: pyspark's own SPARK_HOME (pip's `spark-submit` script looks
for it with whatever `python3` is first on PATH, and fails outside the venv), this interpreter for the Python driver
and workers, the Kafka connector (jars from CLICKPULSE_SPARK_JARS or the checkout's .cache/spark-jars, else
`--packages` from Maven Central), the task JVMs' garbage collector (see streaming_job/session.py, PARALLEL_GC) and,
for a local master, SPARK_LOCAL_IP=127.0.0.1 so the UI stays on loopback.
Every flag but the few spark-submit options below goes to the job (`clickpulse-job --help` lists both).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from clickpulse.cli import Parser
from streaming_job.packaging import ROOT
from streaming_job.session import JSON_LOG_DEFAULTS, KAFKA_PACKAGE, LOOPBACK, gc_confs, named_collectors

PROG = "clickpulse-job"
MAIN = Path(__file__).resolve().parent / "main.py"
(STRUCTURED_LOGGING,) = JSON_LOG_DEFAULTS


def main_parser() -> argparse.ArgumentParser:
    p = Parser(prog=PROG, add_help=False, allow_abbrev=False, description=__doc__,
               formatter_class=argparse.RawDescriptionHelpFormatter)
    spark = p.add_argument_group("spark-submit options (the job's own flags follow)")
    spark.add_argument("--master", default="local[*]", help="Spark master URL (default %(default)s)")
    spark.add_argument("--conf", action="append", default=[], metavar="KEY=VALUE",
                       help="a Spark property, as spark-submit --conf (repeatable); it wins over the job's defaults")
    spark.add_argument("--driver-memory", help="driver memory, e.g. 2g (spark-submit's --driver-memory)")
    spark.add_argument("-h", "--help", action="store_true", help="show this help and the job's, then exit")
    return p


def spark_home() -> Path:
    """The Spark distribution inside the installed pyspark package."""
    import pyspark

    return Path(pyspark.__file__).resolve().parent


def connector_jars(environ: Mapping[str, str]) -> list[str]:
    """The Kafka connector's jars: CLICKPULSE_SPARK_JARS, else those `make setup` put in the checkout's cache."""
    if environ.get("CLICKPULSE_SPARK_JARS"):
        return [j for j in environ["CLICKPULSE_SPARK_JARS"].split(",") if j]
    cache = Path(environ.get("CLICKPULSE_CACHE") or ROOT / ".cache") / "spark-jars"
    return [str(p) for p in sorted(cache.glob("*.jar"))]


def submit_command(ns: argparse.Namespace, job_args: Sequence[str],
                   environ: Mapping[str, str]) -> tuple[list[str], dict[str, str]]:
    """The spark-submit command line and environment that run the job with these options."""
    home = spark_home()
    env = {**environ, "SPARK_HOME": str(home)}
    env.setdefault("PYSPARK_PYTHON", sys.executable)
    env.setdefault("PYSPARK_DRIVER_PYTHON", env["PYSPARK_PYTHON"])
    if ns.master.startswith("local"):
        env.setdefault("SPARK_LOCAL_IP", LOOPBACK)
    argv = [str(home / "bin" / "spark-submit"), "--master", ns.master]
    if ns.driver_memory:
        argv += ["--driver-memory", ns.driver_memory]
    confs = list(ns.conf)
    if _json_logs(job_args) and not any(c.startswith(f"{STRUCTURED_LOGGING}=") for c in confs):
        # Spark sets up its logging when spark-submit starts, before the job can ask for JSON lines.
        confs.append(f"{STRUCTURED_LOGGING}=true")
    # The job can't choose the collector of a local driver that spark-submit has started: it is chosen here.
    given = dict(item.split("=", 1) for item in confs)
    confs += [f"{k}={v}" for k, v in gc_confs(given, ns.master, named_collectors(env)).items()]
    for item in confs:
        argv += ["--conf", item]
    jars = connector_jars(environ)
    argv += ["--jars", ",".join(jars)] if jars else ["--packages", KAFKA_PACKAGE]
    return [*argv, str(MAIN), *job_args], env


def _json_logs(job_args: Sequence[str]) -> bool:
    """Whether the job will log JSON (--log-format json, or CLICKPULSE_LOG_FORMAT); a bad flag exits 2 here."""
    from streaming_job.main import main_parser as job_parser

    return job_parser().parse_known_args(list(job_args))[0].log_format == "json"


def run_cli(args: list[str] | None = None) -> int:
    """Replace this process with spark-submit running the job (signals then reach Spark directly)."""
    parser = main_parser()
    ns, job_args = parser.parse_known_args(args)
    bad = [item for item in ns.conf if "=" not in item]
    if bad:
        parser.error(f"--conf {bad[0]!r}: use KEY=VALUE")
    if ns.help:
        from streaming_job.main import main_parser as job_parser

        sys.stdout.write(parser.format_help() + "\n" + job_parser().format_help())
        return 0
    argv, env = submit_command(ns, job_args, os.environ)
    os.execve(argv[0], argv, env)  # noqa: S606 - our own spark-submit, argv as a list (no shell)
    return 1  # not reached: execve replaced this process


if __name__ == "__main__":
    sys.exit(run_cli())
