"""`python -m devstack up|down|status`: manage the local Kafka + Mongo-wire stack."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from clickpulse.cli import Parser, add_logging_arguments, env, port, setup_logging
from devstack.paths import DATA
from devstack.process import StackError
from devstack.stack import LocalStack

log = logging.getLogger("devstack")


def main_parser() -> argparse.ArgumentParser:
    p = Parser(prog="python -m devstack", description=__doc__)
    p.add_argument("command", choices=["up", "down", "status", "demo"],
                   help="start (or heal: start any part that died), stop or report each part of the stack; `demo` also "
                        "runs producer, job and report")
    p.add_argument("--data-dir", type=Path, default=DATA / "stack",
                   help="where servers keep data and logs (default: %(default)s)")
    p.add_argument("--kafka-port", type=port, default=env("KAFKA_PORT", "9092"),
                   help="Kafka client port (env KAFKA_PORT, default 9092)")
    p.add_argument("--kafka-controller-port", type=port, default=env("KAFKA_CONTROLLER_PORT", "9093"),
                   help="KRaft controller port (env KAFKA_CONTROLLER_PORT, default 9093)")
    p.add_argument("--mongo-port", type=port, default=env("MONGO_PORT", "27017"),
                   help="Mongo port (env MONGO_PORT, default 27017)")
    p.add_argument("--postgres-port", type=port, default=env("POSTGRES_PORT", "55432"),
                   help="port of FerretDB's PostgreSQL (env POSTGRES_PORT, default 55432)")
    p.add_argument("--json", action="store_true", help="print status as JSON")
    add_logging_arguments(p)
    return p


def run_cli(args: list[str] | None = None) -> int:
    ns = main_parser().parse_args(args)
    setup_logging(ns.log_level, ns.log_format, quiet=("kafka",))
    stack = LocalStack(ns.data_dir, ns.kafka_port, ns.kafka_controller_port, ns.mongo_port, ns.postgres_port)
    try:
        if ns.command == "up":
            started = stack.up()
            for name, now in started.items():
                log.info("%s %s", name, "started" if now else "was already running")
            log.info("Kafka at %s, Mongo (%s) at %s", stack.bootstrap_servers, stack.mongo.flavour, stack.mongo_uri)
        elif ns.command == "demo":
            from devstack.demo import run_demo

            stack.up()
            return run_demo(stack)
        elif ns.command == "down":
            for name, was in stack.down().items():
                log.info("%s %s", name, "stopped" if was else "was not running")
        else:
            rows = stack.status()
            if ns.json:
                sys.stdout.write(json.dumps(rows, indent=2) + "\n")
            else:
                for r in rows:
                    state = "up" if r["answers"] else ("running, not answering" if r["pid"] else "down")
                    sys.stdout.write(f"{r['server']:<30} {state:<24} {r['address']:<28} pid={r['pid']}  log={r['log']}\n")
            return 0 if all(r["answers"] for r in rows) else 1
    except StackError as e:
        log.error("%s", e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(run_cli())
