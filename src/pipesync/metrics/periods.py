"""Reporting periods: the one being measured, the one it is compared with, the ones a trend shows.

Figures are measured *as of* an instant: "as of day D" is the first instant after D
(midnight UTC), when D's figures stood complete.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Literal

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


@dataclass(frozen=True)
class Comparison:
    """A period measured as of an instant, against the previous period measured up to the same point."""

    period: Period
    as_of: datetime  # the period is measured up to here: the as-of instant, or its end when that is earlier
    previous: Period
    previous_as_of: datetime  # as many days into the previous period, or its end
    to_date: bool  # the as-of instant falls inside the period

    @property
    def previous_through(self) -> date:
        """The last day of the previous period that the comparison covers."""
        return day_of(self.previous_as_of)


def compare(period: Period, as_of: datetime) -> Comparison:
    """``period`` as of ``as_of``; when that falls inside it, the previous period up to the same point.

    The same point is the same time elapsed since the start (Q4 through 1 November is
    compared with Q3 through 1 August), never past the previous period's end.
    """
    start, after = start_of_day(period.start), end_of_day(period.end)
    if as_of <= start:
        raise ConfigError(f"the period starts ({period.start}) after the as-of day ({day_of(as_of)}): nothing to measure yet")
    previous = period.previous()
    previous_after = end_of_day(previous.end)
    if as_of >= after:
        return Comparison(period, after, previous, previous_after, to_date=False)
    same_point = min(start_of_day(previous.start) + (as_of - start), previous_after)
    return Comparison(period, as_of, previous, same_point, to_date=True)


def trend_periods(period: Period) -> list[Period]:
    """The periods a trend shows before ``period``, oldest first: 12 months before a month, else 4 periods."""
    count = 12 if _is_month(period) else 4
    periods = [period.previous()]
    while len(periods) < count:
        periods.append(periods[-1].previous())
    return periods[::-1]


def kind(period: Period) -> Literal["quarter", "month", "period"]:
    """What to call the period in words ("quarter to date")."""
    return "quarter" if _is_quarter(period) else "month" if _is_month(period) else "period"


def start_of_day(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=timezone.utc)


def end_of_day(day: date) -> datetime:
    """The first instant after ``day`` (UTC): figures as of D are as they stood then."""
    return start_of_day(day + timedelta(days=1))


def day_of(instant: datetime) -> date:
    """The last day an instant completes, or is in: midnight ends the day before."""
    return (instant.astimezone(timezone.utc) - timedelta(microseconds=1)).date()


def quarter_of(day: date) -> Period:
    first_month = 3 * ((day.month - 1) // 3) + 1
    start = date(day.year, first_month, 1)
    return Period(start, _month_end(date(day.year, first_month + 2, 1)))


def month_of(day: date) -> Period:
    start = day.replace(day=1)
    return Period(start, _month_end(start))


def resolve_period(start: date | None, end: date | None, as_of_day: date) -> Period:
    """The period a user asked for; either bound left out defaults to the as-of day's quarter."""
    default = quarter_of(as_of_day)
    return Period(start or default.start, end or default.end)


def _month_end(first: date) -> date:
    next_month = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
    return next_month - timedelta(days=1)


def _is_month(p: Period) -> bool:
    return p.start.day == 1 and p.end == _month_end(p.start)


def _is_quarter(p: Period) -> bool:
    return p.start.day == 1 and p.start.month % 3 == 1 and p.end == quarter_of(p.start).end
