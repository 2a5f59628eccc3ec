"""How pipesync reads amounts, dates and timestamps as people and CRMs write them."""

from datetime import date, datetime, timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipesync.parsing import domain_of, numeric_date_order, parse_amount, parse_date, parse_datetime, parse_probability


@pytest.mark.parametrize(
    "text, expected",
    [
        ("1234", (Decimal("1234"), None)),
        ("$1,234.50", (Decimal("1234.50"), "USD")),
        ("1.234,50 €", (Decimal("1234.50"), "EUR")),
        ("€ 1 234,50", (Decimal("1234.50"), "EUR")),
        ("EUR 1.234.567,89", (Decimal("1234567.89"), "EUR")),
        ("1,234,567.89 USD", (Decimal("1234567.89"), "USD")),
        ("£60,000.00", (Decimal("60000.00"), "GBP")),
        ("₩95,000,000", (Decimal("95000000"), "KRW")),
        ("12,5", (Decimal("12.5"), None)),
        ("1,234", (Decimal("1234"), None)),  # a lone comma before three digits groups thousands
        ("(1,200.00)", (Decimal("-1200.00"), None)),
        ("-75", (Decimal("-75"), None)),
        ("1'234.50 CHF", (Decimal("1234.50"), "CHF")),
        ("R$ 2.500,00", (Decimal("2500.00"), "BRL")),
        ("1.234.567", (Decimal("1234567"), None)),  # several dots can only group thousands
        ("12,345.67-", (Decimal("-12345.67"), None)),  # an ERP's credit
        ("\u22121,234", (Decimal("-1234"), None)),  # the typographic minus
        ("1.000,-", (Decimal("1000"), None)),
        ("1'000.-", (Decimal("1000"), None)),
        ("₹1,00,000", (Decimal("100000"), "INR")),
        ("Rs. 12,50,000.50", (Decimal("1250000.50"), "INR")),
        ("AU$1,000", (Decimal("1000"), "AUD")),
        ("CA$ 2,000", (Decimal("2000"), "CAD")),
    ],
)
def test_amounts_as_exports_write_them(text, expected):
    assert parse_amount(text) == expected


def test_configured_decimal_separator_wins():
    assert parse_amount("1,234", ",")[0] == Decimal("1.234")
    assert parse_amount("1.234", ",")[0] == Decimal("1234")


def test_dollar_sign_follows_the_sources_default_currency():
    assert parse_amount("$500", None, "CAD") == (Decimal("500"), "CAD")
    assert parse_amount("$500", None, "EUR") == (Decimal("500"), "USD")


@pytest.mark.parametrize(
    ("text", "expected"),
    [("12k", Decimal("12000")), ("$1.5M", Decimal("1500000")), ("€12.5k", Decimal("12500")), ("2bn", Decimal("2000000000")),
     ("1.5 MM", Decimal("1500000")), ("0.25m", Decimal("250000"))],
)
def test_shorthand_typed_in_sheets_is_scaled(text, expected):
    assert parse_amount(text)[0] == expected


@pytest.mark.parametrize("text", ["abc", "12.3.4", "1,23,4.00", "", "$", "12-3", "k", "1.2.3k", "--5", "$ -"])
def test_garbage_is_not_an_amount(text):
    with pytest.raises(ValueError):
        parse_amount(text)


def _group(digits: str, sep: str) -> str:
    head = len(digits) % 3 or 3
    return digits[:head] + "".join(sep + digits[i : i + 3] for i in range(head, len(digits), 3))


@given(st.decimals(min_value=0, max_value=Decimal("999999999999.99"), places=2), st.sampled_from(["us", "eu"]), st.booleans())
def test_any_formatted_amount_reads_back_exactly(value, style, grouped):
    whole, frac = f"{value:.2f}".split(".")
    thousands, dec = (",", ".") if style == "us" else (".", ",")
    text = (_group(whole, thousands) if grouped else whole) + dec + frac
    assert parse_amount(text, dec)[0] == value


