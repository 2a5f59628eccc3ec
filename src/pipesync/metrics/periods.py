"""Reporting periods: the one being measured and the one it is compared with."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from pipesync.errors import ConfigError


@dataclass(frozen=True)
class Period:
    """Calendar days ``start`` to ``end``, both included."""

    start: date
    end: date

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ConfigError(f"period ends ({self.end}) before it starts ({self.start})")

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def previous(self) -> Period:
        """The period just before: the previous calendar quarter or month when this is one, else as many days."""
        if _is_quarter(self):
            return quarter_of(self.start - timedelta(days=1))
        if _is_month(self):
            return month_of(self.start - timedelta(days=1))
        end = self.start - timedelta(days=1)
        return Period(end - timedelta(days=self.days - 1), end)

    def __str__(self) -> str:
        return f"{self.start.isoformat()} to {self.end.isoformat()}"


def quarter_of(day: date) -> Period:
    first_month = 3 * ((day.month - 1) // 3) + 1
    start = date(day.year, first_month, 1)
    return Period(start, _month_end(date(day.year, first_month + 2, 1)))


def month_of(day: date) -> Period:
    start = day.replace(day=1)
    return Period(start, _month_end(start))


def resolve_period(start: date | None, end: date | None, today: date) -> Period:
    """The period a user asked for; either bound left out defaults to today's quarter."""
    default = quarter_of(today)
    return Period(start or default.start, end or default.end)


def _month_end(first: date) -> date:
    next_month = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
    return next_month - timedelta(days=1)


def _is_month(p: Period) -> bool:
    return p.start.day == 1 and p.end == _month_end(p.start)


def _is_quarter(p: Period) -> bool:
    return p.start.day == 1 and p.start.month % 3 == 1 and p.end == quarter_of(p.start).end
