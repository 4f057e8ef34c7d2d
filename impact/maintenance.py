"""Maintenance windows with time zones: when a CI may be changed without it counting against the change.

A CI's ``maintenance_window`` attribute is one line in either of two forms:

- ``[1st|2nd|3rd|4th|5th] Tue 22:00-23:00 [ZONE]``: weekly, or the n-th such weekday of each month;
  an end at or before the start runs past midnight;
- ``<five cron fields> for <duration> [ZONE]``, e.g. ``0 22 * * 2 for 1h Europe/Berlin`` or
  ``30 1 1-7 * sat for 90m UTC`` (day of month *and* weekday must both match, so ``1-7 * sat`` is the
  first Saturday, unlike classic cron's "either").

``ZONE`` is an IANA name (``Europe/Berlin``) or ``UTC``, the default. Times are wall-clock times in that
zone, so a window at 02:00 Berlin time stays at 02:00 across daylight-saving changes. Both forms become one
cron expression evaluated by croniter in the zone (zoneinfo): the engine is a maintained library, not our
date arithmetic.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from cmdb.errors import BadInputError

_EXAMPLES = "'Sun 02:00-04:00 UTC', '1st Tue 22:00-23:00 Europe/Berlin' or '0 22 * * 2 for 1h Europe/Berlin'"
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_WEEKDAY_FORM = re.compile(
    r"^\s*(?:(?P<nth>[1-5])(?:st|nd|rd|th)\s+)?(?P<day>mon|tue|wed|thu|fri|sat|sun)[a-z]*\s+"
    r"(?P<h1>\d{1,2}):(?P<m1>\d\d)\s*-\s*(?P<h2>\d{1,2}):(?P<m2>\d\d)(?:\s+(?P<zone>\S+))?\s*$",
    re.IGNORECASE,
)
_CRON_FORM = re.compile(
    r"^\s*(?P<cron>(?:\S+\s+){4}\S+)\s+for\s+(?P<n>\d+)\s*(?P<unit>[mhd])\s*(?:\s(?P<zone>\S+))?\s*$",
    re.IGNORECASE,
)
_UNIT = {"m": "minutes", "h": "hours", "d": "days"}


@dataclass(frozen=True)
class MaintenanceWindow:
    """Recurring window: starts where ``cron`` fires (wall clock in ``zone``) and lasts ``duration``."""

    cron: str
    duration: timedelta
    zone: ZoneInfo

    def occurrence_before(self, at: datetime) -> datetime:
        """The latest start at or before ``at`` (aware, in the window's zone)."""
        local = at.astimezone(self.zone)
        it = croniter(self.cron, local + timedelta(seconds=1), day_or=False)
        prev: datetime = it.get_prev(datetime)
        return prev

    def contains(self, start: datetime, end: datetime) -> bool:
        """Whether [start, end] lies inside one occurrence of the window."""
        begun = self.occurrence_before(start)
        return begun <= start and end <= begun + self.duration


def _zone(name: str | None, text: str) -> ZoneInfo:
    try:
        return ZoneInfo("UTC" if name is None or name.upper() in ("UTC", "Z") else name)
    except (ZoneInfoNotFoundError, ValueError):
        raise BadInputError(f"maintenance window {text!r}: unknown time zone {name!r}; use an IANA name "
                            "such as Europe/Berlin, or UTC") from None


def parse_window(text: str) -> MaintenanceWindow:
    """A ``MaintenanceWindow`` from its one-line form; BadInputError naming the window otherwise."""
    m = _WEEKDAY_FORM.match(text)
    if m:
        h1, m1, h2, m2 = (int(m[k]) for k in ("h1", "m1", "h2", "m2"))
        if h1 > 23 or h2 > 24 or m1 > 59 or m2 > 59:
            raise BadInputError(f"maintenance window {text!r}: {h1:02}:{m1:02}-{h2:02}:{m2:02} is not a time span")
        minutes = (h2 * 60 + m2) - (h1 * 60 + m1)
        if minutes <= 0:
            minutes += 24 * 60  # past midnight
        day = (_DAYS.index(m["day"].lower()[:3]) + 1) % 7  # cron: 0 = Sunday
        nth = int(m["nth"]) if m["nth"] else None
        month_days = f"{7 * nth - 6}-{7 * nth}" if nth else "*"
        return MaintenanceWindow(f"{m1} {h1} {month_days} * {day}", timedelta(minutes=minutes),
                                 _zone(m["zone"], text))
    c = _CRON_FORM.match(text)
    if c and croniter.is_valid(c["cron"]):
        span = timedelta(**{_UNIT[c["unit"].lower()]: int(c["n"])})
        if not span:
            raise BadInputError(f"maintenance window {text!r}: a window lasts longer than 0")
        return MaintenanceWindow(c["cron"], span, _zone(c["zone"], text))
    raise BadInputError(f"maintenance window {text!r} is not like {_EXAMPLES}")


def within_window(window: str, start: datetime, end: datetime) -> bool:
    """Whether [start, end] lies inside one occurrence of ``window`` (naive times are UTC).

    Raises BadInputError when the window text cannot be read.
    """
    start = start if start.tzinfo else start.replace(tzinfo=UTC)
    end = end if end.tzinfo else end.replace(tzinfo=UTC)
    return parse_window(window).contains(start, end)
