"""One way to write a clickpulse CLI: the parser, argument types, env fallbacks, exit codes, logging and error text.

Every program (producer, job, report launcher, checkpoint tools, devstack) builds its `main_parser()` from `Parser`
and the types below, so a flag means the same thing, and fails the same way, everywhere:

- a bad argument exits 2 with one line (`prog: error: ... (see --help)`), a failure exits 1, success 0;
- durations: a number with an optional unit, e.g. `90` (seconds), `90s`, `500ms`, `1.5h`, `10 minutes`, `1d`;
- `--version`, `--log-level` and `--log-format text|json` (env CLICKPULSE_LOG_LEVEL, CLICKPULSE_LOG_FORMAT).

Standard library only: the job's executors import this package too.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn, TypeVar

from clickpulse import __version__

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
LOG_FORMATS = ("text", "json")
LOG_LEVEL_ENV = "CLICKPULSE_LOG_LEVEL"
LOG_FORMAT_ENV = "CLICKPULSE_LOG_FORMAT"
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

MONGO_URI_ENV = "CLICKPULSE_MONGO_URI"
DEFAULT_MONGO_URI = "mongodb://127.0.0.1:27017/"

T = TypeVar("T")


class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Appends each flag's default to its help, unless the help already names it or there is none (None)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or "(default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


class UsageError(ValueError):
    """A bad argument, with a message fit for one line."""


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one clear line (exit 2), with `--version`.

    `raise_errors=True` raises UsageError instead of exiting (for a page that shows the message itself).
    """

    def __init__(self, *args: Any, add_version: bool = True, raise_errors: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._raise_errors = raise_errors
        if add_version:
            self.add_argument("--version", action="version", version=f"%(prog)s {__version__}",
                              help="show the version and exit")

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> tuple[argparse.Namespace, list[str]]:
        ns, rest = super().parse_known_args(args, namespace)
        for name, value in vars(ns).items():
            if isinstance(value, EnvText):  # an env default no type converted: hand on plain text
                setattr(ns, name, str(value))
        return ns, rest

    def error(self, message: str) -> NoReturn:
        if self._raise_errors:
            raise UsageError(message)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


class EnvText(str):
    """A flag's default read from the environment: remembers the variable, so an error can name it."""

    variable: str

    def __new__(cls, value: str, variable: str) -> EnvText:
        text = super().__new__(cls, value)
        text.variable = variable
        return text

    def __reduce__(self) -> tuple[type, tuple[str]]:
        return str, (str(self),)  # pickled (to Spark executors) as the plain text it is


def env(name: str, default: str) -> str:
    """The environment's value for a flag's default (an empty variable counts as unset)."""
    value = os.environ.get(name)
    return EnvText(value, name) if value else default


def _bad(text: str, message: str) -> argparse.ArgumentTypeError:
    source = f" (from env {text.variable})" if isinstance(text, EnvText) else ""
    return argparse.ArgumentTypeError(message + source)


def program_name(module_form: str) -> str:
    """How the user started this program: its console script (`clickpulse-producer`), else `python -m ...`."""
    invoked = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else ""
    return invoked if invoked.startswith("clickpulse-") else module_form


def argument_type(parse: Callable[[str], T]) -> Callable[[str], T]:
    """An argparse `type` from a parser that raises ValueError: its message becomes the one-line usage error."""

    def convert(text: str) -> T:
        try:
            return parse(text)
        except ValueError as e:
            raise _bad(text, str(e)) from None

    convert.__name__ = getattr(parse, "__name__", "value")
    return convert


# --- durations ---------------------------------------------------------------------------------------------------

_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-z]*)\s*$", re.IGNORECASE)
_UNIT_SECONDS = {
    **dict.fromkeys(("ms", "msec", "millisecond", "milliseconds"), 0.001),
    **dict.fromkeys(("", "s", "sec", "secs", "second", "seconds"), 1.0),
    **dict.fromkeys(("m", "min", "mins", "minute", "minutes"), 60.0),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), 3600.0),
    **dict.fromkeys(("d", "day", "days"), 86400.0),
}
DURATION_SYNTAX = "a number with an optional unit ms, s, m, h or d (or spelled out), e.g. 90, 90s, 1.5h, 10 minutes"


def parse_duration(text: str) -> timedelta:
    """A duration from "90" (seconds), "90s", "500ms", "2m", "1.5h", "10 minutes", "7 days"; ValueError otherwise."""
    m = _DURATION.match(text or "")
    unit = m.group(2).lower() if m else None
    if m is None or unit not in _UNIT_SECONDS:
        raise ValueError(f"bad duration {text!r}: use {DURATION_SYNTAX}")
    return timedelta(seconds=float(m.group(1)) * _UNIT_SECONDS[unit])


duration = argument_type(parse_duration)


def seconds(text: str) -> float:
    """An argparse type: a duration (any form above) as float seconds."""
    return duration(text).total_seconds()


def _whole_number(text: str, minimum: int, maximum: int | None = None) -> int:
    try:
        value = int(text)
    except ValueError:
        raise _bad(text, f"not a whole number: {text!r}") from None
    if value < minimum:
        raise _bad(text, f"must be {'positive' if minimum == 1 else f'>= {minimum}'}, got {value}")
    if maximum is not None and value > maximum:
        raise _bad(text, f"must be {minimum}..{maximum}, got {value}")
    return value


def positive_int(text: str) -> int:
    """An argparse type: a whole number > 0."""
    return _whole_number(text, 1)


