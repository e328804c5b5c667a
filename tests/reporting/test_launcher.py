"""`python -m reporting` builds the `streamlit run` command for the report."""

from __future__ import annotations

import pytest

from reporting.__main__ import APP_PATH, main_parser, run_cli, streamlit_argv


def test_the_launcher_runs_the_app_headless_on_the_chosen_port_with_the_report_arguments_after_dashes():
    ns = main_parser().parse_args(["--port", "8600", "--mongo-uri", "mongodb://h:1/", "--database", "d"])
    argv = streamlit_argv(ns)
    assert argv[:2] == ["run", str(APP_PATH)]
    assert argv[argv.index("--server.port") + 1] == "8600"
    assert argv[argv.index("--server.headless") + 1] == "true"
    assert argv[argv.index("--") + 1:] == ["--database", "d"]


def test_the_mongo_uri_never_goes_on_the_streamlit_command_line():
    # Given a URI with a password on the launcher's command line
    ns = main_parser().parse_args(["--mongo-uri", "mongodb://u:s3cret@h:1/"])
    # When the streamlit command is built
    # Then the URI is not in it (run_cli hands it to the page through CLICKPULSE_MONGO_URI)
    assert not any("s3cret" in word for word in streamlit_argv(ns))


def test_without_report_arguments_there_is_no_separator():
    assert "--" not in streamlit_argv(main_parser().parse_args([]))


def test_help_exits_zero(capsys):
    with pytest.raises(SystemExit) as e:
        run_cli(["--help"])
    assert e.value.code == 0 and "python -m reporting" in capsys.readouterr().out


def test_a_bad_port_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as e:
        run_cli(["--port", "70000"])
    assert e.value.code == 2 and "argument --port: must be 1..65535" in capsys.readouterr().err