@pytest.mark.parametrize(
    "text, order, expected",
    [
        ("2026-12-15", None, date(2026, 12, 15)),
        ("12/15/2026", None, date(2026, 12, 15)),  # unambiguous: 15 cannot be a month
        ("15.12.2026", None, date(2026, 12, 15)),
        ("03/04/2026", "DMY", date(2026, 4, 3)),
        ("03/04/2026", "MDY", date(2026, 3, 4)),
        ("3/4/26", "MDY", date(2026, 3, 4)),
        ("2026/03/04", None, date(2026, 3, 4)),
        ("15 Dec 2026", None, date(2026, 12, 15)),
        ("December 15, 2026", None, date(2026, 12, 15)),
        ("2026年12月15日", None, date(2026, 12, 15)),
        ("2026년 12월 15일", None, date(2026, 12, 15)),
        ("2026. 12. 15.", None, date(2026, 12, 15)),
        ("05/05/2026", None, date(2026, 5, 5)),  # day = month: no ambiguity
    ],
)
def test_dates_in_iso_us_european_and_cjk_forms(text, order, expected):
    assert parse_date(text, order) == expected


@pytest.mark.parametrize(
    "text",
    [
        "15 Dec 2026", "15-Dec-2026", "15/Dec/2026", "Dec 15th, 2026", "Tuesday, December 15, 2026",
        "15. Dezember 2026", "15 décembre 2026", "15 déc. 2026", "15 de diciembre de 2026", "15 de dezembro de 2026",
        "15 dicembre 2026", "15 december 2026", "15 dec 2026",
    ],
)
def test_month_names_in_the_languages_exports_are_written_in(text):
    assert parse_date(text) == date(2026, 12, 15)


def test_a_month_prefix_is_read_only_where_it_names_one_month():
    assert parse_date("3 juil 2026") == date(2026, 7, 3)
    assert parse_date("3 juin 2026") == date(2026, 6, 3)
    with pytest.raises(ValueError, match="unknown month name 'jui'"):
        parse_date("3 jui 2026")


@pytest.mark.parametrize(
    "text",
    [
        "15 grudnia 2026", "15. prosince 2026", "15 Aralık 2026", "15 декабря 2026", "15 Δεκεμβρίου 2026",
        "15. joulukuuta 2026", "15 dec. 2026", "15 desember 2026",
    ],
)
def test_month_names_of_every_cldr_locale(text):
    # Polish, Czech, Turkish, Russian, Greek, Finnish, Dutch, Norwegian: none of them a hand-kept list's
    assert parse_date(text) == date(2026, 12, 15)


def test_a_month_name_languages_disagree_on_is_refused():
    # November in Czech and Polish, October in Croatian
    with pytest.raises(ValueError, match="unknown month name 'listopad'"):
        parse_date("15 listopad 2026")
    assert parse_date("15 May 2026") == date(2026, 5, 15)  # May, though Duala writes "may" for October


@pytest.mark.parametrize(
    "text, expected",
    [
        ("₾1,200", (Decimal("1200"), "GEL")),
        ("₦ 50,000", (Decimal("50000"), "NGN")),
        ("GH₵ 300", (Decimal("300"), "GHS")),
        ("₸12 500", (Decimal("12500"), "KZT")),
        ("1.234,50 zł", (Decimal("1234.50"), "PLN")),
        ("Rs 1,00,000", (Decimal("100000"), "INR")),  # as Indian exports write rupees, not CLDR's Pakistani reading
    ],
)
def test_currency_signs_of_every_cldr_locale(text, expected):
    assert parse_amount(text) == expected


def test_currency_codes_are_cldrs_including_those_recently_replaced():
    from pipesync.currency import FxTable

    fx = FxTable("USD", {})
    assert fx.check_code("xcg") == "XCG"  # the Caribbean guilder, 2025
    assert fx.check_code("HRK") == "HRK"  # a Croatian deal of 2022
    for code in ("XAU", "XYZ", "DEM"):  # gold; nothing; the mark, gone before any CRM's deals
        with pytest.raises(ValueError, match="not an ISO 4217 currency code"):
            fx.check_code(code)


