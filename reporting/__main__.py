"""`python -m reporting`: serve the Streamlit report (a wrapper around `streamlit run reporting/app.py`)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tomllib
from pathlib import Path

from clickpulse.cli import (
    JsonFormatter,
    Parser,
    UsageError,
    add_logging_arguments,
    add_mongo_uri_arguments,
    mongo_uri,
    port,
    program_name,
    setup_logging,
)
from reporting.settings import DATABASE_ENV, URI_ENV

log = logging.getLogger("reporting")
PROG = program_name("python -m reporting")
APP_PATH = Path(__file__).resolve().parent / "app.py"
# The checkout's Streamlit settings (what `streamlit run reporting/app.py` reads when started from the repository root).
CONFIG_PATH = APP_PATH.parent.parent / ".streamlit" / "config.toml"


def main_parser() -> argparse.ArgumentParser:
    p = Parser(prog=PROG, description=__doc__)
    p.add_argument("--port", type=port, default=8501, help="HTTP port (default %(default)s)")
    p.add_argument("--address", default="127.0.0.1", help="address to listen on (default %(default)s)")
    add_mongo_uri_arguments(p)
    p.add_argument("--database", help=f"database name (default: env {DATABASE_ENV}, else clickpulse)")
    p.add_argument("--refresh-seconds", type=int, help="initial auto-refresh interval, 2..60")
    p.add_argument("--open-browser", action="store_true", help="let Streamlit open a browser tab")
    add_logging_arguments(p)
    return p


def theme_flags(config: Path = CONFIG_PATH) -> list[str]:
    """`--theme.<option> <value>` for each option of the config file's [theme] (none when there is no such file).

    Streamlit reads `.streamlit/config.toml` from the working directory only: passing the theme keeps the page the
    same when the launcher is started from anywhere else.
    """
    try:
        theme = tomllib.loads(config.read_text()).get("theme", {})
    except (OSError, tomllib.TOMLDecodeError) as e:
        log.warning("no theme from %s: %s", config, e)
        return []
    flags: list[str] = []
    for name, value in theme.items():
        if isinstance(value, bool):
            flags += [f"--theme.{name}", "true" if value else "false"]
        elif isinstance(value, str | int | float):
            flags += [f"--theme.{name}", str(value)]
    return flags


def streamlit_argv(ns: argparse.Namespace, config: Path = CONFIG_PATH) -> list[str]:
    """The `streamlit run` arguments for these options (the report's own ones after `--`)."""
    argv = ["run", str(APP_PATH), "--server.port", str(ns.port), "--server.address", ns.address,
            "--server.headless", "false" if ns.open_browser else "true", "--browser.gatherUsageStats", "false",
            "--logger.level", ns.log_level.lower(), *(theme_flags(config) if config.is_file() else [])]
    own = []  # the Mongo URI is not among them: it reaches the page through the environment (see run_cli)
    if ns.database:
        own += ["--database", ns.database]
    if ns.refresh_seconds is not None:
        own += ["--refresh-seconds", str(ns.refresh_seconds)]
    return argv + (["--", *own] if own else [])


def _streamlit_logs_as_json() -> None:
    """Give Streamlit's own loggers (they do not propagate to the root logger) our JSON lines."""
    from streamlit import logger as st_logger

    original = st_logger.setup_formatter

    def setup_formatter(logger: logging.Logger) -> None:
        original(logger)
        logger.streamlit_console_handler.setFormatter(JsonFormatter())  # type: ignore[attr-defined]

    st_logger.setup_formatter = setup_formatter
    st_logger.update_formatter()


def run_cli(args: list[str] | None = None) -> int:
    parser = main_parser()
    ns = parser.parse_args(args)
    try:
        # Handed to the page (Streamlit runs it in this process) through the environment, never through argv,
        # where a password would show in `ps` and in the page's `-- --help`.
        os.environ[URI_ENV] = mongo_uri(ns)
    except UsageError as e:
        parser.error(str(e))
    setup_logging(ns.log_level, ns.log_format)
    from streamlit.web import cli as stcli

    if ns.log_format == "json":
        _streamlit_logs_as_json()
    log.info("serving the report on http://%s:%s", ns.address, ns.port)
    try:
        stcli.main(args=streamlit_argv(ns), prog_name="streamlit", standalone_mode=False)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(run_cli())
