"""The alerts at the top of the report: what fires now, and the alert history (the alerts program's collection)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import streamlit as st
from pymongo.database import Database
from pymongo.errors import PyMongoError

from reporting import labels, tables
from storage import contract as c
from storage.alerts import alert_history, firing_alerts
from storage.client import mask_uri

Doc = dict[str, Any]
HISTORY_DAYS = 7  # the job's default retention
HISTORY_LIMIT = 200


@st.cache_data(ttl=60, max_entries=16, show_spinner=False)
def alerts_data(_db: Database, uri: str, database: str, as_of: datetime) -> tuple[list[Doc], list[Doc]]:
    """Firing alerts and the history of the last days (cached per database and `as_of`, like the page's data)."""
    days = [c.day_bucket(as_of - timedelta(days=d)) for d in range(HISTORY_DAYS)]
    return firing_alerts(_db), alert_history(_db, days, HISTORY_LIMIT)


def _deliveries(doc: Doc) -> str:
    sent = doc.get(c.DELIVERIES) or []
    failed = [d for d in sent if not d.get(c.DELIVERED)]
    text = f"{len(sent) - len(failed)} sent"
    return text + (f", {len(failed)} failed ({', '.join(sorted({d[c.CHANNEL] for d in failed}))})" if failed else "")


def history_row(doc: Doc) -> Doc:
    def when(name: str) -> str:
        return labels.utc(doc.get(name)) if doc.get(name) else ""

    return {"rule": doc[c.RULE], "state": doc[c.STATE], "started (UTC)": when(c.STARTED_AT),
            "fired (UTC)": when(c.FIRED_AT), "ended (UTC)": when(c.RESOLVED_AT),
            "newest measurement": doc.get(c.SUMMARY) or "", "notifications": _deliveries(doc)}


def show(db: Database, uri: str, as_of: datetime) -> None:
    """Firing alerts as red boxes, then the history in an expander; a caption when the alerts cannot be read."""
    try:
        firing, history = alerts_data(db, uri, db.name, as_of)
    except PyMongoError as e:
        st.caption(f"Alerts could not be read from {mask_uri(uri)}: {str(e).splitlines()[0][:200]}")
        return
    for a in firing:
        st.error(f"**Alert firing: {a[c.RULE]}** since {labels.utc(a.get(c.FIRED_AT))} — {a.get(c.SUMMARY) or ''}",
                 icon="🚨")
    if not history:
        st.caption(f"No alert in the last {HISTORY_DAYS} days (`python -m alerts` watches the pipeline and records "
                   "them here).")
        return
    label = (f"Alert history: {len(history)} alert{'s' if len(history) != 1 else ''} in the last {HISTORY_DAYS} days"
             f"{f' (the newest {HISTORY_LIMIT})' if len(history) >= HISTORY_LIMIT else ''}, {len(firing)} firing")
    with st.expander(label, expanded=bool(firing)):
        tables.show([history_row(d) for d in history], "alert-history")
