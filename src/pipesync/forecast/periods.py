"""Forecast periods: the calendar quarter or month an instant falls in, the ones after, the ones before."""

from __future__ import annotations

from datetime import date, timedelta

from pipesync.errors import ConfigError
from pipesync.forecast.results import PeriodKind
from pipesync.metrics.periods import Period, month_of, quarter_of

KINDS: tuple[PeriodKind, ...] = ("quarter", "month")


def period_of(day: date, kind: PeriodKind) -> Period:
    if kind not in KINDS:
        raise ConfigError(f"unknown forecast period {kind!r}: use quarter or month")
    return quarter_of(day) if kind == "quarter" else month_of(day)


def following(p: Period, kind: PeriodKind, count: int) -> list[Period]:
    """``p`` and the ``count - 1`` periods after it."""
    periods = [p]
    while len(periods) < count:
        periods.append(period_of(periods[-1].end + timedelta(days=1), kind))
    return periods


def preceding(p: Period, kind: PeriodKind, count: int) -> list[Period]:
    """The ``count`` periods before ``p``, the latest first."""
    periods: list[Period] = []
    while len(periods) < count:
        periods.append(period_of((periods[-1] if periods else p).start - timedelta(days=1), kind))
    return periods


def label(p: Period, kind: PeriodKind) -> str:
    """'2026-Q4' or '2026-11': how targets name a period."""
    return f"{p.start.year}-Q{(p.start.month - 1) // 3 + 1}" if kind == "quarter" else f"{p.start.year}-{p.start.month:02d}"
