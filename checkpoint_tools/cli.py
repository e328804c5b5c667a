"""`python -m checkpoint_tools {inspect,clean,reset}`: look after the streaming job's checkpoints safely.

  inspect            progress, Kafka offsets (and lag with --bootstrap-servers), files and state of each query
  clean              delete what Spark will never read again (dry run unless --yes)
  reset QUERY        delete one query's checkpoint so the job starts it over (asks first unless --yes)

clean and reset refuse while the job runs (its heartbeat file in the checkpoint dir is fresh).
Exit codes: 0 ok, 1 error (one line on stderr), 2 bad usage.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import sys
from collections.abc import Callable

from checkpoint_tools.clean import SPARK_MIN_BATCHES_TO_RETAIN, CleanPlan, execute, plan_clean
from checkpoint_tools.guard import DEFAULT_STALE_SECONDS, JobStatus, job_status, refuse_if_running
from checkpoint_tools.inspect import inspect_report, render_inspect, topics_of
from checkpoint_tools.layout import Checkpoint, CheckpointError, read_checkpoint, resolve_dir
from checkpoint_tools.reset import consequences, plan_reset
from checkpoint_tools.tables import human_bytes, table
from clickpulse.cli import (
    Parser,
    add_logging_arguments,
    fail,
    positive_int,
    program_name,
    setup_logging,
    short_error,
)
from clickpulse.queries import QUERIES

log = logging.getLogger("checkpoint_tools")
PROG = program_name("python -m checkpoint_tools")

Ask = Callable[[str], str | None]


def _number(minimum: float) -> Callable[[str], float]:
    def convert(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum:g}, got {text}")
        return value

    return convert


def main_parser() -> argparse.ArgumentParser:
    p = Parser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--checkpoint-dir", default=os.environ.get("CLICKPULSE_CHECKPOINT_DIR") or ".data/checkpoints",
                        help="the job's base checkpoint dir, a local path or file:// URI "
                             "(env CLICKPULSE_CHECKPOINT_DIR, default %(default)s)")
    common.add_argument("--json", action="store_true", help="print one JSON document on stdout instead of tables")
    common.add_argument("--stale-after", type=_number(1), default=DEFAULT_STALE_SECONDS, metavar="SECONDS",
                        help="a job lock whose last heartbeat is older than this belongs to a dead job "
                             "(default %(default)g; the job beats every 10 s)")
    add_logging_arguments(common)
    common.add_argument("-v", "--verbose", dest="log_level", action="store_const", const="DEBUG",
                        default=argparse.SUPPRESS, help="debug logging (--log-level DEBUG)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True,
                           parser_class=functools.partial(Parser, add_version=False))

    i = sub.add_parser("inspect", parents=[common], help="report each query's progress, offsets, lag, files and state",
                       description="Report each query's last committed batch, Kafka offsets (and lag), files and state.")
    i.add_argument("--bootstrap-servers", default=None,
                   help="Kafka bootstrap servers: also read the end offsets and report the lag per partition")
    i.add_argument("--kafka-timeout", type=_number(1), default=10.0, metavar="SECONDS",
                   help="how long to wait for Kafka (default %(default)g)")
    i.set_defaults(handler=_inspect)

    cl = sub.add_parser("clean", parents=[common], help="delete what Spark will never read again (dry run unless --yes)",
                        description="Delete old offsets/commits entries, state files older than the oldest kept batch "
                                    "needs, orphaned temp and checksum files, and (only when named) whole query folders. "
                                    "Prints what it would delete unless --yes.")
    cl.add_argument("--keep", type=positive_int, default=SPARK_MIN_BATCHES_TO_RETAIN, metavar="N",
                    help="batches to keep per query (default %(default)s, Spark's minBatchesToRetain)")
    cl.add_argument("--remove-query", action="append", default=[], metavar="NAME",
                    help="also delete this query's whole folder (one the job no longer runs); repeatable")
    cl.add_argument("--yes", action="store_true", help="delete (default: only show what would be deleted)")
    cl.set_defaults(handler=_clean)

    r = sub.add_parser("reset", parents=[common], help="delete one query's checkpoint so the job starts it over",
                       description="Delete one query's checkpoint folder: the job's next run starts that query over "
                                   "from its --starting-offsets and recomputes its output.")
    r.add_argument("query", metavar="QUERY", help=f"the query to reset ({', '.join(QUERIES)})")
    r.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    r.set_defaults(handler=_reset)
    return p


def run_cli(args: list[str] | None = None, ask: Ask | None = None) -> int:
    """Run one command; `ask` answers reset's confirmation (default: the terminal, refused when there is none)."""
    ns = main_parser().parse_args(args)
    setup_logging(ns.log_level, ns.log_format, text_format="%(levelname)s: %(message)s")
    logging.getLogger("kafka").setLevel(logging.DEBUG if ns.log_level == "DEBUG" else logging.CRITICAL)
    try:
        return ns.handler(ns, ask or _ask_terminal)
    except CheckpointError as e:
        return fail(PROG, str(e))
    except KeyboardInterrupt:
        return fail(PROG, "interrupted")
    except Exception as e:  # one line, never a traceback (-v logs it)
        log.debug("details", exc_info=True)
        return fail(PROG, f"unexpected {type(e).__name__}" + (f": {short_error(e)}" if str(e) else ""))


