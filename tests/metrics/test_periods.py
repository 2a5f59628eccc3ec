from __future__ import annotations

from datetime import date

import pytest

from pipesync.errors import ConfigError
from pipesync.metrics.periods import Period, month_of, quarter_of, resolve_period


def test_the_default_period_is_the_current_quarter():
    assert resolve_period(None, None, date(2026, 11, 22)) == Period(date(2026, 10, 1), date(2026, 12, 31))
    assert resolve_period(date(2026, 11, 1), None, date(2026, 11, 22)) == Period(date(2026, 11, 1), date(2026, 12, 31))


def test_a_quarter_is_compared_with_the_quarter_before():
    assert quarter_of(date(2026, 2, 14)).previous() == Period(date(2025, 10, 1), date(2025, 12, 31))
    assert quarter_of(date(2026, 11, 22)).previous() == Period(date(2026, 7, 1), date(2026, 9, 30))


def test_a_month_is_compared_with_the_month_before():
    assert month_of(date(2026, 3, 31)).previous() == Period(date(2026, 2, 1), date(2026, 2, 28))


def test_any_other_period_with_as_many_days_just_before():
    p = Period(date(2026, 11, 10), date(2026, 11, 16))
    assert p.days == 7
    assert p.previous() == Period(date(2026, 11, 3), date(2026, 11, 9))


def test_a_period_cannot_end_before_it_starts():
    with pytest.raises(ConfigError, match="before it starts"):
        Period(date(2026, 11, 10), date(2026, 11, 1))
