"""The report's settings: where to read (URI, database, timeout), from `--` arguments or the environment."""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta

from clickpulse.cli import DEFAULT_MONGO_URI, MONGO_URI_ENV, Parser, UsageError, add_mongo_uri_arguments, mongo_uri
from storage import contract as c

URI_ENV = MONGO_URI_ENV
DATABASE_ENV = "CLICKPULSE_DATABASE"
DEFAULT_URI = DEFAULT_MONGO_URI

# The choices the sidebar offers; each is the length of the time range the charts cover.
TIME_RANGES: dict[str, timedelta] = {
    "15 minutes": timedelta(minutes=15),
    "1 hour": timedelta(hours=1),
    "6 hours": timedelta(hours=6),
    "24 hours": timedelta(hours=24),
    "7 days": timedelta(days=7),
}
DEFAULT_TIME_RANGE = "1 hour"
REFRESH_SECONDS = (2, 60)


class SettingsError(UsageError):
    """A bad argument or environment value, with a message fit for one line."""


@dataclass(frozen=True)
class ReportSettings:
    """Where the report reads from and how long it waits for the server."""

    mongo_uri: str = DEFAULT_URI
    database: str = c.DEFAULT_DATABASE
    timeout_ms: int = 2000
    refresh_seconds: int = 10

    def __post_init__(self) -> None:
        if not self.mongo_uri.startswith(("mongodb://", "mongodb+srv://")):
            raise SettingsError("Mongo URI must start with mongodb:// or mongodb+srv://")
        if not self.database or any(ch in self.database for ch in "/\\. \"$"):
            raise SettingsError(f"invalid Mongo database name: {self.database!r}")
        if not 100 <= self.timeout_ms <= 60_000:
            raise SettingsError(f"timeout must be 100..60000 ms, got {self.timeout_ms}")
        low, high = REFRESH_SECONDS
        if not low <= self.refresh_seconds <= high:
            raise SettingsError(f"refresh interval must be {low}..{high} s, got {self.refresh_seconds}")


def main_parser() -> argparse.ArgumentParser:
    """The report's own arguments (after `--` in `streamlit run reporting/app.py -- ...`)."""
    p = Parser(prog="streamlit run reporting/app.py --", add_help=False, add_version=False, raise_errors=True,
               description="The clickpulse Streamlit report: site activity and pipeline health.")
    p.add_argument("-h", "--help", action="store_true", help="show this help")
    add_mongo_uri_arguments(p)
    p.add_argument("--database", help=f"database name (env {DATABASE_ENV}, default {c.DEFAULT_DATABASE})")
    p.add_argument("--timeout-ms", type=int, default=2000, help="server selection timeout (default %(default)s)")
    p.add_argument("--refresh-seconds", type=int, default=10,
                   help="initial auto-refresh interval, 2..60 (default %(default)s)")
    return p


def settings_from(args: Sequence[str], env: Mapping[str, str]) -> ReportSettings:
    """Build the settings from arguments (which win) and the environment; SettingsError when invalid."""
    try:
        ns = main_parser().parse_args(list(args))
        uri = mongo_uri(ns, env)
    except UsageError as e:
        raise SettingsError(str(e)) from None
    return ReportSettings(
        mongo_uri=uri,
        database=ns.database or env.get(DATABASE_ENV) or c.DEFAULT_DATABASE,
        timeout_ms=ns.timeout_ms,
        refresh_seconds=ns.refresh_seconds,
    )


def wants_help(args: Sequence[str]) -> bool:
    return any(a in ("-h", "--help") for a in args)
