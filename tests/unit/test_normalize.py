"""Normalization: raw records through a mapping into canonical deals, or a reason naming the field."""

from datetime import date, datetime, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from pipesync.currency import FxTable
from pipesync.errors import NormalizationError
from pipesync.mapping import Mapping
from pipesync.model import Category, Deal, RawDeal
from pipesync.normalize import Normalizer
from pipesync.pipeline import load_pipeline

PIPELINE = load_pipeline()


def normalizer(**parse) -> Normalizer:
    mapping = Mapping.model_validate(
        {
            "parse": parse,
            "pipelines": [
                {"id": "eu", "stages": [{"id": "7", "label": "Proposal Made", "stage": "proposal"}]},
                {"id": "*", "stages": [
                    {"label": "Negotiation", "stage": "negotiation"},
                    {"label": "Closed Won", "stage": "closed_won"},
                    {"label": "Legal Review", "stage": None},
                ]},
            ],
        },
        context={"pipeline": PIPELINE},
    )
    return Normalizer("crm", mapping, PIPELINE, FxTable("USD", {"EUR": Decimal("1.10")}), "crm.yaml")


def raw(**values) -> RawDeal:
    return RawDeal(source_id=values.pop("source_id", "42"), locator="deals.csv row 2", values=values)


def test_a_complete_record():
    deal = normalizer(date_order="DMY", timezone="Europe/Berlin").normalize(raw(
        name=" Acme expansion ", pipeline="eu", source_stage="7", amount="1.234,50 €", probability="50%",
        close_date="31.12.2026", created_at="01.10.2026 09:00", account_domain="https://www.acme.de/",
        contact_emails="Jo@Acme.de; not-an-email", external_refs="salesforce:006A",
    ))
    assert deal.key == "crm:42"
    assert (deal.name, deal.stage, deal.status) == ("Acme expansion", "proposal", Category.OPEN)
    assert (deal.amount, deal.currency, deal.amount_reporting) == (Decimal("1234.50"), "EUR", Decimal("1357.9500"))
    assert deal.probability == 0.5
    assert deal.close_date == date(2026, 12, 31)
    assert deal.created_at == datetime(2026, 10, 1, 7, 0, tzinfo=timezone.utc)
    assert deal.account_domain == "acme.de"
    assert deal.contact_emails == ["jo@acme.de"]
    assert deal.external_refs == ["salesforce:006A"]


def test_status_field_decides_won_and_lost_and_keeps_the_source_stage():
    deal = normalizer().normalize(raw(pipeline="eu", source_stage="Proposal Made", status="won"))
    assert (deal.stage, deal.status, deal.source_stage) == ("closed_won", Category.WON, "Proposal Made")
    deal = normalizer().normalize(raw(source_stage="Negotiation", status="Lost"))
    assert (deal.stage, deal.status) == ("closed_lost", Category.LOST)


@pytest.mark.parametrize(
    ("word", "status"),
    [("Gewonnen", Category.WON), ("perdu", Category.LOST), ("Abierto", Category.OPEN), ("赢单", Category.WON),
     ("실주", Category.LOST), ("مفتوح", Category.OPEN)],
)
def test_status_words_in_the_exporting_users_language(word, status):
    assert normalizer().normalize(raw(source_stage="Negotiation", status=word)).status is status


def test_stage_category_gives_the_status_without_a_status_field():
    assert normalizer().normalize(raw(source_stage="closed won")).status is Category.WON


def test_typed_values_from_apis_are_accepted():
    deal = normalizer().normalize(raw(
        source_stage="Negotiation", amount=Decimal("10"), currency="EUR", close_date=date(2026, 1, 31),
        updated_at=datetime(2026, 1, 1, tzinfo=timezone.utc), created_at=1_700_000_000_000, is_deleted=True,
    ))
    assert deal.amount_reporting == Decimal("11.0000")
    assert deal.close_date == date(2026, 1, 31)
    assert deal.created_at == datetime(2023, 11, 14, 22, 13, 20, tzinfo=timezone.utc)
    assert deal.is_deleted


def test_amount_without_currency_is_in_the_default_currency():
    assert normalizer(default_currency="EUR").normalize(raw(source_stage="Negotiation", amount="10")).currency == "EUR"
    assert normalizer().normalize(raw(source_stage="Negotiation", amount="10")).currency == "USD"


