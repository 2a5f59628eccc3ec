from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from pipesync.errors import ConfigError
from pipesync.metrics.periods import Period, compare, day_of, end_of_day, month_of, quarter_of, resolve_period, trend_periods

Q3 = Period(date(2026, 7, 1), date(2026, 9, 30))
Q4 = Period(date(2026, 10, 1), date(2026, 12, 31))


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


def test_as_of_a_day_is_the_first_instant_after_it():
    assert end_of_day(date(2026, 12, 31)) == datetime(2027, 1, 1, tzinfo=timezone.utc)
    assert day_of(end_of_day(date(2026, 12, 31))) == date(2026, 12, 31)
    assert day_of(datetime(2026, 11, 22, 12, 0, tzinfo=timezone.utc)) == date(2026, 11, 22)


def test_a_quarter_in_progress_is_compared_with_the_previous_one_as_far_in():
    # the report of 1 November: Q4 through 1 November against Q3 through 1 August (32 days each)
    c = compare(Q4, end_of_day(date(2026, 11, 1)))
    assert c.to_date and c.previous == Q3
    assert c.previous_as_of == end_of_day(date(2026, 8, 1)) and c.previous_through == date(2026, 8, 1)


def test_the_same_point_never_passes_the_end_of_a_shorter_previous_period():
    # 31 days into March; February has 28
    c = compare(month_of(date(2027, 3, 1)), datetime(2027, 3, 31, 12, tzinfo=timezone.utc))
    assert c.previous_through == date(2027, 2, 28)


def test_a_finished_period_is_compared_with_the_whole_previous_one():
    c = compare(Q3, end_of_day(date(2026, 11, 22)))
    assert not c.to_date
    assert (c.as_of, c.previous_as_of) == (end_of_day(Q3.end), end_of_day(date(2026, 6, 30)))


def test_a_period_that_has_not_started_has_nothing_to_measure():
    with pytest.raises(ConfigError, match="after the as-of day"):
        compare(Q4, end_of_day(date(2026, 9, 30)))


def test_a_trend_shows_four_quarters_or_twelve_months_before_the_period():
    assert trend_periods(Q4) == [quarter_of(date(2025, 12, 1)), quarter_of(date(2026, 2, 1)), quarter_of(date(2026, 5, 1)), Q3]
    months = trend_periods(month_of(date(2026, 11, 1)))
    assert len(months) == 12 and months[0] == month_of(date(2025, 11, 1)) and months[-1] == month_of(date(2026, 10, 1))
    week = Period(date(2026, 11, 16), date(2026, 11, 22))
    assert trend_periods(week)[0] == Period(date(2026, 10, 19), date(2026, 10, 25))
