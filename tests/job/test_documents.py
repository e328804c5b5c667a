"""Output rows -> storage writes: bucket `$set`s of the window aggregates, user-session values journaled, and invalid
events with their buckets.

Plain Python on `Row`s shaped like the job's output (no Spark session): this is the code executors run per partition.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pyspark.sql import Row

from storage import contract as c
from storage.sink import Merge, New
from streaming_job import documents
from streaming_job.documents import aggregate_documents, invalid_documents

FIVE = timedelta(minutes=5)
MINUTE = timedelta(minutes=1)


def t(hh: int, mm: int, day: int = 23) -> datetime:
    """A naive UTC instant, as Spark hands timestamp_ntz columns to Python."""
    return datetime(2026, 11, day, hh, mm)


def active(start: datetime, users: int, events: int = 10) -> Row:
    return Row(kind=c.ACTIVE_USERS, window_start=start, window_end=start + FIVE, key="", subkey="", events=events,
               users=users)


def session(pane: datetime, user: str, session_id: str, events: int) -> Row:
    return Row(kind=c.USER_SESSIONS, window_start=pane, window_end=pane + MINUTE, key=user, subkey=session_id,
               events=events, users=0)


def page(pane: datetime, url: str, views: int) -> Row:
    return Row(kind=c.PAGE_VIEWS, window_start=pane, window_end=pane + MINUTE, key=url, subkey="", events=views, users=0)


BATCH = 7


def writes(rows: list[Row]) -> list[tuple[str, Merge | New]]:
    out = list(aggregate_documents(BATCH)(iter(rows)))
    assert all(isinstance(m, New if coll == c.USER_SESSIONS_JOURNAL else Merge) for coll, m in out)
    return out


def test_active_users_windows_are_set_into_the_document_of_their_utc_day():
    # Given three active-users windows, two on one day and one on the next
    rows = [active(t(10, 0), users=3), active(t(10, 1), users=4), active(t(0, 0, day=24), users=5)]
    # When they become writes
    got = writes(rows)
    # Then there is one `$set` per day, keyed by the day, holding each window's distinct users under its start time
    assert got == [
        (c.ACTIVE_USERS, Merge("2026-11-23", {c.DAY: "2026-11-23", c.WINDOW_SECONDS: 300,
                                              "active_users.100000": 3, "active_users.100100": 4})),
        (c.ACTIVE_USERS, Merge("2026-11-24", {c.DAY: "2026-11-24", c.WINDOW_SECONDS: 300, "active_users.000000": 5})),
    ]


def test_page_views_are_set_into_their_pane_shard_under_an_escaped_url():
    # Given a pane with a plain URL and one with dots and a dollar sign
    rows = [page(t(10, 0), "/a", 2), page(t(10, 0), "/b.html?$x=1", 5)]
    # When they become writes
    got = writes(rows)
    # Then each URL's views go to the shard its stable hash picks, under a field name without "." or "$"
    by_field = {f: (m.id, v) for _, m in got for f, v in m.fields.items() if f.startswith("views.")}
    shard_a, shard_b = c.shard_of("/a", c.PAGE_VIEWS), c.shard_of("/b.html?$x=1", c.PAGE_VIEWS)
    assert by_field == {"views./a": (c.pane_id(t(10, 0), shard_a), 2),
                        "views./b%2Ehtml?%24x=1": (c.pane_id(t(10, 0), shard_b), 5)}
    assert all(m.fields[c.PANE_START] == t(10, 0) and m.fields[c.PANE_END] == t(10, 1) for _, m in got)


def test_user_sessions_are_journaled_under_user_and_session_one_new_document_per_pane():
    # Given one user in two sessions of one pane, and another user in the next pane
    rows = [session(t(10, 0), "usr.1", "s|1", 3), session(t(10, 0), "usr.1", "s2", 1), session(t(10, 1), "u2", "s", 4)]
    # When they become writes
    got = writes(rows)
    # Then each pane gets one new journal document of this batch, each value under "<user>|<session>" (escaped so
    # "|" still splits them)
    assert [coll for coll, _ in got] == [c.USER_SESSIONS_JOURNAL] * 2
    first, second = (new.doc for _, new in got)
    assert (first[c.PANE_START], first[c.PANE_END], first[c.BATCH_ID]) == (t(10, 0), t(10, 1), BATCH)
    assert first[c.EVENTS] == {"usr%2E1|s%7C1": 3, "usr%2E1|s2": 1}
    assert [c.split_session_key(k) for k in first[c.EVENTS]] == [("usr.1", "s|1"), ("usr.1", "s2")]
    assert (second[c.PANE_START], second[c.EVENTS]) == (t(10, 1), {"u2|s": 4})
    assert first[c.ID].startswith("2026-11-23T10:00:00Z|7|") and first[c.ID] != second[c.ID]


def test_two_writers_of_one_batch_never_share_a_journal_document():
    # Given the same pane's values in two partitions of one batch
    rows = [session(t(10, 0), "u", "s", 1)]
    # When each partition becomes writes
    [(_, one)], [(_, other)] = writes(rows), writes(rows)
    # Then their journal documents have ids of their own (neither replaces the other)
    assert one.doc[c.ID] != other.doc[c.ID]


def test_panes_are_written_before_the_active_users_windows_that_reveal_them():
    # Given a partition mixing kinds, active users first
    rows = [active(t(10, 0), 3), page(t(10, 0), "/a", 1), session(t(10, 0), "u", "s", 1)]
    # When it becomes writes
    kinds = [coll for coll, _ in writes(rows)]
    # Then the panes come first: the report finds windows through active_users, and should find their panes written
    assert kinds == [c.USER_SESSIONS_JOURNAL, c.PAGE_VIEWS, c.ACTIVE_USERS]


def test_a_bucket_with_many_changes_is_written_in_bounded_pieces(monkeypatch):
    # Given a write limit of 3 values, and 7 pages of one pane all in shard 0
    monkeypatch.setattr(documents, "MAX_VALUES_PER_WRITE", 3)
    monkeypatch.setattr(c, "SHARDS", {**c.SHARDS, c.PAGE_VIEWS: 1})
    rows = [page(t(10, 0), f"/p{i}", 1) for i in range(7)]
    # When they become writes
    got = writes(rows)
    # Then they go out as 3 + 3 + 1 values of the same document, together all seven
    assert [len([f for f in m.fields if f.startswith("views.")]) for _, m in got] == [3, 3, 1]
    assert len({m.id for _, m in got}) == 1


def test_a_pane_with_many_user_sessions_is_journaled_in_bounded_documents(monkeypatch):
    # Given a write limit of 3 values, and 7 users of one pane
    monkeypatch.setattr(documents, "MAX_VALUES_PER_WRITE", 3)
    rows = [session(t(10, 0), f"u{i}", "s", 1) for i in range(7)]
    # When they become writes
    got = writes(rows)
    # Then they go out as journal documents of 3 + 3 + 1 values, each with an id of its own, together all seven
    assert [len(new.doc[c.EVENTS]) for _, new in got] == [3, 3, 1]
    assert len({new.doc[c.ID] for _, new in got}) == 3


def test_an_empty_partition_writes_nothing():
    assert list(aggregate_documents(BATCH)(iter([]))) == []


def test_escaping_is_reversible_for_any_text():
    # Given keys with every character the escape handles, and some it leaves alone
    keys = ["plain", "a.b", "$x", "100%", "a|b", "nul\x00here", "tab\tline\n", "é/ü?=&", "%2E", ""]
    # Then each escapes to a valid field name and back
    for k in keys:
        name = c.escape_key(k)
        assert "." not in name and not name.startswith("$") and "|" not in name and "\x00" not in name
        assert c.unescape_key(name) == k


def invalid_row(kafka_timestamp: datetime) -> Row:
    """An `invalid_events` row as `validation.invalid_events` shapes it (kafka_timestamp is naive UTC)."""
    return Row(_id="clicks-0-7", reason="malformed_json", detail="value is not valid JSON", raw="{oops",
               raw_truncated=False, topic="clicks", partition=0, offset=7, kafka_timestamp=kafka_timestamp)


def test_an_invalid_event_keeps_its_fields_and_gets_the_day_and_hour_of_its_kafka_timestamp():
    # Given an invalid record that reached Kafka one millisecond before midnight UTC
    ts = datetime(2026, 11, 23, 23, 59, 59, 999000)
    # When it becomes a document
    [(coll, doc)] = list(invalid_documents(iter([invalid_row(ts)])))
    # Then it is a new document: the row's fields plus the UTC day and hour of its Kafka timestamp
    assert coll == c.INVALID_EVENTS
    assert doc == New({**invalid_row(ts).asDict(), c.DAY: "2026-11-23", c.HOUR: "2026-11-23T23"})


def test_a_bot_second_becomes_one_whole_document_with_its_kafka_coordinates():
    # Given u.1 over the bot limit in the second 10:00:07, from offsets 100 to 111 of partition 2
    second = datetime(2026, 11, 23, 10, 0, 7)
    row = Row(kind=c.BOT_ACTIVITY, window_start=second, window_end=second + timedelta(seconds=1), key="u.1", subkey="",
              events=12, users=0, first=(2 << 40) + 100, last=(2 << 40) + 111)
    # When it becomes a write
    [(coll, merge)] = writes([row])
    # Then it is one document per user and second, keyed by both, with the coordinates spelled out and its buckets
    assert (coll, merge.id) == (c.BOT_ACTIVITY, "2026-11-23T10:00:07Z|u%2E1")
    assert merge.fields == {c.USER_ID: "u.1", c.SECOND: second, c.EVENTS: 12,
                            c.FIRST: {c.PARTITION: 2, c.OFFSET: 100}, c.LAST: {c.PARTITION: 2, c.OFFSET: 111},
                            c.DAY: "2026-11-23", c.HOUR: "2026-11-23T10"}
