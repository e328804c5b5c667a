"""One round of watching: read what the job recorded and Kafka, measure every rule, advance its alert, record the
alert's transitions in MongoDB and notify."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from pymongo.database import Database
from pymongo.errors import PyMongoError

from alerts import history
from alerts.channels import Channel, Delivery, Notification, deliver
from alerts.offsets import KafkaUnavailable, read_kafka
from alerts.readings import read_job
from alerts.rules import BY_NAME, Measurement, age_text, utc_text, value_text
from alerts.settings import AlertsSettings, RuleSettings
from alerts.snapshot import KafkaView, Snapshot
from alerts.state import Episode, Kind, State, step
from storage import contract as c

log = logging.getLogger("clickpulse.alerts")

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def short_error(e: Exception) -> str:
    """The first, human part of a driver error (pymongo appends its whole topology description)."""
    text = str(e).split(" (configured timeouts")[0].split(", Timeout:")[0].strip()
    return text.splitlines()[0][:300] if text else type(e).__name__


@dataclass(frozen=True)
class RoundResult:
    """What one round did: the episodes it touched, what it sent and how that went, what it could not read."""

    at: datetime
    episodes: tuple[Episode, ...]
    deliveries: tuple[Delivery, ...]
    problems: tuple[str, ...]

    @property
    def firing(self) -> tuple[str, ...]:
        return tuple(e.rule for e in self.episodes if e.state is State.FIRING)


def notification(kind: Kind, e: Episode, rule: RuleSettings) -> Notification:
    """The message for one episode: a title line and the measurement in words."""
    spec = BY_NAME[rule.name]
    label = {Kind.FIRING: "FIRING", Kind.REPEAT: "STILL FIRING", Kind.RESOLVED: "RESOLVED"}[kind]
    title = f"[{label}] clickpulse {rule.name}: {spec.title}"
    if kind is Kind.RESOLVED:
        said = (f"back at or below {value_text(spec.unit, rule.clear)} (fired {utc_text(e.fired_at)})"
                if e.fired_at else "back to normal")
    else:
        said = (f"above {value_text(spec.unit, rule.threshold)} for {age_text(rule.for_.total_seconds())} or more "
                f"(since {utc_text(e.started_at)})")
    details = {"rule": rule.name, "title": spec.title, "state": str(e.state), "kind": str(kind),
               "value": e.value, "value_text": value_text(spec.unit, e.value), "threshold": rule.threshold,
               "clear": rule.clear, "unit": str(spec.unit), "for_seconds": rule.for_.total_seconds(),
               "started_at": e.started_at.isoformat(), "fired_at": e.fired_at.isoformat() if e.fired_at else None,
               "resolved_at": e.resolved_at.isoformat() if e.resolved_at else None, "summary": e.summary,
               "alert_id": e.id}
    return Notification(str(kind), rule.name, title, f"{title} — {e.summary}; {said}", details)


class Watcher:
    """Keeps the open alert of each rule between rounds (loaded from MongoDB first, so restarts carry on)."""

    def __init__(self, settings: AlertsSettings, db: Database, channels: Sequence[Channel], clock: Clock = utc_now,
                 sleep: Callable[[float], None] | None = None) -> None:
        self._s = settings
        self._db = db
        self._channels = list(channels)
        self._clock = clock
        self._sleep = sleep
        self._open: dict[str, Episode] | None = None
        self._unsaved: dict[str, Episode] = {}  # closed episodes whose last write failed, retried next round

    def round(self) -> RoundResult:
        """Measure, advance, record, notify. Raises PyMongoError when the alerts' own state cannot be read."""
        now = self._clock()
        if self._open is None:
            self._open = history.load_open(self._db)
        snapshot = self._snapshot(now)
        for problem in snapshot.problems:
            log.warning("%s", problem)
        touched: list[Episode] = []
        owed: list[tuple[Kind, Episode, RuleSettings]] = []
        for rule in self._s.enabled_rules:
            m: Measurement = BY_NAME[rule.name].measure(snapshot, rule)
            before = self._open.get(rule.name)
            result = step(rule, before, m.value, m.summary, now, self._s.repeat_interval)
            e = result.episode
            if e is None:
                continue
            if e.open:
                self._open[rule.name] = e
            else:
                self._open.pop(rule.name, None)
            if before is None or before.state != e.state:
                self._log_state(e, rule)
            touched.append(e)
            if result.notify is not None:
                owed.append((result.notify, e, rule))
        self._save_all(touched)
        sent = deliver(self._channels, [notification(k, e, r) for k, e, r in owed], self._s.delivery, self._clock,
                       **({"sleep": self._sleep} if self._sleep else {}))
        touched = self._record_deliveries(touched, sent)
        return RoundResult(now, tuple(touched), tuple(sent), snapshot.problems)

    def _snapshot(self, now: datetime) -> Snapshot:
        problems: list[str] = []
        job = read_job(self._db, now, self._s.lookback)
        kafka: KafkaView | None = None
        try:
            kafka = read_kafka(self._s.bootstrap_servers, job.positions, self._s.kafka_timeout)
        except KafkaUnavailable as e:
            problems.append(f"{e} (lag rules unknown this round)")
        return Snapshot(now=now, points=job.points, newest_batch_at=job.newest_batch_at,
                        newest_write_at=job.newest_write_at, newest_window_start=job.newest_window_start,
                        positions=job.positions, kafka=kafka, problems=tuple(problems))

    @staticmethod
    def _log_state(e: Episode, rule: RuleSettings) -> None:
        """Pending and cancelled are logged here; firing and resolved go out as notifications (the log channel)."""
        if e.state is State.PENDING:
            log.info("%s pending: %s (fires if it lasts %s)", e.rule, e.summary, age_text(rule.for_.total_seconds()))
        elif e.state is State.CANCELLED:
            log.info("%s cancelled before it fired: %s", e.rule, e.summary)

    def _save_all(self, episodes: Sequence[Episode]) -> None:
        pending = {**self._unsaved, **{e.id: e for e in episodes}}
        self._unsaved = {}
        for e in pending.values():
            try:
                history.save(self._db, e)
            except PyMongoError as err:
                log.error("could not record alert %s in %s.%s: %s", e.id, self._db.name, c.ALERTS, short_error(err))
                if not e.open:
                    self._unsaved[e.id] = e

    def _record_deliveries(self, episodes: list[Episode], sent: Sequence[Delivery]) -> list[Episode]:
        if not sent:
            return episodes
        out = []
        for e in episodes:
            mine = tuple({c.CHANNEL: d.channel, c.KIND: d.notification.kind, c.AT: d.at, c.DELIVERED: d.ok,
                          c.ATTEMPTS: d.attempts, c.ERROR: d.error}
                         for d in sent if d.notification.details.get("alert_id") == e.id)
            if mine:
                e = replace(e, deliveries=(*e.deliveries, *mine))
                if e.open:
                    self._open[e.rule] = e  # type: ignore[index]
            out.append(e)
        self._save_all([e for e in out if any(d.notification.details.get("alert_id") == e.id for d in sent)])
        return out


def run_forever(watcher: Watcher, interval_seconds: float, stop: threading.Event) -> None:
    """A round every `interval_seconds` (measured from each round's start) until `stop` is set."""
    while not stop.is_set():
        started = utc_now()
        try:
            watcher.round()
        except PyMongoError as e:
            log.error("round skipped: cannot read MongoDB: %s", short_error(e))
        except Exception as e:  # a bad round must not end the watch; the next one may succeed
            log.error("round failed: %s: %s", type(e).__name__, short_error(e))
            log.debug("details", exc_info=True)
        elapsed = (utc_now() - started).total_seconds()
        stop.wait(max(0.0, interval_seconds - elapsed))
