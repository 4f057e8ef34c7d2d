"""Maintenance windows with time zones (impact.maintenance): weekday and cron forms, DST, errors."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cmdb.errors import BadInputError
from impact.maintenance import parse_window, within_window


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(("window", "start", "end", "inside"), [
    ("1st Tue 22:00-23:00 UTC", "2026-12-01T22:00", "2026-12-01T23:00", True),
    ("1st Tue 22:00-23:00 UTC", "2026-12-08T22:00", "2026-12-08T23:00", False),  # the 2nd Tuesday
    ("1st Tue 22:00-23:00", "2026-12-01T21:59", "2026-12-01T22:30", False),  # begins before the window
    ("Sun 02:00-04:00 UTC", "2026-12-06T02:30", "2026-12-06T03:00", True),
    ("Sat 23:00-01:00", "2026-12-06T00:10", "2026-12-06T00:50", True),  # past midnight, into Sunday
    ("Sun 02:00-04:00 Europe/Berlin", "2026-12-06T01:00", "2026-12-06T03:00", True),  # CET, UTC+1
    ("Sun 02:00-04:00 Europe/Berlin", "2026-12-06T02:30", "2026-12-06T03:30", False),  # 03:30-04:30 Berlin
    ("Sun 02:00-04:00 Europe/Berlin", "2026-07-05T00:00", "2026-07-05T02:00", True),  # CEST, UTC+2
    ("Sun 02:00-04:00 America/New_York", "2026-12-06T07:00", "2026-12-06T09:00", True),  # EST, UTC-5
    ("0 22 1-7 * 2 for 1h Europe/Berlin", "2026-12-01T21:00", "2026-12-01T22:00", True),  # first Tuesday
    ("0 22 1-7 * 2 for 1h Europe/Berlin", "2026-12-08T21:00", "2026-12-08T22:00", False),
    ("30 1 * * sat for 90m", "2026-12-05T01:30", "2026-12-05T03:00", True),
    ("30 1 * * sat for 90m", "2026-12-05T01:30", "2026-12-05T03:01", False),
])
def test_window_contains(window: str, start: str, end: str, inside: bool) -> None:
    assert within_window(window, utc(start), utc(end)) is inside


def test_wall_clock_across_daylight_saving() -> None:
    """02:00 Berlin is 01:00 UTC in winter and 00:00 UTC in summer: the window follows the wall clock."""
    w = parse_window("Sun 02:00-03:00 Europe/Berlin")
    assert w.occurrence_before(utc("2026-03-22T05:00")).astimezone(UTC) == utc("2026-03-22T01:00")
    assert w.occurrence_before(utc("2026-04-05T05:00")).astimezone(UTC) == utc("2026-04-05T00:00")


@pytest.mark.parametrize(("window", "says"), [
    ("Tue 25:00-26:00", "is not a time span"),
    ("Sun 02:00-04:00 Mars/Base", "unknown time zone 'Mars/Base'"),
    ("0 22 * * 9 for 1h", "is not like"),
    ("whenever", "is not like"),
])
def test_bad_windows_are_named(window: str, says: str) -> None:
    with pytest.raises(BadInputError) as err:
        parse_window(window)
    assert f"maintenance window {window!r}" in str(err.value) and says in str(err.value)
