"""Bot traffic from query results (pure): buckets, top bot users, and a window's figures without its bot users."""

from __future__ import annotations

from datetime import timedelta

from reporting import bots, kpis
from storage import contract as c
from tests.reporting.documents import MIN, T0, active, bot_second

S = timedelta(seconds=1)
WINDOW = {c.WINDOW_START: T0 + 10 * MIN, c.WINDOW_END: T0 + 15 * MIN}


def test_bot_seconds_are_counted_per_bucket_with_their_events():
    # Given three bot seconds in the 10:00 minute and one in 10:02
    seconds = [bot_second("a", T0 + 3 * S, 30), bot_second("b", T0 + 3 * S, 12), bot_second("a", T0 + 59 * S, 11),
               bot_second("a", T0 + 2 * MIN, 40)]
    # When they are bucketed by minute, Then each minute has its bot seconds and their events, oldest first
    assert bots.per_bucket(seconds, MIN) == {T0: (3, 53), T0 + 2 * MIN: (1, 40)}


def test_top_bot_users_rank_by_bot_seconds_then_events_then_id():
    seconds = [bot_second("a", T0 + i * S, 11) for i in range(3)] + \
              [bot_second("b", T0 + i * S, 50) for i in range(2)] + \
              [bot_second("c", T0 + MIN, 50), bot_second("c", T0, 50), bot_second("d", T0, 100)]
    top = bots.top_bots(seconds, 3)
    assert [(u[c.USER_ID], u["seconds"], u[c.EVENTS]) for u in top] == [("a", 3, 33), ("b", 2, 100), ("c", 2, 100)]
    assert (top[2]["first"], top[2]["last"]) == (T0, T0 + MIN)


def test_a_windows_figures_without_bots_leave_out_every_user_who_was_a_bot_in_it():
    # Given a window's users (sessions 1, 2, 3) of whom u2 was a bot
    users = [{c.USER_ID: "u1", c.SESSIONS: 1, c.EVENTS: 3}, {c.USER_ID: "u2", c.SESSIONS: 2, c.EVENTS: 90},
             {c.USER_ID: "u3", c.SESSIONS: 3, c.EVENTS: 5}]
    got = bots.without_bots(WINDOW, users, {"u2", "not-in-window"})
    # Then two users are left, with (1 + 3) / 2 sessions each, and one bot user was left out
    assert (got.users, got.bot_users, got.sessions_per_user) == (2, 1, 2.0)
    assert bots.without_bots(WINDOW, users[1:2], {"u2"}).sessions_per_user is None


def test_the_active_users_kpi_notes_the_figure_without_bots_only_for_its_own_window():
    without = bots.WithoutBots(WINDOW, users=40, bot_users=2, sessions_per_user=1.5)
    assert kpis.without_bots_note(without, active(T0 + 10 * MIN, 42)) == "without its 2 bot users: 40"
    # A 15-min active-users window is not the 5-min user-sessions window: no note
    assert kpis.without_bots_note(without, active(T0, 42, size=15 * MIN)) == ""
    no_bots = bots.WithoutBots(WINDOW, users=42, bot_users=0, sessions_per_user=1.5)
    assert kpis.without_bots_note(no_bots, active(T0 + 10 * MIN, 42)) == ""