def _load(ns: argparse.Namespace) -> tuple[Checkpoint, JobStatus]:
    base = resolve_dir(ns.checkpoint_dir)
    cp = read_checkpoint(base)
    return cp, job_status(base, ns.stale_after)


def _emit(ns: argparse.Namespace, doc: dict[str, object], text: str) -> None:
    sys.stdout.write((json.dumps(doc, indent=2) if ns.json else text) + "\n")
    sys.stdout.flush()


def _inspect(ns: argparse.Namespace, ask: Ask) -> int:
    from checkpoint_tools.lag import broker_offsets

    cp, status = _load(ns)
    broker = None
    if ns.bootstrap_servers:
        broker = broker_offsets(ns.bootstrap_servers, topics_of(cp), ns.kafka_timeout)
        for topic, parts in broker.items():
            if parts is None:
                log.warning("topic %s does not exist on %s", topic, ns.bootstrap_servers)
    report = inspect_report(cp, status, broker, QUERIES)
    _emit(ns, report, render_inspect(report))
    return 0


def _clean(ns: argparse.Namespace, ask: Ask) -> int:
    cp, status = _load(ns)
    refuse_if_running(status, "clean")
    plan = plan_clean(cp, ns.keep, tuple(ns.remove_query), QUERIES)
    if ns.yes and plan.deletions:
        refuse_if_running(job_status(cp.base, ns.stale_after), "clean", warn=False)  # the job may have started meanwhile
        files, freed = execute(plan)
        log.info("deleted %d files, freed %s", files, human_bytes(freed))
    _emit(ns, _clean_doc(plan, dry_run=not ns.yes), _clean_text(plan, dry_run=not ns.yes))
    return 0


def _clean_doc(plan: CleanPlan, dry_run: bool) -> dict[str, object]:
    return {
        "checkpoint_dir": str(plan.base),
        "dry_run": dry_run,
        "keep": plan.keep,
        "files": plan.files,
        "bytes": plan.bytes,
        "deletions": [{"query": d.query, "path": str(plan.path(d)), "kind": d.kind, "files": d.files, "bytes": d.size}
                      for d in plan.deletions],
        "retention": [{"query": r.query, "newest_committed_batch": r.newest_committed, "oldest_kept_batch": r.oldest_batch,
                       "state_kept_from_version": r.state_from} for r in plan.retention],
    }


def _clean_text(plan: CleanPlan, dry_run: bool) -> str:
    lines = [f"clean {plan.base}: keep the newest {plan.keep} batch{'es' if plan.keep > 1 else ''} of each query"]
    lines += ["", table(["QUERY", "NEWEST COMMITTED", "KEEPS BATCHES FROM"],
                        [[r.query, r.newest_committed, "all" if r.oldest_batch is None else r.oldest_batch]
                         for r in plan.retention], right=(1, 2))]
    if not plan.deletions:
        return "\n".join([*lines, "", "nothing to delete"])
    lines += ["", table(["QUERY", "KIND", "FILES", "SIZE"],
                        [[q, k, n, human_bytes(b)] for q, k, n, b in plan.by_kind()], right=(2, 3))]
    if dry_run:
        lines += ["", "would delete:"]
        lines += [f"  {plan.path(d).relative_to(plan.base)}{'/' if d.kind == 'query' else ''}  ({human_bytes(d.size)})"
                  for d in plan.deletions]
        lines += ["", f"dry run: would free {human_bytes(plan.bytes)} in {plan.files} files; nothing deleted "
                      "(run again with --yes to delete)"]
    else:
        lines += ["", f"deleted {plan.files} files, freed {human_bytes(plan.bytes)}"]
    return "\n".join(lines)


def _reset(ns: argparse.Namespace, ask: Ask) -> int:
    cp, status = _load(ns)
    refuse_if_running(status, f"reset {ns.query}")
    plan = plan_reset(cp, ns.query)
    explanation = consequences(plan)
    if not ns.yes:
        sys.stderr.write(explanation + "\n")
        answer = ask(f"Type {ns.query} to reset it: ")
        if answer is None:
            raise CheckpointError(f"not resetting {ns.query}: no terminal to confirm on; pass --yes to reset without asking")
        if answer.strip() != ns.query:
            raise CheckpointError(f"not resetting {ns.query}: not confirmed")
    else:
        log.info("%s", explanation)
    refuse_if_running(job_status(cp.base, ns.stale_after), f"reset {ns.query}", warn=False)
    files, freed = execute(plan)
    (d,) = plan.deletions
    doc = {"checkpoint_dir": str(cp.base), "query": ns.query, "path": str(plan.path(d)), "files": files, "bytes": freed,
           "deleted": True}
    _emit(ns, doc, f"reset {ns.query}: deleted {plan.path(d)} ({files} files, {human_bytes(freed)}); "
                   f"the job's next run starts it over from --starting-offsets")
    return 0


def _ask_terminal(prompt: str) -> str | None:
    if not sys.stdin.isatty():
        return None
    sys.stderr.write(prompt)
    sys.stderr.flush()
    try:
        return sys.stdin.readline()
    except (EOFError, OSError):
        return None
