"""`python -m alerts` (clickpulse-alerts): tell people when the pipeline is unwell, from outside the job.

Every --interval it reads what the streaming job records in MongoDB (pipeline_minutes, pipeline_metrics, the
active_users) and Kafka's offsets, measures each rule, and moves its alert pending -> firing -> resolved. Alerts
and their transitions are kept in the `alerts` collection (so restarts and --once runs from cron carry on); firing
and resolved alerts go to the log, a webhook and email.

Settings: flags win over CLICKPULSE_* environment variables, which win over the --config TOML file, which wins over
the defaults. SMTP credentials come only from CLICKPULSE_SMTP_USER / CLICKPULSE_SMTP_PASSWORD.
Exit codes: 0 ok, 1 MongoDB unreadable (--once), 2 bad usage.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path

from alerts.config import (
    DEFAULT_BOOTSTRAP,
    env_name,
    flag_name,
    secrets_of,
    settings_from,
    show_value,
)
from alerts.rules import BY_NAME, RULES, Unit
from alerts.settings import AlertsSettings, seconds_text
from clickpulse.cli import Parser, add_mongo_uri_arguments, mongo_uri, program_name
from storage import contract as c
from storage.client import mask_uri

log = logging.getLogger("clickpulse.alerts")
PROG = program_name("python -m alerts")


def main_parser() -> argparse.ArgumentParser:
    p = Parser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--once", action="store_true", help="evaluate one round and exit (for cron and tests)")
    p.add_argument("--config", type=Path, metavar="FILE.toml",
                   help="thresholds and channels from this TOML file (env CLICKPULSE_ALERTS_CONFIG)")
    w = p.add_argument_group("what to watch")
    add_mongo_uri_arguments(w)
    w.add_argument("--database", help=f"the job's database (env CLICKPULSE_DATABASE, default {c.DEFAULT_DATABASE})")
    w.add_argument("--bootstrap-servers",
                   help=f"Kafka, for lag (env CLICKPULSE_BOOTSTRAP_SERVERS, default {DEFAULT_BOOTSTRAP}); the topics "
                        "are those the job's batches recorded")
    w.add_argument("--interval", help="time between rounds (env CLICKPULSE_ALERTS_INTERVAL, default 30s)")
    w.add_argument("--repeat-interval",
                   help="notify a still-firing alert again after this long (env CLICKPULSE_ALERTS_REPEAT_INTERVAL, "
                        "default 1h)")
    w.add_argument("--rules", help="comma-separated rules to evaluate (env CLICKPULSE_ALERTS_RULES, default all: "
                                   f"{', '.join(r.name for r in RULES)})")
    w.add_argument("--kafka-timeout", default="10s", help="how long a round waits for Kafka (default %(default)s)")
    w.add_argument("--mongo-timeout", default="5s", help="how long a round waits for MongoDB (default %(default)s)")

    for rule in RULES:
        d = rule.defaults
        unit = "a duration (90s, 5m)" if rule.unit is Unit.SECONDS else (
            "a ratio (0.05 or 5%)" if rule.unit is Unit.RATIO else str(rule.unit))
        g = p.add_argument_group(f"rule {rule.name}: {rule.title}",
                                 f"{rule.help}. Values: {unit}. "
                                 f"Env {env_name(rule.name, '<FIELD>')}; TOML [rules.{rule.name}].")
        g.add_argument(flag_name(rule.name, "threshold"), dest=f"{rule.name}__threshold", metavar="V",
                       help=f"breached above this (default {show_value(rule.unit, d.threshold)})".replace("%", "%%"))
        g.add_argument(flag_name(rule.name, "for"), dest=f"{rule.name}__for", metavar="DURATION",
                       help=f"fires once breached this long (default {seconds_text(d.for_)})")
        g.add_argument(flag_name(rule.name, "clear"), dest=f"{rule.name}__clear", metavar="V",
                       help=f"resolves at or below this (default {show_value(rule.unit, d.clear)})".replace("%", "%%"))
        g.add_argument(flag_name(rule.name, "clear_for"), dest=f"{rule.name}__clear_for", metavar="DURATION",
                       help=f"... for this long (default {seconds_text(d.clear_for)})")
        if d.window is not None:
            g.add_argument(flag_name(rule.name, "window"), dest=f"{rule.name}__window", metavar="DURATION",
                           help=f"measured over the last (default {seconds_text(d.window)})")

    ch = p.add_argument_group("channels", "Every notification goes to the log; also to a webhook and email when set.")
    ch.add_argument("--webhook-url", help="POST JSON ({text, alert}) here (env CLICKPULSE_ALERTS_WEBHOOK_URL; prefer "
                                          "the env: a webhook's path is often its secret)")
    ch.add_argument("--webhook-timeout", help="per attempt (default 10s)")
    ch.add_argument("--smtp-host", help="send email through this SMTP server (env CLICKPULSE_SMTP_HOST)")
    ch.add_argument("--smtp-port", help="(env CLICKPULSE_SMTP_PORT, default 587)")
    ch.add_argument("--smtp-starttls", action=argparse.BooleanOptionalAction, default=None,
                    help="upgrade to TLS before sending, verifying the server (env CLICKPULSE_SMTP_STARTTLS, "
                         "default on; credentials are only ever sent over it)")
    ch.add_argument("--smtp-from", help="sender address (env CLICKPULSE_SMTP_FROM)")
    ch.add_argument("--smtp-to", help="comma-separated recipients (env CLICKPULSE_SMTP_TO)")
    ch.add_argument("--smtp-ca-file", help="CA bundle that signed the SMTP server's certificate, when not a public CA "
                                           "(env CLICKPULSE_SMTP_CA_FILE)")
    ch.add_argument("--smtp-timeout", help="per attempt (default 10s)")
    ch.add_argument("--delivery-attempts", help="tries per notification and channel (default 3)")
    ch.add_argument("--delivery-backoff", help="wait after a failed try, doubled each time (default 1s)")

    o = p.add_argument_group("output")
    o.add_argument("--log-format", choices=["text", "json"], default=None,
                   help="log lines as text or one JSON object per line (env CLICKPULSE_LOG_FORMAT, default text)")
    o.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"], default=None,
                   help="(env CLICKPULSE_LOG_LEVEL, default INFO)")
    return p


def run_cli(args: list[str] | None = None) -> int:
    parser = main_parser()
    ns = parser.parse_args(args)
    try:
        ns.mongo_uri = mongo_uri(ns)  # flag, else file, else env, else the local default (never in --help)
        settings = settings_from(ns, os.environ)
    except ValueError as e:
        parser.error(str(e))
    from alerts import logs

    level = ns.log_level or os.environ.get("CLICKPULSE_LOG_LEVEL") or "INFO"
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        parser.error(f"CLICKPULSE_LOG_LEVEL: choose DEBUG, INFO, WARNING or ERROR, got {level!r}")
    logs.configure(settings.log_format, level, secrets_of(settings))
    return run(settings, once=ns.once)


def run(settings: AlertsSettings, once: bool) -> int:
    """One round (`once`) or a round every interval until SIGINT/SIGTERM."""
    from pymongo.errors import PyMongoError

    from alerts.channels import EmailChannel, LogChannel, WebhookChannel
    from alerts.watch import Watcher, run_forever, short_error
    from storage.client import connect

    channels = [LogChannel()]
    if settings.webhook is not None:
        channels.append(WebhookChannel(settings.webhook))
    if settings.email is not None:
        channels.append(EmailChannel(settings.email))
    timeout_ms = int(settings.mongo_timeout.total_seconds() * 1000)
    client = connect(settings.mongo_uri, "clickpulse-alerts", timeout_ms, socket_timeout_ms=4 * timeout_ms)
    try:
        watcher = Watcher(settings, client[settings.database], channels)
        rules = ", ".join(f"{r.name}>{show_value(BY_NAME[r.name].unit, r.threshold)} for {seconds_text(r.for_)}"
                          for r in settings.enabled_rules)
        log.info("watching MongoDB %s (database %s) and Kafka at %s %s; rules: %s; channels: %s",
                 mask_uri(settings.mongo_uri), settings.database, settings.bootstrap_servers,
                 "once" if once else f"every {seconds_text(settings.interval)}", rules or "none",
                 ", ".join(str(ch) for ch in channels))
        if once:
            try:
                watcher.round()
            except PyMongoError as e:
                log.error("cannot read MongoDB at %s: %s", mask_uri(settings.mongo_uri), short_error(e))
                return 1
            return 0
        stop = threading.Event()
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, lambda signum, frame: stop.set())
        run_forever(watcher, settings.interval.total_seconds(), stop)
        log.info("stopped")
        return 0
    finally:
        client.close()


if __name__ == "__main__":
    sys.exit(run_cli())
