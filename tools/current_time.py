"""A tool that tells the current date and time in a time zone."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Callable

from langchain_core.tools import BaseTool, ToolException, tool

__all__ = ["current_time", "make_current_time"]

# strftime("%A") follows the process locale; the model should always get English names.
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_EXAMPLES = "'UTC', 'Europe/Paris', 'America/New_York' or 'Asia/Tokyo'"
# Aliases that work even where no IANA database is installed (zoneinfo then knows nothing, not even UTC).
_UTC_NAMES = {"utc", "z", "gmt", "etc/utc", "zulu"}


def _zone(name: str) -> dt.tzinfo:
    key = name.strip()
    if key.lower() in _UTC_NAMES:
        return dt.timezone.utc
    try:
        return zoneinfo.ZoneInfo(key)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        pass
    # Only on the error path: scanning the time zone database takes a few milliseconds.
    known = zoneinfo.available_timezones()
    by_lower = {zone.lower(): zone for zone in known}
    if key.lower() in by_lower:  # `europe/paris`
        return zoneinfo.ZoneInfo(by_lower[key.lower()])
    city = key.lower().replace(" ", "_")
    guesses = sorted(zone for zone in known if zone.lower().rsplit("/", 1)[-1] == city)
    hint = f"Did you mean {' or '.join(repr(g) for g in guesses[:3])}? " if guesses else ""
    raise ToolException(f"Unknown time zone {name!r}. {hint}Use an IANA time zone name such as {_EXAMPLES}.")


def make_current_time(clock: Callable[[dt.tzinfo], dt.datetime] | None = None) -> BaseTool:
    """Build a `current_time` tool, optionally reading another clock.

    Args:
        clock: Returns the time now in the given zone; None reads the system clock. Generated training episodes pass
            a frozen clock per episode, so that the times a model learns to repeat vary as they do in use.

    Returns:
        The tool, named `current_time`.
    """
    read = clock or dt.datetime.now

    @tool("current_time", parse_docstring=True)
    def current_time(timezone: str = "UTC") -> str:
        """Get the current date, time and weekday in a time zone.

        The answer starts with the ISO-8601 time including its UTC offset, e.g.
        "2025-03-14T09:26:53+01:00 (Friday, Europe/Paris)".

        Args:
            timezone: IANA time zone name, e.g. "UTC", "Europe/Paris" or "America/New_York".
        """
        zone = _zone(timezone)
        now = read(zone)
        label = "UTC" if zone is dt.timezone.utc else str(zone)
        return f"{now.isoformat(timespec='seconds')} ({_WEEKDAYS[now.weekday()]}, {label})"

    return current_time


current_time = make_current_time()
