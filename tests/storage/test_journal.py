"""The user-sessions journal on the real Mongo-wire server: batches insert, the job folds, readers see the same values."""

from __future__ import annotations

from datetime import datetime

import pytest

from storage import contract as c
from storage import reads
from storage.journal import fold, fold_all
from storage.sink import New, upsert_operation
from tests.reporting.documents import DEFAULT_LAYOUT, MIN, T0

pytestmark = pytest.mark.integration


def journaled(db, pane: datetime, batch_id: int, token: str, values: dict[str, int]) -> None:
    """One writer's journal document of one batch, as the job inserts it."""
    doc = {c.ID: c.journal_id(pane, batch_id, token), c.PANE_START: pane, c.PANE_END: pane + MIN,
           c.BATCH_ID: batch_id, c.EVENTS: {c.session_key(*k.split("|")): v for k, v in values.items()}}
    db[c.USER_SESSIONS_JOURNAL].bulk_write([upsert_operation(New(doc), {c.UPDATED_AT: T0 + batch_id * MIN})])


def users_of(db, end: datetime) -> dict[str, tuple[int, int]]:
    """{user: (sessions, events)} of the user-sessions window ending at `end`, through the read API."""
    _, users = reads.window_users(db, DEFAULT_LAYOUT, end)
    return {u[c.USER_ID]: (u[c.SESSIONS], u[c.EVENTS]) for u in users}


def journal_of_two_batches_and_a_replay(db) -> None:
    """Batch 1 saw u1 twice in s1; batch 2 saw u1 once more in s1 and u2 (two writers); batch 1 was then replayed."""
    journaled(db, T0, 1, "a", {"u1|s1": 2})
    journaled(db, T0, 2, "a", {"u1|s1": 3})
    journaled(db, T0, 2, "b", {"u2|s9": 1})
    journaled(db, T0, 1, "c", {"u1|s1": 2})  # the replay, by another writer: an older value again
    journaled(db, T0 + MIN, 2, "a", {"u1|s2": 4})


def test_readers_take_each_keys_greatest_value_from_the_journal_before_any_fold(mongo_db):
    # Given two batches and a replay journaled, nothing folded
    journal_of_two_batches_and_a_replay(mongo_db)
    # When the 5-minute window over both panes is read
    got = users_of(mongo_db, T0 + 5 * MIN)
    # Then u1 has its newest count in s1 (3, not 2 + 3 + 2) plus s2's, and u2 its one event
    assert got == {"u1": (2, 7), "u2": (1, 1)}


def test_folding_moves_the_journal_into_the_pane_shards_and_readers_see_the_same_values(mongo_db):
    # Given the same journal
    journal_of_two_batches_and_a_replay(mongo_db)
    before = users_of(mongo_db, T0 + 5 * MIN)
    # When it is folded
    done = fold(mongo_db)
    # Then the journal is empty, each pane's values are in the shard of their user, and reads have not changed
    assert (done.documents, done.panes, done.kept) == (5, 2, 0)
    assert mongo_db[c.USER_SESSIONS_JOURNAL].count_documents({}) == 0
    shard = mongo_db[c.USER_SESSIONS].find_one({c.ID: c.pane_id(T0, c.shard_of("u1", c.USER_SESSIONS))})
    assert shard[c.EVENTS]["u1|s1"] == 3 and shard[c.SHARD] == c.shard_of("u1", c.USER_SESSIONS)
    assert users_of(mongo_db, T0 + 5 * MIN) == before


def test_a_fold_never_lowers_a_value_already_in_a_shard(mongo_db):
    # Given a folded count of 3, then a late replay of an older batch journaling 2 for the same key
    journaled(mongo_db, T0, 2, "a", {"u1|s1": 3})
    fold(mongo_db)
    journaled(mongo_db, T0, 1, "z", {"u1|s1": 2})
    # When the journal is folded again
    fold(mongo_db)
    # Then the shard keeps 3
    assert users_of(mongo_db, T0 + 5 * MIN) == {"u1": (1, 3)}


def test_folding_what_was_folded_already_changes_nothing(mongo_db):
    # Given a fold that wrote the shards but died before deleting its journal documents (the same journal, again)
    journal_of_two_batches_and_a_replay(mongo_db)
    fold(mongo_db)
    journal_of_two_batches_and_a_replay(mongo_db)
    # When the journal is folded again
    fold_all(mongo_db)
    # Then every value is as one fold left it
    assert users_of(mongo_db, T0 + 5 * MIN) == {"u1": (2, 7), "u2": (1, 1)}


def test_a_large_journal_is_folded_in_rounds_until_empty(mongo_db):
    # Given more journal documents than one fold reads
    for b in range(12):
        journaled(mongo_db, T0, b, "a", {f"u{b}|s": b + 1})
    # When all of it is folded, five documents a round
    rounds = 0
    while fold(mongo_db, limit=5).documents:
        rounds += 1
    # Then three rounds emptied it and every user is there
    assert rounds == 3 and mongo_db[c.USER_SESSIONS_JOURNAL].count_documents({}) == 0
    assert users_of(mongo_db, T0 + 5 * MIN) == {f"u{b}": (1, b + 1) for b in range(12)}
