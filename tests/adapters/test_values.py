"""Wire values into typed canonical values: calendar dates never shift, instants are UTC-aware."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

from hypothesis import given, strategies as st

from pipesync.adapters.changes import origin_tag, own_write
from pipesync.adapters.values import calendar_date, decimal_or_none, domain_of, instant


def test_instants_in_every_vendor_format_are_utc_aware():
    expected = datetime(2024, 5, 7, 22, 7, 19, tzinfo=timezone.utc)
    assert instant("2024-05-07T22:07:19.000+0000") == expected  # Salesforce
    assert instant("2024-05-07T22:07:19Z") == expected  # Pipedrive v2
    assert instant("2024-05-07 22:07:19") == expected  # Pipedrive v1, documented as UTC
    assert instant("2024-05-08T00:07:19+02:00") == expected
    assert instant(str(int(expected.timestamp() * 1000))) == expected  # HubSpot epoch ms


@given(st.dates(min_value=date(1971, 1, 1), max_value=date(2999, 12, 31)))
def test_a_date_only_close_date_is_the_same_calendar_day_in_every_form(day):
    midnight_utc = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
    assert calendar_date(day.isoformat()) == day
    assert calendar_date(midnight_utc.isoformat().replace("+00:00", "Z")) == day  # HubSpot closedate
    assert calendar_date(str(int(midnight_utc.timestamp() * 1000))) == day


def test_money_is_decimal_and_domains_are_bare_hosts():
    assert decimal_or_none(1500.5) == Decimal("1500.5") and decimal_or_none("") is None
    assert domain_of("https://www.Acme.com/about") == "acme.com"
    assert domain_of("acme.de") == "acme.de" and domain_of(None) is None


def test_own_write_is_recognised_only_until_someone_else_edits():
    written = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
    tag = origin_tag(written)
    assert own_write(tag, written + timedelta(seconds=1), tolerance_s=5)
    assert not own_write(tag, written + timedelta(minutes=3), tolerance_s=5)
    assert not own_write("someone else", written, tolerance_s=5)
    assert own_write(origin_tag(written, key="7"), written, tolerance_s=5)