def non_negative_int(text: str) -> int:
    """An argparse type: a whole number >= 0 (where 0 means "none" or "auto")."""
    return _whole_number(text, 0)


def port(text: str) -> int:
    """An argparse type: a TCP port, 1..65535."""
    return _whole_number(text, 1, 65535)


# --- secrets -----------------------------------------------------------------------------------------------------

def add_mongo_uri_arguments(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """`--mongo-uri` and `--mongo-uri-file`; `--help` never shows the URI taken from the environment."""
    set_in_env = " (set now; not shown)" if os.environ.get(MONGO_URI_ENV) else ""
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--mongo-uri", default=argparse.SUPPRESS, metavar="URI",
                       help=f"MongoDB URI, credentials included (default: env {MONGO_URI_ENV}{set_in_env}, else "
                            f"{DEFAULT_MONGO_URI}). A password given here shows in `ps` and /proc/<pid>/cmdline: "
                            f"pass it in {MONGO_URI_ENV} or --mongo-uri-file instead")
    group.add_argument("--mongo-uri-file", type=Path, default=argparse.SUPPRESS, metavar="PATH",
                       help="read the MongoDB URI from this file's first line (keeps the password out of `ps`)")


def mongo_uri(ns: argparse.Namespace, environ: Mapping[str, str] | None = None) -> str:
    """The URI from --mongo-uri, else --mongo-uri-file, else the environment, else the local default.

    Raises UsageError when the file cannot be read or is empty.
    """
    if getattr(ns, "mongo_uri", None):
        return ns.mongo_uri
    path = getattr(ns, "mongo_uri_file", None)
    if path is not None:
        try:
            lines = path.read_text().strip().splitlines()
        except OSError as e:
            raise UsageError(f"--mongo-uri-file {path}: {e.strerror or e}") from None
        if not lines or not lines[0].strip():
            raise UsageError(f"--mongo-uri-file {path} is empty")
        return lines[0].strip()
    return (os.environ if environ is None else environ).get(MONGO_URI_ENV) or DEFAULT_MONGO_URI


# --- logging -----------------------------------------------------------------------------------------------------

def add_logging_arguments(parser: argparse.ArgumentParser | argparse._ArgumentGroup, default_level: str = "INFO",
                          level_flag: bool = True) -> None:
    """`--log-level` (unless the program has its own verbosity flags) and `--log-format text|json`."""
    if level_flag:
        parser.add_argument("--log-level", default=env(LOG_LEVEL_ENV, default_level), type=str.upper,
                            choices=LOG_LEVELS, help=f"log level (env {LOG_LEVEL_ENV}, default %(default)s)")
    parser.add_argument("--log-format", default=env(LOG_FORMAT_ENV, "text"), choices=LOG_FORMATS,
                        help=f"log lines as text, or one JSON object per line for log shippers (env {LOG_FORMAT_ENV}, "
                             "default %(default)s)")


_FIELD = re.compile(r"%\((\w+)\)")
# JSON keys for the LogRecord attributes a text format names.
_JSON_KEYS = {"asctime": "time", "levelname": "level", "name": "logger", "message": "message"}


class JsonFormatter(logging.Formatter):
    """One JSON object per record, with the same fields as the text format's lines (and any exception)."""

    def __init__(self, text_format: str = TEXT_FORMAT) -> None:
        super().__init__()
        self._fields = _FIELD.findall(text_format)

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, object] = {}
        for field in self._fields:
            if field == "asctime":
                value: object = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
            elif field == "message":
                value = record.getMessage()
            else:
                value = getattr(record, field, None)
            doc[_JSON_KEYS.get(field, field)] = value
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str)


class _ProgramHandler(logging.StreamHandler):
    """The handler `setup_logging` installs (so a second call replaces it and leaves others alone)."""


def setup_logging(level: str | int, log_format: str = "text", text_format: str = TEXT_FORMAT,
                  quiet: Iterable[str] = (), stream: Any = None) -> None:
    """Configure the root logger for a program run; the `quiet` loggers log warnings and errors only.

    Like `logging.basicConfig`, it leaves a host's logging alone (pytest's capture, an embedding program): when the
    root logger has handlers it did not install, it adds none and keeps the level.
    """
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _ProgramHandler)]:
        root.removeHandler(old)
    if not root.handlers:
        handler = _ProgramHandler(stream or sys.stderr)
        handler.setFormatter(JsonFormatter(text_format) if log_format == "json" else logging.Formatter(text_format))
        root.addHandler(handler)
        root.setLevel(level)
    for name in quiet:
        logging.getLogger(name).setLevel(logging.WARNING)


# --- errors ------------------------------------------------------------------------------------------------------

# What drivers append to a message: pymongo its topology description and timeouts, py4j the Java stack.
_DRIVER_TAILS = (" (configured timeouts", ", Timeout:", "\n")


def short_error(e: BaseException, limit: int = 300) -> str:
    """The first, human part of a driver's error message (never a stack or a topology dump)."""
    text = str(e)
    for tail in _DRIVER_TAILS:
        text = text.split(tail)[0]
    return text.strip()[:limit] or type(e).__name__


def fail(prog: str, message: str) -> int:
    """Write `prog: error: message` on stderr and return the failure exit code."""
    sys.stderr.write(f"{prog}: error: {message}\n")
    sys.stderr.flush()
    return EXIT_FAILURE
