"""Times relative to now (``now``, ``now-2h``, ``now+1d``) wherever a command takes a time: the README's
examples never go stale."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cmdb.errors import BadInputError
from cmdb.history import parse_time

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(("text", "expected"), [
    ("now", "2026-12-04T12:00:00"), ("NOW", "2026-12-04T12:00:00"), ("now-2h", "2026-12-04T10:00:00"),
    ("now+1d", "2026-12-05T12:00:00"), ("now + 25h", "2026-12-05T13:00:00"), ("now-30m", "2026-12-04T11:30:00"),
    ("now-1w", "2026-11-27T12:00:00"), ("2026-11-20T02:00", "2026-11-20T02:00:00"),
    ("2026-11-20T03:00+01:00", "2026-11-20T02:00:00"),
])
def test_parse_time(text: str, expected: str) -> None:
    assert parse_time(text, now=NOW).startswith(expected)


@pytest.mark.parametrize("text", ["yesterday", "now-2", "now*2h", "2h"])
def test_bad_times_say_the_forms(text: str) -> None:
    with pytest.raises(BadInputError, match="now-2h"):
        parse_time(text, now=NOW)
