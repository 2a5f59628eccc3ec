"""The day a deal closed beside the day it was expected to; credits; the currency of a blank amount."""

from datetime import date, datetime, timezone
from decimal import Decimal

import pytest

from pipesync.currency import FxTable
from pipesync.errors import NormalizationError
from pipesync.mapping import Mapping
from pipesync.model import RawDeal
from pipesync.normalize import Normalizer
from pipesync.pipeline import load_pipeline
from pipesync.yamlfile import FileErrors, load_model

PIPELINE = load_pipeline()


def normalizer(**parse) -> Normalizer:
    mapping = Mapping.model_validate(
        {"parse": parse, "pipelines": [{"id": "*", "stages": [
            {"label": "Negotiation", "stage": "negotiation"},
            {"label": "Closed Won", "stage": "closed_won"},
            {"label": "Closed Lost", "stage": "closed_lost"},
        ]}]},
        context={"pipeline": PIPELINE},
    )
    return Normalizer("crm", mapping, PIPELINE, FxTable("USD", {"EUR": Decimal("1.10")}), "crm.yaml")


def raw(**values) -> RawDeal:
    return RawDeal(source_id="42", locator="deals.csv row 2", values=values)


# -- both close dates ----------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("written", "tz", "day"),
    [
        ("2026-09-30", "UTC", date(2026, 9, 30)),  # a date
        ("2026-09-30 23:30:00", "UTC", date(2026, 9, 30)),  # a timestamp as Pipedrive exports write it
        ("2026-09-30 23:30:00", "Europe/Berlin", date(2026, 9, 30)),  # naive: read in the source's zone
        ("2026-09-30T23:30:00Z", "Europe/Berlin", date(2026, 10, 1)),  # an instant: its day where the source is
        ("30.09.2026 18:05", "UTC", date(2026, 9, 30)),
        (datetime(2026, 9, 30, 23, 30, tzinfo=timezone.utc), "Asia/Tokyo", date(2026, 10, 1)),  # typed, from an API
        (date(2026, 9, 30), "Asia/Tokyo", date(2026, 9, 30)),  # a calendar date stays the day it is
    ],
)
def test_the_actual_close_date_is_the_day_it_closed_in_the_sources_timezone(written, tz, day):
    deal = normalizer(timezone=tz, date_order="DMY").normalize(
        raw(source_stage="Closed Won", close_date="2026-12-15", actual_close_date=written))
    assert (deal.close_date, deal.actual_close_date) == (date(2026, 12, 15), day)


def test_an_open_deal_has_no_actual_close_date_whatever_the_column_says():
    # a reopened deal keeps its old won time in Pipedrive; a Close Date is a closing day only once closed
    deal = normalizer().normalize(raw(source_stage="Negotiation", close_date="2026-12-15", actual_close_date="2026-09-30"))
    assert (deal.close_date, deal.actual_close_date) == (date(2026, 12, 15), None)


def test_an_unreadable_actual_close_date_is_quarantined_naming_it():
    with pytest.raises(NormalizationError) as e:
        normalizer().normalize(raw(source_stage="Closed Lost", actual_close_date="03/04/2026"))
    assert e.value.field == "actual_close_date" and "ambiguous" in e.value.reason


def test_a_status_from_the_record_settles_whether_the_deal_closed():
    n = normalizer()
    won = n.normalize(raw(source_stage="Negotiation", status="won", actual_close_date="2026-09-30"))
    assert (won.status, won.actual_close_date) == ("won", date(2026, 9, 30))


# -- negative amounts ------------------------------------------------------------------------------

@pytest.mark.parametrize("written", ["-4500", "(4,500.00)", "4,500.00-", "−4.500,00 €", "EUR (4500)", Decimal("-4500"), -4500.0])
def test_a_negative_amount_is_quarantined_by_default(written):
    with pytest.raises(NormalizationError) as e:
        normalizer().normalize(raw(source_stage="Closed Won", amount=written))
    assert e.value.field == "amount"
    assert e.value.reason.startswith("negative_amount:") and "parse.negative_amounts: accept in crm.yaml" in e.value.reason


@pytest.mark.parametrize(("written", "amount"), [("(4,500.00)", Decimal("-4500.00")), ("4,500.00-", Decimal("-4500.00")),
                                                 (Decimal("-12.5"), Decimal("-12.5"))])
def test_a_source_that_holds_credits_keeps_them(written, amount):
    deal = normalizer(negative_amounts="accept").normalize(raw(source_stage="Closed Won", amount=written, currency="EUR"))
    assert (deal.amount, deal.currency, deal.amount_reporting) == (amount, "EUR", amount * Decimal("1.10"))


def test_zero_and_negative_zero_are_no_credit():
    for written in ("0", "-0.00", "(0)"):
        assert normalizer().normalize(raw(source_stage="Negotiation", amount=written)).amount == 0


def test_the_option_is_checked_with_file_and_line(tmp_path):
    path = tmp_path / "crm.yaml"
    path.write_text("source: crm\nparse:\n  negative_amounts: credit\n")
    with pytest.raises(FileErrors, match=r"line 3: parse.negative_amounts: Input should be 'quarantine' or 'accept'"):
        load_model(path, Mapping)


# -- the currency of a blank amount ---------------------------------------------------------------

def test_a_blank_amount_keeps_the_currency_of_its_row():
    for blank in (None, "", "  "):
        deal = normalizer().normalize(raw(source_stage="Negotiation", amount=blank, currency="EUR"))
        assert (deal.amount, deal.currency, deal.amount_reporting) == (None, "EUR", None)


def test_a_blank_amount_keeps_the_default_currency():
    deal = normalizer(default_currency="EUR").normalize(raw(source_stage="Negotiation", amount=""))
    assert (deal.amount, deal.currency) == (None, "EUR")


def test_a_blank_amount_with_no_currency_anywhere_has_none():
    # the reporting currency would be a guess: an amount written later may be in another
    deal = normalizer().normalize(raw(source_stage="Negotiation", amount=""))
    assert (deal.amount, deal.currency) == (None, None)
