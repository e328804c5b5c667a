"""`python -m alerts` (clickpulse-alerts): tell people when the pipeline is unwell, from outside the job.

Every --interval it reads what the streaming job records in MongoDB (pipeline_minutes, pipeline_metrics, the
window catalog) and Kafka's offsets, measures each rule, and moves its alert pending -> firing -> resolved. Alerts
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
import tomllib
from collections.abc import Callable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any, NoReturn

from alerts.rules import BY_NAME, RULES, Unit
from alerts.settings import (
    AlertsSettings,
    DeliverySettings,
    EmailSettings,
    RuleSettings,
    WebhookSettings,
    parse_duration,
    seconds_text,
)
from storage import contract as c
from storage.client import mask_uri

log = logging.getLogger("clickpulse.alerts")
PROG = "python -m alerts"
DEFAULT_MONGO_URI = "mongodb://127.0.0.1:27017/"
DEFAULT_BOOTSTRAP = "127.0.0.1:9092"
RULE_FIELDS = ("threshold", "for", "clear", "clear_for", "window", "enabled")
_TOP_KEYS = {"interval", "repeat_interval", "database", "bootstrap_servers", "rules", "webhook", "email", "delivery"}
_SECTION_KEYS = {"webhook": {"url", "timeout"},
                 "email": {"host", "port", "starttls", "from", "to", "ca_file", "timeout"},
                 "delivery": {"attempts", "backoff"}}


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one clear line (and exit code 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _flag(rule: str, name: str) -> str:
    return f"--{rule.replace('_', '-')}-{name.replace('_', '-')}"


def _env_name(rule: str, name: str) -> str:
    return f"CLICKPULSE_ALERT_{rule.upper()}_{name.upper()}"


def main_parser() -> argparse.ArgumentParser:
    p = _Parser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--once", action="store_true", help="evaluate one round and exit (for cron and tests)")
    p.add_argument("--config", type=Path, metavar="FILE.toml",
                   help="thresholds and channels from this TOML file (env CLICKPULSE_ALERTS_CONFIG)")
    w = p.add_argument_group("what to watch")
    w.add_argument("--mongo-uri", help=f"MongoDB URI, credentials included (env CLICKPULSE_MONGO_URI, default "
                                       f"{DEFAULT_MONGO_URI})")
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
                                 f"Env {_env_name(rule.name, '<FIELD>')}; TOML [rules.{rule.name}].")
        g.add_argument(_flag(rule.name, "threshold"), dest=f"{rule.name}__threshold", metavar="V",
                       help=f"breached above this (default {_show(rule.unit, d.threshold)})".replace("%", "%%"))
        g.add_argument(_flag(rule.name, "for"), dest=f"{rule.name}__for", metavar="DURATION",
                       help=f"fires once breached this long (default {seconds_text(d.for_)})")
        g.add_argument(_flag(rule.name, "clear"), dest=f"{rule.name}__clear", metavar="V",
                       help=f"resolves at or below this (default {_show(rule.unit, d.clear)})".replace("%", "%%"))
        g.add_argument(_flag(rule.name, "clear_for"), dest=f"{rule.name}__clear_for", metavar="DURATION",
                       help=f"... for this long (default {seconds_text(d.clear_for)})")
        if d.window is not None:
            g.add_argument(_flag(rule.name, "window"), dest=f"{rule.name}__window", metavar="DURATION",
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


def _show(unit: Unit, value: float) -> str:
    if unit is Unit.SECONDS:
        return seconds_text(timedelta(seconds=value))
    if unit is Unit.RATIO:
        return f"{value:.0%}"
    return f"{value:g}"


def rule_value(unit: Unit, raw: Any) -> float:
    """A threshold in the rule's unit: durations for seconds, '5%' or 0.05 for ratios, numbers otherwise."""
    if unit is Unit.SECONDS:
        return parse_duration(raw).total_seconds()
    text = str(raw).strip()
    try:
        value = float(text[:-1]) / 100 if unit is Unit.RATIO and text.endswith("%") else float(text)
    except ValueError:
        raise ValueError(f"not a number: {raw!r}") from None
    if unit is Unit.RATIO and not 0 <= value <= 1:
        raise ValueError(f"not a ratio between 0 and 1: {raw!r}")
    return value