@pytest.mark.parametrize(
    "values, field, reason",
    [
        ({"source_stage": "Legal Review"}, "source_stage", "not mapped yet in crm.yaml"),
        ({"source_stage": "Contract Signed"}, "source_stage", "not in crm.yaml: add it (pipesync map crm)"),
        ({}, "source_stage", "no stage"),
        ({"source_stage": "Negotiation", "amount": "lots"}, "amount", "not an amount"),
        ({"source_stage": "Negotiation", "amount": "5", "currency": "XYZ"}, "currency", "not an ISO 4217"),
        ({"source_stage": "Negotiation", "amount": "5", "currency": "JPY"}, "currency", "no exchange rate from JPY to USD"),
        ({"source_stage": "Negotiation", "amount": "€5", "currency": "USD"}, "currency", "column says USD"),
        ({"source_stage": "Negotiation", "close_date": "03/04/2026"}, "close_date", "ambiguous"),
        ({"source_stage": "Negotiation", "created_at": "soon"}, "created_at", "not a date"),
        ({"source_stage": "Negotiation", "status": "maybe"}, "status", "unknown status word"),
    ],
)
def test_unreadable_records_name_the_field_and_reason(values, field, reason):
    with pytest.raises(NormalizationError) as info:
        normalizer().normalize(raw(**values))
    assert info.value.field == field
    assert reason in str(info.value)


def test_a_record_without_id_is_refused():
    with pytest.raises(NormalizationError, match="source_id"):
        normalizer().normalize(RawDeal(source_id=None, locator="x row 3", values={"source_stage": "Negotiation"}))


def test_a_page_gives_each_record_its_deal_or_its_error_in_order():
    page = [
        raw(source_id="1", source_stage="Negotiation", close_date="2026-01-31", amount="10"),
        raw(source_id="2", source_stage="Negotiation", close_date="31.31.2026"),
        raw(source_id="3", source_stage="Contract Signed"),
        raw(source_id="4", source_stage="Negotiation", close_date="2026-01-31", name="Acme"),
    ]
    normalized = normalizer().normalize_page(page)
    results = [normalized.result(i) for i in range(len(normalized))]
    assert [r.source_id for r in (results[0], results[3])] == ["1", "4"]
    assert (results[1].field, results[2].field) == ("close_date", "source_stage")
    assert results[3].close_date == date(2026, 1, 31) and results[3].name == "Acme"
    assert results[3].amount is None and results[3].contact_emails == [] and results[3].contact_emails is not results[0].contact_emails


def test_a_malformed_contact_email_is_dropped_and_said_but_the_deal_is_kept():
    page = normalizer().normalize_page([
        raw(source_id="1", source_stage="Negotiation", contact_emails="Jo@Acme.de; not-an-email; bob@"),
        raw(source_id="2", source_stage="Negotiation", contact_emails=["ann@acme.de", "ann at acme"]),
        raw(source_id="3", source_stage="Negotiation", contact_emails="kim@acme.de"),
    ])
    assert not page.errors
    assert [page.result(i).contact_emails for i in range(3)] == [["jo@acme.de"], ["ann@acme.de"], ["kim@acme.de"]]
    assert sorted(page.dropped) == [0, 1]
    assert page.dropped[0].field == "contact_emails"
    assert str(page.dropped[0]) == "contact_emails: 2 malformed address(es) dropped (got 'not-an-email, bob@')"


def test_normalized_deals_are_exactly_what_validation_would_build():
    # The normalizer builds deals without validating them again: every value must already be what the model holds.
    deal = normalizer(timezone="Europe/Berlin").normalize(raw(
        name="Acme", source_stage="Negotiation", amount="10", probability=0.4, close_date=date(2026, 1, 31),
        created_at=datetime(2026, 1, 1, 9, tzinfo=ZoneInfo("Europe/Berlin")), updated_at="2026-01-02 10:00",
        owner_email="Jo@Acme.de", external_refs=(6, "salesforce:006A"),
    ))
    assert deal == Deal.model_validate(deal.model_dump())
    assert deal.created_at == datetime(2026, 1, 1, 8, tzinfo=timezone.utc) and deal.created_at.tzinfo is timezone.utc
    assert deal.external_refs == ["6", "salesforce:006A"]


def test_the_normalizer_sets_every_field_of_the_model():
    deal = normalizer().normalize(raw(source_stage="Negotiation"))
    assert set(deal.__dict__) == set(Deal.model_fields)


@pytest.mark.parametrize("probability", [-0.2, "150", "-5%"])
def test_a_probability_outside_0_to_1_is_refused(probability):
    with pytest.raises(NormalizationError, match="probability"):
        normalizer().normalize(raw(source_stage="Negotiation", probability=probability))
