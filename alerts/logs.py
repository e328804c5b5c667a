"""The alerts program's log lines: text or one JSON object per line, with every secret redacted."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable
from datetime import UTC, datetime

from storage.client import mask_uri

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_HANDLER = "clickpulse-alerts"


class JsonFormatter(logging.Formatter):
    """{"time", "level", "logger", "message"} plus `alert` (a notification's facts) when the record has one."""

    def format(self, record: logging.LogRecord) -> str:
        doc = {"time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
               "level": record.levelname, "logger": record.name, "message": record.getMessage()}
        if isinstance(getattr(record, "alert", None), dict):
            doc["alert"] = record.alert  # type: ignore[attr-defined]
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str)


class Redacting(logging.Formatter):
    """Wraps a formatter: Mongo URI passwords and the given secrets become `***` in the finished line."""

    def __init__(self, inner: logging.Formatter, secrets: Iterable[str]) -> None:
        super().__init__()
        self._inner = inner
        # Longest first, so a secret that contains another is replaced whole; also their JSON-escaped forms.
        found = {s for s in secrets if s and len(s) >= 3}
        found |= {json.dumps(s)[1:-1] for s in found}
        self._secrets = sorted(found, key=len, reverse=True)

    def format(self, record: logging.LogRecord) -> str:
        line = mask_uri(self._inner.format(record))
        for secret in self._secrets:
            line = line.replace(secret, "***")
        return line


def configure(log_format: str, level: str, secrets: Iterable[str]) -> None:
    """Log to stderr in `log_format` (text or json) at `level`, redacting `secrets`."""
    handler = logging.StreamHandler(sys.stderr)
    inner = JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    handler.setFormatter(Redacting(inner, secrets))
    handler.set_name(_HANDLER)
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER]:  # a second run in one process replaces it
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("kafka", "pymongo", "urllib3", "mail.log"):
        logging.getLogger(noisy).setLevel(logging.WARNING if level != "DEBUG" else logging.DEBUG)
    logging.getLogger("kafka").setLevel(logging.CRITICAL)  # it logs every reconnect; our lines say what matters
