"""Fixtures for the report's tests: a database seeded with known documents and an AppTest pointed at it."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from streamlit.testing.v1 import AppTest

from reporting.page import APP_PATH
from tests.reporting.documents import seed_known_site


@pytest.fixture
def known_db(mongo_db):
    """A fresh database holding `seed_known_site`'s documents."""
    seed_known_site(mongo_db)
    return mongo_db


@pytest.fixture
def report(monkeypatch: pytest.MonkeyPatch, mongo_uri: str) -> Callable[..., AppTest]:
    """`report(db_name)` runs the app once against that database (through the environment) and returns it;
    `query` opens it with those URL query parameters."""

    def run(database: str, uri: str | None = None, query: dict[str, str] | None = None) -> AppTest:
        monkeypatch.setenv("CLICKPULSE_MONGO_URI", uri or mongo_uri)
        monkeypatch.setenv("CLICKPULSE_DATABASE", database)
        at = AppTest.from_file(APP_PATH, default_timeout=60)
        at.query_params.update(query or {})
        return at.run()

    return run
