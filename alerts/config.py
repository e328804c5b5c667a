"""The alerts program's settings from flags, environment and a TOML file: flags > env > TOML > defaults."""

from __future__ import annotations

import argparse
import tomllib
from collections.abc import Callable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

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

DEFAULT_MONGO_URI = "mongodb://127.0.0.1:27017/"
DEFAULT_BOOTSTRAP = "127.0.0.1:9092"
RULE_FIELDS = ("threshold", "for", "clear", "clear_for", "window", "enabled")
_TOP_KEYS = {"interval", "repeat_interval", "database", "bootstrap_servers", "rules", "webhook", "email", "delivery"}
_SECTION_KEYS = {"webhook": {"url", "timeout"},
                 "email": {"host", "port", "starttls", "from", "to", "ca_file", "timeout"},
                 "delivery": {"attempts", "backoff"}}


def flag_name(rule: str, name: str) -> str:
    """The flag of one rule's field: --batch-age-clear-for."""
    return f"--{rule.replace('_', '-')}-{name.replace('_', '-')}"


def env_name(rule: str, name: str) -> str:
    """The environment variable of one rule's field: CLICKPULSE_ALERT_BATCH_AGE_CLEAR_FOR."""
    return f"CLICKPULSE_ALERT_{rule.upper()}_{name.upper()}"


def show_value(unit: Unit, value: float) -> str:
    """A threshold as a flag would take it: 1m, 5%, 10000."""
    if unit is Unit.SECONDS:
        return seconds_text(timedelta(seconds=value))
    if unit is Unit.RATIO:
        return f"{value * 100:g}%"
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
        shown = flag_name(*flag.split("__")) if flag and "__" in flag else f"--{(flag or '').replace('_', '-')}"
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


def _rules(layers: _Layers) -> tuple[RuleSettings, ...]:
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
            return layers.get(f"{rule_name}__{name}" if name != "enabled" else None, env_name(rule_name, name),
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
        rules=_rules(layers),
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
