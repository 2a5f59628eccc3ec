"""Record links back to each CRM: each adapter's options build its system's record URLs."""

from __future__ import annotations

import pytest

from pipesync.config import SourceConfig


def source(type_: str, **options: str) -> SourceConfig:
    return SourceConfig(name="s", type=type_, options={"path": "deals.csv", **options} if type_ == "csv" else options)


def record_url(source: SourceConfig, source_id: str) -> str | None:
    return source.options.record_url(source_id)


def test_salesforce_lightning_record_page():
    s = source("salesforce", instance_url="https://acme.my.salesforce.com/")
    assert record_url(s, "0065e00000AbCdE") == "https://acme.my.salesforce.com/lightning/r/Opportunity/0065e00000AbCdE/view"


def test_hubspot_deal_record_in_the_portal():
    assert record_url(source("hubspot", portal_id="123456"), "987") == "https://app.hubspot.com/contacts/123456/record/0-3/987"
    eu = source("hubspot", portal_id="42", app_url="https://app-eu1.hubspot.com")
    assert record_url(eu, "987") == "https://app-eu1.hubspot.com/contacts/42/record/0-3/987"


@pytest.mark.parametrize("company", ["acme", "acme.pipedrive.com", "ACME"])
def test_pipedrive_deal_page_on_the_company_domain(company):
    assert record_url(source("pipedrive", company_domain=company), "31") == "https://acme.pipedrive.com/deal/31"


def test_csv_rows_have_no_record_page():
    assert record_url(source("csv"), "row-3") is None


@pytest.mark.parametrize(
    "s",
    [
        source("salesforce"),  # no instance_url
        source("salesforce", instance_url="javascript:alert(1)//"),
        source("hubspot"),  # no portal_id
        source("pipedrive", company_domain="evil.com/x?"),
    ],
)
def test_no_link_rather_than_a_wrong_or_unsafe_one(s):
    assert record_url(s, "1") is None


def test_ids_are_url_encoded():
    assert record_url(source("pipedrive", company_domain="acme"), "a/b c") == "https://acme.pipedrive.com/deal/a%2Fb%20c"
