"""Where the report reads from: `--` arguments win over the environment, and bad values are one clear line."""

from __future__ import annotations

import pytest

from reporting.page import APP_PATH, script_args
from reporting.settings import ReportSettings, SettingsError, settings_from, wants_help


def test_defaults_read_the_local_clickpulse_database():
    s = settings_from([], {})
    assert (s.mongo_uri, s.database, s.timeout_ms, s.refresh_seconds) == \
        ("mongodb://127.0.0.1:27017/", "clickpulse", 2000, 10)


def test_the_environment_chooses_uri_and_database():
    s = settings_from([], {"CLICKPULSE_MONGO_URI": "mongodb://db:1/", "CLICKPULSE_DATABASE": "site"})
    assert (s.mongo_uri, s.database) == ("mongodb://db:1/", "site")


def test_arguments_win_over_the_environment():
    s = settings_from(["--mongo-uri", "mongodb://other:2/", "--database", "x"],
                      {"CLICKPULSE_MONGO_URI": "mongodb://db:1/", "CLICKPULSE_DATABASE": "site"})
    assert (s.mongo_uri, s.database) == ("mongodb://other:2/", "x")


@pytest.mark.parametrize(("args", "message"), [
    (["--mongo-uri", "http://x"], "must start with mongodb://"),
    (["--database", "a.b"], "invalid Mongo database name"),
    (["--refresh-seconds", "1"], "refresh interval must be 2..60"),
    (["--timeout-ms", "5"], "timeout must be"),
    (["--colour", "red"], "unrecognized arguments: --colour red"),
    (["--timeout-ms", "soon"], "invalid int value"),
])
def test_a_bad_setting_raises_a_one_line_error_instead_of_exiting(args, message):
    with pytest.raises(SettingsError, match=message) as e:
        settings_from(args, {})
    assert "\n" not in str(e.value)


def test_settings_are_validated_on_construction():
    with pytest.raises(SettingsError):
        ReportSettings(database="")


def test_help_is_recognised():
    assert wants_help(["--help"]) and wants_help(["-h"]) and not wants_help([])


def test_only_streamlit_run_of_the_app_passes_arguments():
    # `streamlit run reporting/app.py -- --database x` sets argv to [app path, "--database", "x"]
    assert script_args([str(APP_PATH), "--database", "x"]) == ["--database", "x"]
    # under pytest (AppTest), argv is pytest's own
    assert script_args(["/usr/bin/pytest", "tests/reporting", "-q"]) == []