def test_ambiguous_date_is_refused_not_guessed():
    with pytest.raises(ValueError, match="ambiguous.*date_order"):
        parse_date("03/04/2026")


@pytest.mark.parametrize(
    ("text", "order", "expected"),
    [
        ("2026-12-01 10:00", None, date(2026, 12, 1)),  # HubSpot's "Close Date" column
        ("2026-12-01T23:30:00Z", None, date(2026, 12, 1)),
        ("2026-12-01T00:00:00.000+0000", None, date(2026, 12, 1)),
        ("12/1/2026 11:45 PM", "MDY", date(2026, 12, 1)),
        ("01.12.2026 10:00", "DMY", date(2026, 12, 1)),
    ],
)
def test_a_timestamp_in_a_date_field_gives_the_day_as_written(text, order, expected):
    assert parse_date(text, order) == expected


def test_a_timestamp_keeps_the_date_rules():
    with pytest.raises(ValueError, match="ambiguous"):
        parse_date("03/04/2026 10:00")
    with pytest.raises(ValueError, match="not a date"):
        parse_date("2026-12-01 10")


@pytest.mark.parametrize(
    ("text", "shows"),
    [
        ("15/12/2026", "DMY"), ("31.1.27", "DMY"), ("12/15/2026", "MDY"), ("1/31/2026 3:45 PM", "MDY"),
        ("03/04/2026", "ambiguous"), ("03-04-2026 10:00", "ambiguous"),
        ("04/04/2026", None), ("2026-12-15", None), ("2026/12/01", None), ("Dec 15, 2026", None), ("", None),
        # a date that does not exist proves nothing: there is no 31 April and no 30 February
        ("31/04/2026", None), ("02/30/2027", None), ("29/02/2027", None), ("29/02/2028", "DMY"),
    ],
)
def test_a_numeric_date_shows_its_order_only_when_a_day_is_above_12(text, shows):
    assert numeric_date_order(text) == shows


@pytest.mark.parametrize("text", ["13/45/2026", "2026-02-30", "yesterday", "31.31.2026"])
def test_impossible_dates_are_errors(text):
    with pytest.raises(ValueError):
        parse_date(text, "DMY")


@given(st.dates(min_value=date(1971, 1, 1), max_value=date(2099, 12, 31)), st.sampled_from(["DMY", "MDY"]), st.sampled_from("/.-"))
def test_any_date_reads_back_in_its_configured_order(d, order, sep):
    parts = (d.day, d.month) if order == "DMY" else (d.month, d.day)
    assert parse_date(f"{parts[0]:02d}{sep}{parts[1]:02d}{sep}{d.year}", order) == d


def test_timestamps_become_utc():
    assert parse_datetime("2024-05-07T22:07:19.000+0000") == datetime(2024, 5, 7, 22, 7, 19, tzinfo=timezone.utc)
    assert parse_datetime("2026-08-05 10:12", "Europe/Berlin") == datetime(2026, 8, 5, 8, 12, tzinfo=timezone.utc)
    assert parse_datetime("8/4/2026 3:05 PM", "America/New_York", "MDY") == datetime(2026, 8, 4, 19, 5, tzinfo=timezone.utc)
    assert parse_datetime("01.10.2026 09:00", "UTC", "DMY") == datetime(2026, 10, 1, 9, 0, tzinfo=timezone.utc)
    assert parse_datetime("2026-11-18", "Asia/Seoul") == datetime(2026, 11, 17, 15, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("text, expected", [("60%", 0.6), ("60", 0.6), ("0.6", 0.6), ("100", 1.0), ("0", 0.0)])
def test_probabilities(text, expected):
    assert parse_probability(text) == pytest.approx(expected)


@pytest.mark.parametrize(
    "text, expected",
    [("https://www.Acme.com/about", "acme.com"), ("acme.co.uk", "acme.co.uk"), ("jo@acme.de", "acme.de"), ("localhost", None)],
)
def test_domains(text, expected):
    assert domain_of(text) == expected
