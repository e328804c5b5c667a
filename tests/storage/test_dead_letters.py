"""Dead-letter documents: whatever was refused, the record of it is plain, bounded and stable across replays."""

from __future__ import annotations

from datetime import UTC, datetime

from bson.errors import InvalidDocument
from pymongo.errors import OperationFailure

from storage import contract as c
from storage.dead_letters import Rejected, dead_letter, escaped

NOW = datetime(2026, 11, 23, 14, 5, tzinfo=UTC)


def test_text_a_store_may_refuse_is_escaped_to_printable_ascii():
    # NUL, a lone surrogate, non-ASCII and a backslash; the escape is reversible (a backslash doubles)
    assert escaped("a\x00b\ud800é\\", 100) == ("a\\u0000b\\ud800\\u00e9\\\\", False)


def test_a_refused_document_becomes_a_dead_letter_keyed_by_collection_and_id():
    error = OperationFailure("ERROR: unsupported Unicode escape sequence (SQLSTATE 22P05)", 1)
    doc = {c.ID: "2026-11-23T14:00:00Z|u\x00", c.USER_ID: "u\x00", c.EVENTS: 3}
    letter = dead_letter(Rejected(c.USER_SESSIONS, doc[c.ID], c.REPLACE, doc, error), NOW)
    assert letter == {
        c.ID: "user_sessions|2026-11-23T14:00:00Z|u\\u0000", c.TARGET_COLLECTION: c.USER_SESSIONS,
        c.DOCUMENT_ID: "2026-11-23T14:00:00Z|u\\u0000", c.FIELD: None, c.OPERATION: c.REPLACE,
        c.ERROR: "OperationFailure: ERROR: unsupported Unicode escape sequence (SQLSTATE 22P05)", c.ERROR_CODE: 1,
        c.EXCERPT: '{"_id": "2026-11-23T14:00:00Z|u\\u0000", "user_id": "u\\u0000", "events": 3}',
        c.EXCERPT_TRUNCATED: False, c.FAILED_AT: NOW, c.DAY: "2026-11-23", c.HOUR: "2026-11-23T14",
    }


def test_a_refused_merge_entry_names_its_field_and_shows_only_that_entry():
    fields = {"views.ok": 1, "views.b\x00d": 2}
    letter = dead_letter(Rejected(c.PAGE_VIEWS, "2026-11-23T14:00:00Z|03", c.MERGE, fields,
                                  InvalidDocument("Key names must not contain the NULL byte"), field="views.b\x00d"), NOW)
    assert letter[c.ID] == "page_views|2026-11-23T14:00:00Z|03|views.b\\u0000d"
    assert (letter[c.FIELD], letter[c.EXCERPT], letter[c.ERROR_CODE]) == ("views.b\\u0000d", '{"views.b\\u0000d": 2}',
                                                                          None)


def test_a_huge_document_leaves_a_bounded_excerpt_and_a_bounded_id():
    doc = {c.ID: "k" * 5000, "pad": "x" * 100_000}
    letter = dead_letter(Rejected(c.PAGE_VIEWS, doc[c.ID], c.REPLACE, doc, ValueError("too big")), NOW)
    assert len(letter[c.EXCERPT]) == c.DEAD_LETTER_EXCERPT_CHARS and letter[c.EXCERPT_TRUNCATED]
    assert len(letter[c.ID]) == c.DEAD_LETTER_ID_CHARS


def test_two_long_ids_that_share_their_start_keep_apart():
    def long_id(tail: str) -> str:
        return dead_letter(Rejected(c.PAGE_VIEWS, "k" * 1000 + tail, c.REPLACE, {}, ValueError()), NOW)[c.ID]

    assert long_id("a") != long_id("b")