def _bool(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"not a yes/no value: {raw!r}")


def load_toml(path: Path) -> dict[str, Any]:
    """The config file, with unknown keys refused (a typo must not silently keep a default)."""
    try:
        with path.open("rb") as f:
            doc = tomllib.load(f)
    except OSError as e:
        raise ValueError(f"cannot read config {path}: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"config {path} is not valid TOML: {e}") from None
    unknown = set(doc) - _TOP_KEYS
    for section, keys in _SECTION_KEYS.items():
        unknown |= {f"{section}.{k}" for k in set(doc.get(section) or {}) - keys}
    for name, fields in (doc.get("rules") or {}).items():
        if name not in BY_NAME:
            unknown.add(f"rules.{name}")
        elif not isinstance(fields, dict):
            unknown.add(f"rules.{name} (not a table)")
        else:
            unknown |= {f"rules.{name}.{k}" for k in set(fields) - set(RULE_FIELDS)}
    if unknown:
        raise ValueError(f"config {path}: unknown key(s) {', '.join(sorted(unknown))}")
    return doc


class _Layers:
    """flag > env > TOML > default, one setting at a time; errors name where the bad value came from."""

    def __init__(self, ns: argparse.Namespace, env: Mapping[str, str], toml: Mapping[str, Any]) -> None:
        self._ns, self._env, self._toml = ns, env, toml

    def get(self, flag: str | None, env: str | None, toml_path: tuple[str, ...], default: Any,
            convert: Callable[[Any], Any] = lambda v: v) -> Any:
        shown = _flag(*flag.split("__")) if flag and "__" in flag else f"--{(flag or '').replace('_', '-')}"
        sources = [(shown, getattr(self._ns, flag, None) if flag else None),
                   (env or "", self._env.get(env) or None if env else None),
                   (f"{'.'.join(toml_path)} in the config", self._dig(toml_path))]
        for where, raw in sources:
            if raw is not None:
                try:
                    return convert(raw)
                except ValueError as e:
                    raise ValueError(f"{where}: {e}") from None
        return default

    def _dig(self, path: tuple[str, ...]) -> Any:
        node: Any = self._toml
        for key in path:
            if not isinstance(node, Mapping) or key not in node:
                return None
            node = node[key]
        return node


def _duration(raw: Any) -> timedelta:
    return parse_duration(raw)


def _rules(layers: _Layers, ns: argparse.Namespace, env: Mapping[str, str], toml: Mapping[str, Any]) -> tuple[RuleSettings, ...]:
    chosen = layers.get("rules", "CLICKPULSE_ALERTS_RULES", ("__none__",), None,
                        lambda v: [n.strip() for n in str(v).split(",") if n.strip()])
    if chosen is not None:
        unknown = [n for n in chosen if n not in BY_NAME]
        if unknown or not chosen:
            raise ValueError(f"--rules: unknown rule(s) {', '.join(unknown) or '(none given)'}: choose from "
                             f"{', '.join(BY_NAME)}")
    out = []
    for rule in RULES:
        d = rule.defaults

        def pick(name: str, default: Any, convert: Callable[[Any], Any], rule_name: str = rule.name) -> Any:
            return layers.get(f"{rule_name}__{name}" if name != "enabled" else None, _env_name(rule_name, name),
                              ("rules", rule_name, name), default, convert)

        def value(raw: Any, unit: Unit = rule.unit) -> float:
            return rule_value(unit, raw)

        threshold = pick("threshold", d.threshold, value)
        explicit_clear = pick("clear", None, value)
        # A threshold set without a clear level keeps the default's hysteresis ratio (never above the threshold).
        clear = explicit_clear if explicit_clear is not None else (
            d.clear if threshold == d.threshold else threshold * (d.clear / d.threshold if d.threshold else 1))
        enabled = pick("enabled", True, _bool) and (chosen is None or rule.name in chosen)
        try:
            out.append(RuleSettings(rule.name, threshold, pick("for", d.for_, _duration), clear,
                                    pick("clear_for", d.clear_for, _duration),
                                    pick("window", d.window, _duration) if d.window is not None else None, enabled))
        except ValueError as e:
            raise ValueError(f"rule {e}") from None
    return tuple(out)


def settings_from(ns: argparse.Namespace, env: Mapping[str, str]) -> AlertsSettings:
    """Build the settings (ValueError with a one-line message when something is wrong)."""
    config = ns.config or (Path(env["CLICKPULSE_ALERTS_CONFIG"]) if env.get("CLICKPULSE_ALERTS_CONFIG") else None)
    toml = load_toml(config) if config else {}
    layers = _Layers(ns, env, toml)
    webhook_url = layers.get("webhook_url", "CLICKPULSE_ALERTS_WEBHOOK_URL", ("webhook", "url"), None, str)
    webhook = None if webhook_url is None else WebhookSettings(
        webhook_url, layers.get("webhook_timeout", None, ("webhook", "timeout"), timedelta(seconds=10), _duration))
    smtp_host = layers.get("smtp_host", "CLICKPULSE_SMTP_HOST", ("email", "host"), None, str)
    email = None
    if smtp_host is not None:
        to = layers.get("smtp_to", "CLICKPULSE_SMTP_TO", ("email", "to"), "",
                        lambda v: tuple(v) if isinstance(v, list) else tuple(a.strip() for a in str(v).split(",") if a.strip()))
        ca = layers.get("smtp_ca_file", "CLICKPULSE_SMTP_CA_FILE", ("email", "ca_file"), None, Path)
        email = EmailSettings(
            host=smtp_host, sender=layers.get("smtp_from", "CLICKPULSE_SMTP_FROM", ("email", "from"), "", str),
            recipients=to, port=layers.get("smtp_port", "CLICKPULSE_SMTP_PORT", ("email", "port"), 587, _port),
            starttls=layers.get("smtp_starttls", "CLICKPULSE_SMTP_STARTTLS", ("email", "starttls"), True, _bool),
            username=env.get("CLICKPULSE_SMTP_USER") or None, password=env.get("CLICKPULSE_SMTP_PASSWORD") or None,
            ca_file=ca, timeout=layers.get("smtp_timeout", None, ("email", "timeout"), timedelta(seconds=10), _duration))
    delivery = DeliverySettings(
        attempts=layers.get("delivery_attempts", None, ("delivery", "attempts"), 3, _int),
        backoff=layers.get("delivery_backoff", None, ("delivery", "backoff"), timedelta(seconds=1), _duration))
    return AlertsSettings(
        mongo_uri=layers.get("mongo_uri", "CLICKPULSE_MONGO_URI", ("__none__",), DEFAULT_MONGO_URI, str),
        database=layers.get("database", "CLICKPULSE_DATABASE", ("database",), c.DEFAULT_DATABASE, str),
        bootstrap_servers=layers.get("bootstrap_servers", "CLICKPULSE_BOOTSTRAP_SERVERS", ("bootstrap_servers",),
                                     DEFAULT_BOOTSTRAP, str),
        rules=_rules(layers, ns, env, toml),
        interval=layers.get("interval", "CLICKPULSE_ALERTS_INTERVAL", ("interval",), timedelta(seconds=30), _duration),
        repeat_interval=layers.get("repeat_interval", "CLICKPULSE_ALERTS_REPEAT_INTERVAL", ("repeat_interval",),
                                   timedelta(hours=1), _duration),
        webhook=webhook, email=email, delivery=delivery,
        kafka_timeout=_duration(ns.kafka_timeout), mongo_timeout=_duration(ns.mongo_timeout),
        log_format=layers.get("log_format", "CLICKPULSE_LOG_FORMAT", ("__none__",), "text", str),
    )


def _int(raw: Any) -> int:
    try:
        return int(str(raw))
    except ValueError:
        raise ValueError(f"not a whole number: {raw!r}") from None


def _port(raw: Any) -> int:
    return _int(raw)


def secrets_of(settings: AlertsSettings) -> list[str]:
    """What must never appear in a log line."""
    out = []
    if settings.webhook is not None:
        out.append(settings.webhook.url)
    if settings.email is not None and settings.email.password:
        out.append(settings.email.password)
    return out


def run_cli(args: list[str] | None = None) -> int:
    parser = main_parser()
    ns = parser.parse_args(args)
    try:
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
        rules = ", ".join(f"{r.name}>{_show(BY_NAME[r.name].unit, r.threshold)} for {seconds_text(r.for_)}"
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
