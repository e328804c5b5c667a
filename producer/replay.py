"""Replaying a JSON-lines file as-is: each non-blank line is one message, keyed by its user_id when it has one."""

from __future__ import annotations

import json
from pathlib import Path

from clickpulse.events import USER_ID
from producer.generator import Event
from producer.settings import REPLAYED


def key_of(line: bytes) -> bytes | None:
    """The user_id of a JSON object line (utf-8), or None for anything else (the line is still sent)."""
    try:
        doc = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        return None
    user = doc.get(USER_ID) if isinstance(doc, dict) else None
    return user.encode() if isinstance(user, str) and user else None


class ReplaySource:
    """Lines of `path` as events of kind "replayed"; `next_event` returns None at the end of the file."""

    def __init__(self, path: Path) -> None:
        self._file = path.open("rb")

    def next_event(self, now_ms: int, stamp_ms: int | None = None) -> Event | None:
        for raw in self._file:
            line = raw.rstrip(b"\r\n")
            if line.strip():
                return Event(key_of(line), line, REPLAYED, now_ms if stamp_ms is None else stamp_ms)
        return None

    def close(self) -> None:
        self._file.close()
