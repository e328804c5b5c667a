"""Dead letters: what the sink could not write, recorded safely with the reason (see storage/contract.py)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from storage import contract as c
from storage.retry import describe


@dataclass(frozen=True)
class Rejected:
    """One operation the store refused for a reason of its own: a document, a merge, or one entry of a merge.

    `document_id` is the `_id` written to; `fields` is the whole document or the merge's fields; `field` names the
    one entry when only that entry was refused.
    """

    collection: str
    document_id: Any
    operation: str  # c.REPLACE or c.MERGE
    fields: Mapping[str, Any]
    error: BaseException
    field: str | None = None


_NOT_PLAIN = re.compile(r"[^\x20-\x5b\x5d-\x7e]")  # all but printable ASCII other than the backslash


def _escape(m: re.Match[str]) -> str:
    code = ord(m.group())
    return "\\\\" if code == 0x5C else (f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")


def escaped(text: str, limit: int | None = None) -> tuple[str, bool]:
    """`text` as printable ASCII (a NUL becomes the six characters \\u0000, a backslash two), cut to `limit`; and whether cut.

    What a store refused can hold anything: NUL, lone surrogates, megabytes. This form can always be stored.
    """
    out = _NOT_PLAIN.sub(_escape, text)
    return (out, False) if limit is None or len(out) <= limit else (out[:limit], True)


def excerpt(value: Any, limit: int = c.DEAD_LETTER_EXCERPT_CHARS) -> tuple[str, bool]:
    """A bounded, ASCII-escaped JSON rendering of a document or value (dates and other types as their text)."""
    try:
        text = json.dumps(value, ensure_ascii=True, default=str)
    except (RecursionError, ValueError, TypeError) as e:
        text = f"<not renderable: {type(e).__name__}>"
    return (text, False) if len(text) <= limit else (text[:limit], True)


def _id_text(document_id: Any) -> str:
    return document_id if isinstance(document_id, str) else repr(document_id)


def dead_letter(rejected: Rejected, now: datetime) -> dict[str, Any]:
    """The dead-letter document recording `rejected` (its `_id` repeats for the same operation, so replays rewrite it)."""
    doc_id = escaped(_id_text(rejected.document_id))[0]
    field = None if rejected.field is None else escaped(rejected.field)[0]
    shown = rejected.fields if rejected.field is None else {rejected.field: rejected.fields.get(rejected.field)}
    text, truncated = excerpt(shown)
    code = getattr(rejected.error, "code", None)
    return {
        c.ID: c.dead_letter_id(rejected.collection, doc_id, field),
        c.TARGET_COLLECTION: rejected.collection,
        c.DOCUMENT_ID: doc_id[: c.DEAD_LETTER_ID_CHARS],
        c.FIELD: None if field is None else field[: c.DEAD_LETTER_ID_CHARS],
        c.OPERATION: rejected.operation,
        c.ERROR: escaped(describe(rejected.error, limit=1000), 1000)[0],
        c.ERROR_CODE: code if isinstance(code, int) else None,
        c.EXCERPT: text,
        c.EXCERPT_TRUNCATED: truncated,
        c.FAILED_AT: now,
        **c.time_buckets(now),
    }
