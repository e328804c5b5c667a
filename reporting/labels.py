"""How the report writes times, windows, ages and numbers (always UTC, always labelled)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def as_utc(ts: datetime) -> datetime:
    """The same instant in UTC (naive datetimes are taken to be UTC already, as BSON dates are)."""
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def utc(ts: datetime | None, seconds: bool = True) -> str:
    """'2026-11-23 10:15:03 UTC', or '—' for no time."""
    if ts is None:
        return "—"
    return as_utc(ts).strftime("%Y-%m-%d %H:%M:%S UTC" if seconds else "%Y-%m-%d %H:%M UTC")


def window(start: datetime, end: datetime) -> str:
    """'2026-11-23 10:10–10:15 UTC' (the end's date is added when it differs)."""
    s, e = as_utc(start), as_utc(end)
    end_text = e.strftime("%H:%M") if s.date() == e.date() else e.strftime("%Y-%m-%d %H:%M")
    return f"{s.strftime('%Y-%m-%d %H:%M')}–{end_text} UTC"


def minutes(span: timedelta) -> str:
    """'5-min', '15-min', '90-s' (for window sizes)."""
    secs = int(span.total_seconds())
    return f"{secs // 60}-min" if secs % 60 == 0 else f"{secs}-s"


def age(span: timedelta) -> str:
    """A short age: '12 s', '3 min 4 s', '2 h 5 min', '3 d 2 h', '1 h' (negative ages, from clock skew, read '0 s')."""
    secs = max(0, int(span.total_seconds()))
    if secs < 60:
        return f"{secs} s"
    units = ((86400, "d"), (3600, "h"), (60, "min"), (1, "s"))
    i = next(i for i, (size, _) in enumerate(units) if secs >= size)
    (big, big_unit), (small, small_unit) = units[i], units[i + 1]
    first, rest = divmod(secs, big)
    second = rest // small
    return f"{first} {big_unit}" + (f" {second} {small_unit}" if second else "")


def count(n: float) -> str:
    """'1,234' for whole numbers, '12.5' otherwise."""
    return f"{n:,.0f}" if float(n).is_integer() else f"{n:,.1f}"
