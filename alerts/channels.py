"""Where notifications go: a log line, an HTTP webhook (Slack-compatible JSON) and email over SMTP.

Each channel delivers on its own thread and retries with backoff, so a failing or hanging channel never holds up
the others; every failure is logged and returned, and secrets never reach a log line or an error message.
"""

from __future__ import annotations

import json
import logging
import smtplib
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from typing import Any, Protocol

from alerts.settings import DeliverySettings, EmailSettings, WebhookSettings, mask_url

log = logging.getLogger("clickpulse.alerts")
notify_log = logging.getLogger("clickpulse.alerts.notify")


@dataclass(frozen=True)
class Notification:
    """One message about one alert episode."""

    kind: str  # state.Kind: firing, still firing, resolved
    rule: str
    title: str  # one line, e.g. "[FIRING] clickpulse batch_age: Staleness: newest batch"
    text: str  # the title and what was measured, one line
    details: dict[str, Any] = field(default_factory=dict)  # JSON-ready facts for machines


@dataclass(frozen=True)
class Delivery:
    """How one notification fared on one channel."""

    channel: str
    notification: Notification
    ok: bool
    attempts: int
    error: str | None = None
    at: datetime | None = None


class Channel(Protocol):
    name: str

    def send(self, n: Notification) -> None:
        """Deliver or raise (with a message that holds no secret)."""


class LogChannel:
    """A log line per notification (WARNING while firing, INFO when resolved); JSON logs carry `alert` as an object."""

    name = "log"

    def __str__(self) -> str:
        return "log"

    def send(self, n: Notification) -> None:
        level = logging.INFO if n.kind == "resolved" else logging.WARNING
        notify_log.log(level, "%s", n.text, extra={"alert": n.details})


class WebhookChannel:
    """A JSON POST with a top-level `text` (what Slack, Mattermost and Rocket.Chat incoming webhooks show) and the
    alert's facts under `alert`."""

    name = "webhook"

    def __init__(self, settings: WebhookSettings) -> None:
        self._settings = settings

    def __str__(self) -> str:
        return f"webhook {mask_url(self._settings.url)}"

    def send(self, n: Notification) -> None:
        body = json.dumps({"text": n.text, "alert": n.details}, default=str).encode()
        request = urllib.request.Request(self._settings.url, data=body, method="POST",  # noqa: S310 (http(s) only)
                                         headers={"Content-Type": "application/json", "User-Agent": "clickpulse-alerts"})
        try:
            with urllib.request.urlopen(request, timeout=self._settings.timeout.total_seconds()) as response:  # noqa: S310 (see above)
                response.read()
        except urllib.error.HTTPError as e:
            raise RuntimeError(f"HTTP {e.code} {e.reason}") from None
        except urllib.error.URLError as e:
            raise RuntimeError(f"cannot reach {mask_url(self._settings.url)}: {e.reason}") from None
        except TimeoutError:
            raise RuntimeError(f"no answer from {mask_url(self._settings.url)} within "
                               f"{self._settings.timeout.total_seconds():g} s") from None


class EmailChannel:
    """One email per notification over SMTP, upgraded with STARTTLS (verified) before any credential is sent."""

    name = "email"

    def __init__(self, settings: EmailSettings) -> None:
        self._settings = settings

    def __str__(self) -> str:
        return f"email via {self._settings.host}:{self._settings.port}"

    def message(self, n: Notification) -> EmailMessage:
        s = self._settings
        msg = EmailMessage()
        msg["Subject"] = n.title
        msg["From"] = s.sender
        msg["To"] = ", ".join(s.recipients)
        facts = "\n".join(f"{k}: {v}" for k, v in n.details.items())
        msg.set_content(f"{n.text}\n\n{facts}\n")
        return msg

    def send(self, n: Notification) -> None:
        s = self._settings
        try:
            with smtplib.SMTP(s.host, s.port, timeout=s.timeout.total_seconds()) as smtp:
                if s.starttls:
                    context = ssl.create_default_context(cafile=str(s.ca_file) if s.ca_file else None)
                    smtp.starttls(context=context)
                if s.username is not None and s.password is not None:
                    smtp.login(s.username, s.password)
                smtp.send_message(self.message(n))
        except smtplib.SMTPAuthenticationError as e:
            raise RuntimeError(f"SMTP server refused the credentials of CLICKPULSE_SMTP_USER ({e.smtp_code})") from None
        except (smtplib.SMTPException, OSError) as e:
            raise RuntimeError(f"{type(e).__name__}: {e}") from None


def deliver(channels: Sequence[Channel], notifications: Sequence[Notification], delivery: DeliverySettings,
            clock: Callable[[], datetime], sleep: Callable[[float], None] = time.sleep) -> list[Delivery]:
    """Send every notification on every channel: channels in parallel, each channel's notifications in order."""
    if not channels or not notifications:
        return []
    with ThreadPoolExecutor(max_workers=len(channels), thread_name_prefix="alerts-channel") as pool:
        futures = [pool.submit(_send_all, ch, notifications, delivery, clock, sleep) for ch in channels]
        return [d for f in futures for d in f.result()]


def _send_all(channel: Channel, notifications: Sequence[Notification], delivery: DeliverySettings,
              clock: Callable[[], datetime], sleep: Callable[[float], None]) -> list[Delivery]:
    return [_send(channel, n, delivery, clock, sleep) for n in notifications]


def _send(channel: Channel, n: Notification, delivery: DeliverySettings, clock: Callable[[], datetime],
          sleep: Callable[[float], None]) -> Delivery:
    wait = delivery.backoff.total_seconds()
    error = ""
    for attempt in range(1, delivery.attempts + 1):
        try:
            channel.send(n)
            if attempt > 1:
                log.info("%s delivered %s %s on attempt %d", channel, n.kind, n.rule, attempt)
            return Delivery(channel.name, n, True, attempt, at=clock())
        except Exception as e:
            error = str(e) or type(e).__name__
            if attempt < delivery.attempts:
                log.warning("%s failed to deliver %s %s (attempt %d of %d): %s; retrying in %g s", channel, n.kind,
                            n.rule, attempt, delivery.attempts, error, wait)
                sleep(wait)
                wait *= 2
    log.error("%s gave up on %s %s after %d attempt%s: %s", channel, n.kind, n.rule, delivery.attempts,
              "s" if delivery.attempts > 1 else "", error)
    return Delivery(channel.name, n, False, delivery.attempts, error, clock())
