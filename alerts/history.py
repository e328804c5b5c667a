"""Alert episodes as documents of the `alerts` collection (storage/contract.py), and back."""

from __future__ import annotations

import logging
from typing import Any

from pymongo.database import Database

from alerts.snapshot import as_utc
from alerts.state import Episode, State, Transition
from storage import contract as c
from storage.alerts import open_alerts, save_alert

log = logging.getLogger(__name__)


def to_doc(e: Episode) -> dict[str, Any]:
    return {
        c.ID: e.id, c.RULE: e.rule, c.STATE: str(e.state), c.STARTED_AT: e.started_at, c.FIRED_AT: e.fired_at,
        c.RESOLVED_AT: e.resolved_at, c.LAST_NOTIFIED_AT: e.last_notified_at, c.CLEAR_SINCE: e.clear_since,
        c.VALUE: e.value, c.THRESHOLD: e.threshold, c.SUMMARY: e.summary, c.CHECKS: e.checks,
        c.LAST_CHECKED_AT: e.last_checked_at,
        c.TRANSITIONS: [{c.STATE: str(t.state), c.AT: t.at, c.VALUE: t.value} for t in e.transitions],
        c.DELIVERIES: list(e.deliveries),
    }


def _time(doc: dict[str, Any], name: str):
    return as_utc(doc[name]) if doc.get(name) is not None else None


def from_doc(doc: dict[str, Any]) -> Episode:
    return Episode(
        rule=doc[c.RULE], state=State(doc[c.STATE]), started_at=as_utc(doc[c.STARTED_AT]),
        threshold=float(doc[c.THRESHOLD]), value=doc.get(c.VALUE), summary=doc.get(c.SUMMARY) or "",
        transitions=tuple(Transition(State(t[c.STATE]), as_utc(t[c.AT]), t.get(c.VALUE))
                          for t in doc.get(c.TRANSITIONS) or []),
        fired_at=_time(doc, c.FIRED_AT), resolved_at=_time(doc, c.RESOLVED_AT),
        last_notified_at=_time(doc, c.LAST_NOTIFIED_AT), clear_since=_time(doc, c.CLEAR_SINCE),
        checks=int(doc.get(c.CHECKS) or 1), last_checked_at=_time(doc, c.LAST_CHECKED_AT),
        deliveries=tuple(doc.get(c.DELIVERIES) or ()),
    )


def load_open(db: Database) -> dict[str, Episode]:
    """The open episode of each rule. Should a rule have several (two programs watched one database), the newest
    counts and the others are left as they are."""
    out: dict[str, Episode] = {}
    for doc in open_alerts(db):  # oldest first: the newest wins
        if doc[c.RULE] in out:
            log.warning("rule %s has more than one open alert (is a second alerts program watching %s?); "
                        "following the newest", doc[c.RULE], db.name)
        out[doc[c.RULE]] = from_doc(doc)
    return out


def save(db: Database, e: Episode) -> None:
    save_alert(db, to_doc(e))
