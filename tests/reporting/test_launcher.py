"""`python -m reporting` builds the `streamlit run` command for the report."""

from __future__ import annotations

import tomllib

import pytest

from reporting.__main__ import APP_PATH, CONFIG_PATH, main_parser, run_cli, streamlit_argv


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


def _flag(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def test_streamlit_run_from_the_repository_root_serves_the_report_as_the_launcher_does():
    # Given the repository's .streamlit/config.toml (what a bare `streamlit run reporting/app.py` reads) and the
    # command the launcher builds with its defaults (`make report`, `clickpulse-report`)
    config = tomllib.loads(CONFIG_PATH.read_text())
    argv = streamlit_argv(main_parser().parse_args([]))
    # Then both serve on the same loopback address and port, headless, without usage statistics
    assert str(config["server"]["address"]) == _flag(argv, "--server.address") == "127.0.0.1"
    assert str(config["server"]["port"]) == _flag(argv, "--server.port") == "8501"
    assert str(config["server"]["headless"]).lower() == _flag(argv, "--server.headless") == "true"
    assert str(config["browser"]["gatherUsageStats"]).lower() == _flag(argv, "--browser.gatherUsageStats") == "false"


def test_the_launcher_passes_the_theme_so_it_applies_from_any_working_directory():
    # Given the theme of the repository's config file
    theme = tomllib.loads(CONFIG_PATH.read_text())["theme"]
    assert theme["primaryColor"]
    # When the launcher builds its command
    argv = streamlit_argv(main_parser().parse_args([]))
    # Then each theme option is a flag with the file's value
    assert {name: _flag(argv, f"--theme.{name}") for name in theme} == {k: str(v) for k, v in theme.items()}


def test_without_a_config_file_the_launcher_passes_no_theme(tmp_path):
    argv = streamlit_argv(main_parser().parse_args([]), config=tmp_path / "missing.toml")
    assert not any(word.startswith("--theme.") for word in argv)
