"""Which windows the job computes (pipeline_layout): written at job start, read by everything that shows windows.

Panes are one slide long, so a window of any size is the sum of its panes; readers need each aggregate's size and
slide to know which panes make a window, and the job is the one that knows them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pymongo.database import Database

from storage import contract as c


@dataclass(frozen=True)
class Windows:
    """One aggregate's sliding windows: `size` long, one starting every `slide` (starts aligned to the slide)."""

    size: timedelta
    slide: timedelta

    def __post_init__(self) -> None:
        if self.slide <= timedelta(0) or self.size % self.slide != timedelta(0):
            raise ValueError(f"window size {self.size} must be a positive whole multiple of its slide {self.slide}")

    def ending_by(self, instant: datetime) -> tuple[datetime, datetime]:
        """(start, end) of the newest window ending at or before `instant` (aware UTC)."""
        epoch = datetime(1970, 1, 1, tzinfo=UTC)
        end = epoch + ((instant.astimezone(UTC) - epoch) // self.slide) * self.slide
        return end - self.size, end

    def panes(self, start: datetime) -> list[datetime]:
        """Start of every pane of the window starting at `start`, oldest first."""
        return [start + i * self.slide for i in range(self.size // self.slide)]

    def to_document(self) -> dict[str, int]:
        return {c.WINDOW_SECONDS: int(self.size.total_seconds()), c.SLIDE_SECONDS: int(self.slide.total_seconds())}

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> Windows:
        return cls(timedelta(seconds=int(doc[c.WINDOW_SECONDS])), timedelta(seconds=int(doc[c.SLIDE_SECONDS])))


@dataclass(frozen=True)
class Layout:
    """The windows of all three aggregates."""

    active_users: Windows
    page_views: Windows
    user_sessions: Windows

    def of(self, collection: str) -> Windows:
        return {c.ACTIVE_USERS: self.active_users, c.PAGE_VIEWS: self.page_views,
                c.USER_SESSIONS: self.user_sessions}[collection]


def public_url(url: str | None) -> str | None:
    """An http(s) URL reduced to scheme, host, port and path (no user, password, query or fragment); None otherwise."""
    if not url:
        return None
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return urlunsplit((parts.scheme, host if port is None else f"{host}:{port}", parts.path, "", ""))


def write_layout(db: Database, layout: Layout, spark_ui: str | None = None) -> None:
    """Record what the job computes and where its Spark UI answers (idempotent; the next job start replaces it)."""
    db[c.PIPELINE_LAYOUT].replace_one(
        {c.ID: c.LAYOUT_ID},
        {**{coll: layout.of(coll).to_document() for coll in c.AGGREGATE_COLLECTIONS},
         c.SPARK_UI: public_url(spark_ui), c.UPDATED_AT: datetime.now(UTC)},
        upsert=True,
    )


def read_layout(db: Database) -> Layout | None:
    """What the job last said it computes; None before any job ran against this database."""
    doc = db[c.PIPELINE_LAYOUT].find_one({c.ID: c.LAYOUT_ID})
    if doc is None:
        return None
    return Layout(*(Windows.from_document(doc[coll]) for coll in (c.ACTIVE_USERS, c.PAGE_VIEWS, c.USER_SESSIONS)))
