"""The current_time tool: time-zone-aware ISO-8601 answers and helpful errors."""

from __future__ import annotations

import datetime as dt

import pytest
from langchain_core.tools import ToolException

from agentkit.tools import current_time, make_current_time

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def parse(answer: str) -> tuple[dt.datetime, str]:
    iso, _, rest = answer.partition(" ")
    return dt.datetime.fromisoformat(iso), rest


def test_default_is_utc() -> None:
    when, rest = parse(current_time.invoke({}))
    assert when.tzinfo is not None
    assert when.utcoffset() == dt.timedelta(0)
    assert rest.endswith(", UTC)")
    assert abs(when - dt.datetime.now(dt.timezone.utc)) < dt.timedelta(minutes=1)


def test_tokyo_is_utc_plus_nine() -> None:
    answer = current_time.invoke({"timezone": "Asia/Tokyo"})
    when, rest = parse(answer)
    assert when.tzinfo is not None
    assert when.utcoffset() == dt.timedelta(hours=9)
    assert answer.split(" ")[0].endswith("+09:00")
    assert rest == f"({WEEKDAYS[when.weekday()]}, Asia/Tokyo)"


def test_names_are_matched_without_case() -> None:
    assert current_time.invoke({"timezone": "asia/tokyo"}).split(" ")[0].endswith("+09:00")
    assert current_time.invoke({"timezone": "utc"}).split(" ")[0].endswith("+00:00")


@pytest.mark.parametrize("name", ["Mars/Olympus", "", "../../etc/passwd", "/etc/localtime", "Asia"])
def test_unknown_zone_gives_an_example(name: str) -> None:
    with pytest.raises(ToolException, match="Unknown time zone") as caught:
        current_time.invoke({"timezone": name})
    assert "Europe/Paris" in str(caught.value)


def test_a_bare_city_gets_a_suggestion() -> None:
    with pytest.raises(ToolException, match="Did you mean 'America/New_York'"):
        current_time.invoke({"timezone": "New York"})


def test_schema_describes_the_argument() -> None:
    assert current_time.name == "current_time"
    assert current_time.args["timezone"]["description"]
    assert current_time.args["timezone"]["default"] == "UTC"


def test_another_clock_is_read_in_the_asked_zone() -> None:
    instant = dt.datetime(2024, 3, 31, 0, 30, 5, tzinfo=dt.timezone.utc)  # Paris moves to summer time at 01:00 UTC
    frozen = make_current_time(instant.astimezone)
    assert frozen.invoke({"timezone": "Europe/Paris"}) == "2024-03-31T01:30:05+01:00 (Sunday, Europe/Paris)"
    assert frozen.invoke({"timezone": "UTC"}) == "2024-03-31T00:30:05+00:00 (Sunday, UTC)"
    assert frozen.args == current_time.args and frozen.description == current_time.description
