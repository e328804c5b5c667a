"""The report shows firing alerts at the top and the alert history (Streamlit AppTest on the real Mongo-wire server)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from streamlit.testing.v1 import AppTest

from alerts import history
from alerts.settings import RuleSettings
from alerts.state import step
from reporting.page import APP_PATH

pytestmark = pytest.mark.integration

RULE = RuleSettings("batch_age", 60, timedelta(minutes=4), 60, timedelta(0))


def record(db, values: list[tuple[datetime, float, str]]) -> None:
    """Run the state machine over (time, value, summary) rounds and store the episodes as the program does."""
    episode = None
    for at, value, summary in values:
        episode = step(RULE, episode, value, summary, at, timedelta(hours=1)).episode
        if episode is not None:
            history.save(db, episode)
            episode = episode if episode.open else None


@pytest.fixture
def page(monkeypatch: pytest.MonkeyPatch, mongo_uri: str):
    def run(database: str) -> AppTest:
        monkeypatch.setenv("CLICKPULSE_MONGO_URI", mongo_uri)
        monkeypatch.setenv("CLICKPULSE_DATABASE", database)
        return AppTest.from_file(APP_PATH, default_timeout=60).run()

    return run


def test_firing_alerts_show_at_the_top_and_every_alert_in_the_history_table(page, mongo_db):
    # Given an alert that fired and resolved an hour ago, and one firing now
    now = datetime.now(UTC)
    hour_ago = now - timedelta(hours=1)
    record(mongo_db, [(hour_ago, 100, "old"), (hour_ago + timedelta(minutes=4), 400, "the newest batch ran 6 min ago"),
                      (hour_ago + timedelta(minutes=5), 1, "the newest batch ran 1.0 s ago")])
    record(mongo_db, [(now - timedelta(minutes=5), 100, "x"), (now, 400, "the newest batch ran 6 min 40 s ago")])
    # When the report renders
    at = page(mongo_db.name)
    # Then the firing alert is the first thing under the title, saying what it measured
    assert not at.exception
    [firing] = [e.value for e in at.error]
    assert firing.startswith("**Alert firing: batch_age** since ")
    assert firing.endswith("— the newest batch ran 6 min 40 s ago")
    # And the history lists both alerts, newest first, with their states and notifications
    [expander] = [e for e in at.expander if e.label.startswith("Alert history")]
    assert expander.label == "Alert history: 2 alerts in the last 7 days, 1 firing"
    table = expander.dataframe[0].value
    assert list(table["state"]) == ["firing", "resolved"]
    assert list(table["newest measurement"]) == ["the newest batch ran 6 min 40 s ago", "the newest batch ran 1.0 s ago"]
    assert list(table["notifications"]) == ["0 sent", "0 sent"]


def test_without_alerts_the_page_says_where_they_come_from(page, mongo_db):
    at = page(mongo_db.name)
    assert not at.exception and not at.error
    assert any("`python -m alerts` watches the pipeline" in c.value for c in at.caption)
