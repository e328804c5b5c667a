"""Output rows -> storage documents: the window aggregates, their window catalog, and invalid events with buckets.

Plain Python on `Row`s shaped like the job's output (no Spark session): this is the code executors run per partition.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

from pyspark.sql import Row

from storage import contract as c
from storage.sink import Merge
from streaming_job.documents import aggregate_documents, invalid_documents

FIVE, FIFTEEN = timedelta(minutes=5), timedelta(minutes=15)


def t(hh: int, mm: int, day: int = 23) -> datetime:
    """A naive UTC instant, as Spark hands timestamp_ntz columns to Python."""
    return datetime(2026, 11, day, hh, mm)


def active(start: datetime, users: int, events: int = 10) -> Row:
    return Row(kind="a", window_start=start, window_end=start + FIVE, key="", events=events, members=users)


def session(start: datetime, user: str, sessions: int, events: int) -> Row:
    return Row(kind="u", window_start=start, window_end=start + FIVE, key=user, events=events, members=sessions)


def page(start: datetime, url: str, views: int) -> Row:
    return Row(kind="p", window_start=start, window_end=start + FIFTEEN, key=url, events=views, members=0)


def catalog_merges(pairs: list[tuple[str, object]]) -> dict[str, Merge]:
    merges = [item for coll, item in pairs if coll == c.WINDOW_CATALOG]
    assert all(isinstance(m, Merge) for m in merges)
    return {m.id: m for m in merges}


def test_each_row_becomes_the_document_of_its_collection():
    # Given one output row of each kind
    rows = [active(t(10, 0), users=7), session(t(10, 0), "usr_1", sessions=2, events=5), page(t(10, 0), "/a", views=3)]
    # When they become documents
    docs = [(coll, doc) for coll, doc in aggregate_documents(iter(rows)) if coll != c.WINDOW_CATALOG]
    # Then each goes to its collection, keyed by window start (and key), with its numbers
    assert docs == [
        (c.ACTIVE_USERS, {c.ID: "2026-11-23T10:00:00Z", c.WINDOW_START: t(10, 0), c.WINDOW_END: t(10, 5),
                          c.ACTIVE_USERS_COUNT: 7}),
        (c.USER_SESSIONS, {c.ID: "2026-11-23T10:00:00Z|usr_1", c.WINDOW_START: t(10, 0), c.WINDOW_END: t(10, 5),
                           c.USER_ID: "usr_1", c.SESSIONS: 2, c.EVENTS: 5}),
        (c.PAGE_VIEWS, {c.ID: "2026-11-23T10:00:00Z|/a", c.WINDOW_START: t(10, 0), c.WINDOW_END: t(10, 15),
                        c.PAGE_URL: "/a", c.VIEWS: 3}),
    ]


def test_catalog_merges_come_only_after_every_document_of_the_partition():
    # Given a partition mixing kinds and windows
    rows = [page(t(10, 0), "/a", 1), active(t(10, 0), 3), page(t(10, 1), "/b", 2), session(t(10, 1), "u", 1, 1),
            active(t(10, 1), 4)]
    # When it becomes documents
    kinds = [isinstance(item, Merge) for _, item in aggregate_documents(iter(rows))]
    # Then all five documents come first and the catalog merges last, so no window is recorded before it is written
    assert kinds == [False] * 5 + [True] * 3


def test_one_merge_per_collection_and_day_records_all_of_its_windows():
    # Given three active-users windows, two page-view windows (one with two URLs) and one sessions window on one day
    rows = [active(t(10, 0), 3), active(t(10, 1), 4), active(t(10, 2), 2),
            page(t(10, 0), "/a", 1), page(t(10, 0), "/b", 5), page(t(10, 1), "/a", 1),
            session(t(10, 2), "u", 1, 1)]
    # When the partition becomes documents
    merges = catalog_merges(list(aggregate_documents(iter(rows))))
    # Then there is one merge per collection for that day, each setting every window of it in one go
    assert merges == {
        "active_users|2026-11-23": Merge("active_users|2026-11-23", {
            c.COLLECTION: c.ACTIVE_USERS, c.DAY: "2026-11-23", c.WINDOW_SECONDS: 300,
            "windows.100000": 3, "windows.100100": 4, "windows.100200": 2}),
        "page_views|2026-11-23": Merge("page_views|2026-11-23", {
            c.COLLECTION: c.PAGE_VIEWS, c.DAY: "2026-11-23", c.WINDOW_SECONDS: 900,
            "windows.100000": 1, "windows.100100": 1}),
        "user_sessions|2026-11-23": Merge("user_sessions|2026-11-23", {
            c.COLLECTION: c.USER_SESSIONS, c.DAY: "2026-11-23", c.WINDOW_SECONDS: 300, "windows.100200": 1}),
    }


def test_the_catalog_value_is_distinct_users_for_active_users_and_one_otherwise():
    # Given windows whose sessions, events and views are all larger than one
    rows = [active(t(10, 0), users=9, events=40), session(t(10, 0), "u", sessions=3, events=8), page(t(10, 0), "/a", 6)]
    # When the partition becomes documents
    merges = catalog_merges(list(aggregate_documents(iter(rows))))
    # Then active_users records its distinct users, the others only that the window exists
    values = {m.fields[c.COLLECTION]: m.fields["windows.100000"] for m in merges.values()}
    assert values == {c.ACTIVE_USERS: 9, c.USER_SESSIONS: 1, c.PAGE_VIEWS: 1}


def test_windows_either_side_of_midnight_are_recorded_in_their_own_days():
    # Given a window starting 23:59 (ending after midnight) and the next one, starting at midnight
    rows = [active(t(23, 59), 2), active(t(0, 0, day=24), 5)]
    # When the partition becomes documents
    merges = catalog_merges(list(aggregate_documents(iter(rows))))
    # Then each is recorded under the UTC day its window starts on
    assert {m.id: {k: v for k, v in m.fields.items() if k.startswith("windows.")} for m in merges.values()} == {
        "active_users|2026-11-23": {"windows.235900": 2},
        "active_users|2026-11-24": {"windows.000000": 5},
    }
    assert {m.fields[c.DAY] for m in merges.values()} == {"2026-11-23", "2026-11-24"}


def test_documents_stream_out_while_the_rows_are_read():
    # Given a one-shot iterator of rows that counts how many were read
    read = []

    def rows() -> Iterator[Row]:
        for m in range(3):
            read.append(m)
            yield active(t(10, m), 1)

    # When the first document is taken
    out = aggregate_documents(rows())
    first = next(out)
    # Then only the first row was read (a partition is never held in memory), and the rest still follows
    assert (first[0], read) == (c.ACTIVE_USERS, [0])
    assert len(list(out)) == 2 + 1


def test_an_empty_partition_writes_nothing():
    assert list(aggregate_documents(iter([]))) == []


def invalid_row(kafka_timestamp: datetime) -> Row:
    """An `invalid_events` row as `validation.invalid_events` shapes it (kafka_timestamp is naive UTC)."""
    return Row(_id="clicks-0-7", reason="malformed_json", detail="value is not valid JSON", raw="{oops",
               raw_truncated=False, topic="clicks", partition=0, offset=7, kafka_timestamp=kafka_timestamp)


def test_an_invalid_event_keeps_its_fields_and_gets_the_day_and_hour_of_its_kafka_timestamp():
    # Given an invalid record that reached Kafka one millisecond before midnight UTC
    ts = datetime(2026, 11, 23, 23, 59, 59, 999000)
    # When it becomes a document
    [(coll, doc)] = list(invalid_documents(iter([invalid_row(ts)])))
    # Then it is the row's fields plus the UTC day and hour of its Kafka timestamp
    assert coll == c.INVALID_EVENTS
    assert doc == {**invalid_row(ts).asDict(), c.DAY: "2026-11-23", c.HOUR: "2026-11-23T23"}
