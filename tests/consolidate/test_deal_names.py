"""What a deal name says beyond its account: the kind of deal, and what it is about."""

from __future__ import annotations

import pytest

from pipesync.consolidate.deal_names import DealNameReader
from pipesync.consolidate.features import MISSING, compute_features
from pipesync.consolidate.keys import fold, load_lexicon
from tests.consolidate.conftest import make_deal, records

LEX = load_lexicon()
READER = DealNameReader(LEX, company_words={"acme", "今丸製作所", "海康贸易"})


def read(name: str) -> tuple[tuple[str, ...], str]:
    return READER.read(fold(name))


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("Renewal FY25", "renewal"),
        ("Vertragsverlängerung 2025", "renewal"),
        ("renovación anual", "renewal"),
        ("2026年度 契約更新", "renewal"),
        ("2025 갱신", "renewal"),
        ("تجديد عقد", "renewal"),
        ("Upsell - 20 seats", "expansion"),
        ("追加導入 20ライセンス", "expansion"),
        ("New Business", "new_business"),
        ("新签 Data Connector", "new_business"),
        ("Proof of Concept", "pilot"),
        ("Fleet telematics POC", "pilot"),
        ("Implementation services", "services"),
        ("導入支援", "services"),
        ("via partner", "partner"),
    ],
)
def test_the_kind_of_deal_is_read_in_many_languages_and_scripts(name, kind):
    assert read(name)[0] == (kind,)


def test_the_longest_entry_wins_inside_unspaced_words():
    # 追加導入 (additional roll-out) is an expansion, though 導入 alone is new business
    assert read("追加導入")[0] == ("expansion",)
    assert read("Platform 導入")[0] == ("new_business",)


def test_a_name_may_name_several_kinds_and_may_name_none():
    assert read("Premium Support renewal + upsell")[0] == ("expansion", "renewal")
    assert read("Team Plan")[0] == ()


def test_the_subject_is_what_is_left_without_kind_numbers_filler_and_company_words():
    assert read("Team Plan (25 seats) renewal 2025")[1] == "team plan"
    assert read("Acme – Analytics Suite deal")[1] == "analytics suite"
    assert read("Renewal FY25")[1] == ""


def test_a_latin_product_glued_to_a_cjk_account_is_read_apart_from_it():
    assert read("海康贸易Analytics Suite项目") == ((), "analytics suite")
    assert read("今丸製作所様 Compliance Module 増設") == (("expansion",), "compliance module")


@pytest.mark.parametrize("name, expected", [
    ("Acme - Renewl FY25", (("renewal",), "")),
    ("Acme proof of conecpt", (("pilot",), "")),
    ("Acme Expnasion +50", (("expansion",), "")),
    ("Acme New Buisness Team Plan", (("new_business",), "team plan")),
    ("Acme - Ne wBusiness", (("new_business",), "")),  # a slip across the space of a phrase
    ("Acme - Nwe Business", (("new_business",), "")),
    ("Acme proof o concept", (("pilot",), "")),
    ("Acme upsell - 500 sats", (("expansion",), "")),
])
def test_a_slip_in_a_vocabulary_word_still_names_its_kind_and_is_no_subject(name, expected):
    assert read(name) == expected


def test_a_short_word_is_not_read_as_a_slip():
    assert read("Acme Ren") == ((), "ren")


def test_words_of_an_unknown_kind_stay_in_the_subject():
    assert read("Acme Fleet telematics") == ((), "fleet telematics")


def test_each_deal_gets_the_kind_and_subject_of_its_own_name_without_any_accounts_words():
    named = [("Acme – Team Plan renewal", "Acme Inc."), ("Globex Team Plan", "Globex GmbH"),
             ("Acme upsell", "Acme Inc."), ("Globex", "Globex GmbH"), ("Initech Team Plan", "Acme Inc."),
             ("Pilot", "Initech LLC")]
    deals = [make_deal("hubspot", str(i), name=n, account_name=a) for i, (n, a) in enumerate(named)]
    features = compute_features(records(*deals), LEX)
    # "Initech" names another account of the run: an account's word, not a product
    assert features.text["subject"].tolist() == ["team plan", "team plan", "", "", "team plan", ""]
    types = features.sets["deal_type"]
    assert types[0, 0] != types[2, 0] and types[2, 0] != MISSING
    assert (types[[1, 3, 4], 0] == MISSING).all()
