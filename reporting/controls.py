"""The sidebar's choices, and how they live in the page's URL (`?range=6h&pages=20`), so that a reload keeps them.

Streamlit keeps widget values for as long as a browser session lasts (auto-refresh reruns included), but a reload,
a new tab or a restarted server starts a new session with every widget at its default. The page therefore writes the
choices that differ from the defaults into its query parameters and starts each new session from them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from datetime import timedelta

from clickpulse.cli import parse_duration
from reporting.settings import DEFAULT_TIME_RANGE, REFRESH_SECONDS, TIME_RANGES

TOP_N = (3, 50)  # bounds of the top pages and top users sliders
DEFAULT_TOP_N = 10
# URL parameter of each choice
PARAMS = {"auto_refresh": "refresh", "refresh_seconds": "every", "time_range_label": "range", "top_pages": "pages",
          "top_users": "users"}
_ON_OFF = {"on": True, "off": False}
_UNITS = ((86400, "d"), (3600, "h"), (60, "m"), (1, "s"))


@dataclass(frozen=True)
class Controls:
    """What the sidebar asks for: auto-refresh and its interval, the time range, and how many top pages and users."""

    auto_refresh: bool = True
    refresh_seconds: int = 10
    time_range_label: str = DEFAULT_TIME_RANGE
    top_pages: int = DEFAULT_TOP_N
    top_users: int = DEFAULT_TOP_N

    def __post_init__(self) -> None:
        low, high = REFRESH_SECONDS
        if not low <= self.refresh_seconds <= high:
            raise ValueError(f"refresh interval must be {low}..{high} s, got {self.refresh_seconds}")
        if self.time_range_label not in TIME_RANGES:
            raise ValueError(f"unknown time range {self.time_range_label!r}: choose from {', '.join(TIME_RANGES)}")
        for n in (self.top_pages, self.top_users):
            if not TOP_N[0] <= n <= TOP_N[1]:
                raise ValueError(f"top-N must be {TOP_N[0]}..{TOP_N[1]}, got {n}")

    @property
    def time_range(self) -> timedelta:
        return TIME_RANGES[self.time_range_label]


def range_code(span: timedelta) -> str:
    """A time range as the URL writes it: '15m', '1h', '6h', '1d', '7d' (the largest whole unit)."""
    secs = int(span.total_seconds())
    size, unit = next((size, unit) for size, unit in _UNITS if secs % size == 0)
    return f"{secs // size}{unit}"


def _parse(name: str, text: str) -> object:
    """One URL value as the choice it stands for; ValueError when it stands for none."""
    word = text.strip().lower()
    if name == "auto_refresh":
        if word not in _ON_OFF:
            raise ValueError(f"not on or off: {text!r}")
        return _ON_OFF[word]
    if name == "time_range_label":
        span = parse_duration(word)
        for label, value in TIME_RANGES.items():
            if value == span:
                return label
        raise ValueError(f"the sidebar offers no time range of {text!r}")
    return int(word)


def from_query(params: Mapping[str, str], defaults: Controls) -> Controls:
    """The defaults, with each choice the URL gives in place of its default (a value the sidebar does not offer is
    ignored, so an old or hand-edited link still opens the page)."""
    chosen = defaults
    for f in fields(Controls):
        text = params.get(PARAMS[f.name])
        if text is None:
            continue
        try:
            chosen = replace(chosen, **{f.name: _parse(f.name, text)})
        except ValueError:
            continue
    return chosen


def to_query(chosen: Controls, defaults: Controls) -> dict[str, str]:
    """The URL parameters of the choices that differ from the defaults (none for a page left as it opened)."""
    out: dict[str, str] = {}
    for f in fields(Controls):
        value = getattr(chosen, f.name)
        if value == getattr(defaults, f.name):
            continue
        if f.name == "auto_refresh":
            out[PARAMS[f.name]] = "on" if value else "off"
        elif f.name == "time_range_label":
            out[PARAMS[f.name]] = range_code(TIME_RANGES[value])
        else:
            out[PARAMS[f.name]] = str(value)
    return out


def with_choices(current: Mapping[str, str], chosen: Controls, defaults: Controls) -> dict[str, str]:
    """The page's query parameters: those of other owners kept, the sidebar's replaced by `to_query`."""
    return {**{k: v for k, v in current.items() if k not in PARAMS.values()}, **to_query(chosen, defaults)}
