"""The alerts program's settings: frozen, validated dataclasses, built by the CLI from flags, env and a TOML file."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

from storage import contract as c

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|sec|seconds?|m|min|minutes?|h|hours?|d|days?)?\s*$", re.I)
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str | float) -> timedelta:
    """'90s', '5m', '1h', '500ms', '2 days' or a plain number of seconds; ValueError with a clear message otherwise."""
    if isinstance(text, int | float) and not isinstance(text, bool):
        if text < 0:
            raise ValueError(f"not a duration: {text!r} (must not be negative)")
        return timedelta(seconds=text)
    m = _DURATION.match(str(text))
    if not m:
        raise ValueError(f"not a duration: {text!r} (examples: '90s', '5m', '1h')")
    unit = (m.group(2) or "s").lower()
    key = "ms" if unit == "ms" else unit[0]
    return timedelta(seconds=float(m.group(1)) * _UNIT_SECONDS[key])


def seconds_text(d: timedelta) -> str:
    """A duration as flags take it: '90s', '5m', '1h', '0.5s'."""
    s = d.total_seconds()
    for unit, size in (("h", 3600), ("m", 60)):
        if s >= size and s % size == 0:
            return f"{int(s // size)}{unit}"
    return f"{s:g}s"


@dataclass(frozen=True)
class RuleSettings:
    """One rule's thresholds: it is breached while its value is above `threshold`; it fires after `for_` of breach
    and resolves after `clear_for` at or below `clear` (hysteresis: `clear` <= `threshold`)."""

    name: str
    threshold: float
    for_: timedelta
    clear: float
    clear_for: timedelta
    window: timedelta | None = None
    enabled: bool = True

    def __post_init__(self) -> None:
        if self.threshold < 0 or self.clear < 0:
            raise ValueError(f"{self.name}: threshold and clear must not be negative")
        if self.clear > self.threshold:
            raise ValueError(f"{self.name}: clear ({self.clear:g}) must not be above threshold ({self.threshold:g})")
        if self.for_ < timedelta(0) or self.clear_for < timedelta(0):
            raise ValueError(f"{self.name}: for and clear_for must not be negative")
        if self.window is not None and self.window <= timedelta(0):
            raise ValueError(f"{self.name}: window must be positive")


def mask_url(url: str) -> str:
    """A webhook URL fit for logs: scheme, host and port only (the path of a Slack webhook is its secret)."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    return f"{parts.scheme}://{host}{f':{parts.port}' if parts.port else ''}/…"


@dataclass(frozen=True)
class WebhookSettings:
    """A JSON POST per notification, with a top-level `text` (what Slack-compatible receivers show)."""

    url: str = field(repr=False)  # its path is often a secret token
    timeout: timedelta = timedelta(seconds=10)

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("webhook URL must be an http:// or https:// URL with a host")
        if self.timeout <= timedelta(0):
            raise ValueError("webhook timeout must be positive")

    def __repr__(self) -> str:
        return f"WebhookSettings(url={mask_url(self.url)!r}, timeout={self.timeout})"


@dataclass(frozen=True)
class EmailSettings:
    """Email over SMTP; credentials come only from the environment and never reach a log line."""

    host: str
    sender: str
    recipients: tuple[str, ...]
    port: int = 587
    starttls: bool = True
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_file: Path | None = None
    timeout: timedelta = timedelta(seconds=10)

    def __post_init__(self) -> None:
        if not self.host.strip():
            raise ValueError("SMTP host must not be empty")
        if not 0 < self.port < 65536:
            raise ValueError(f"SMTP port must be 1..65535, got {self.port}")
        if "@" not in self.sender:
            raise ValueError(f"email sender must be an address, got {self.sender!r}")
        if not self.recipients or any("@" not in r for r in self.recipients):
            raise ValueError("email needs at least one recipient address (--smtp-to)")
        if (self.username is None) != (self.password is None):
            raise ValueError("SMTP credentials need both CLICKPULSE_SMTP_USER and CLICKPULSE_SMTP_PASSWORD")
        if self.password is not None and not self.starttls:
            raise ValueError("SMTP credentials are only sent over STARTTLS: drop --no-smtp-starttls or the credentials")
        if self.ca_file is not None and not self.ca_file.is_file():
            raise ValueError(f"SMTP CA file {self.ca_file} does not exist")
        if self.timeout <= timedelta(0):
            raise ValueError("SMTP timeout must be positive")


@dataclass(frozen=True)
class DeliverySettings:
    """How hard each channel tries: `attempts` per notification, waiting `backoff`, then twice that, between them."""

    attempts: int = 3
    backoff: timedelta = timedelta(seconds=1)

    def __post_init__(self) -> None:
        if not 1 <= self.attempts <= 10:
            raise ValueError(f"delivery attempts must be 1..10, got {self.attempts}")
        if self.backoff < timedelta(0):
            raise ValueError("delivery backoff must not be negative")


@dataclass(frozen=True)
class AlertsSettings:
    """Everything the alerts program needs; validated on construction."""

    mongo_uri: str = field(repr=False)
    rules: tuple[RuleSettings, ...]
    database: str = c.DEFAULT_DATABASE
    bootstrap_servers: str = "127.0.0.1:9092"
    interval: timedelta = timedelta(seconds=30)
    repeat_interval: timedelta = timedelta(hours=1)
    webhook: WebhookSettings | None = None
    email: EmailSettings | None = None
    delivery: DeliverySettings = DeliverySettings()
    kafka_timeout: timedelta = timedelta(seconds=10)
    mongo_timeout: timedelta = timedelta(seconds=5)
    log_format: str = "text"

    def __post_init__(self) -> None:
        if not self.mongo_uri.startswith(("mongodb://", "mongodb+srv://")):
            raise ValueError("Mongo URI must start with mongodb:// or mongodb+srv://")
        if not self.database or any(ch in self.database for ch in "/\\. \"$"):
            raise ValueError(f"invalid Mongo database name: {self.database!r}")
        if not self.bootstrap_servers.strip():
            raise ValueError("Kafka bootstrap servers must not be empty")
        if self.interval < timedelta(seconds=0.1):
            raise ValueError("interval must be at least 0.1s")
        if self.repeat_interval <= timedelta(0):
            raise ValueError("repeat interval must be positive")
        if self.kafka_timeout <= timedelta(0) or self.mongo_timeout <= timedelta(0):
            raise ValueError("timeouts must be positive")
        if self.log_format not in ("text", "json"):
            raise ValueError(f"log format must be text or json, got {self.log_format!r}")
        names = [r.name for r in self.rules]
        if len(set(names)) != len(names):
            raise ValueError("each rule may appear once")

    @property
    def enabled_rules(self) -> tuple[RuleSettings, ...]:
        return tuple(r for r in self.rules if r.enabled)

    @property
    def lookback(self) -> timedelta:
        """How far back the rounds read batches: the longest window of an enabled rule (at least 2 minutes)."""
        return max([timedelta(minutes=2), *(r.window for r in self.enabled_rules if r.window is not None)])
