"""Normalization keys: one company, one key, whatever the spelling, script or width."""

from __future__ import annotations

import pytest

from pipesync.consolidate.keys import fold, fold_words, load_lexicon

LEX = load_lexicon()


@pytest.mark.parametrize(
    "spellings",
    [
        ["Acme Inc.", "ACME, INC", "Acme Incorporated", "acme LLC", "Acme Ltd", "Acme Corp.", "The Acme Company"],
        ["Siemens AG", "SIEMENS A.G.", "Siemens"],
        ["Müller GmbH & Co. KG", "Muller GmbH", "MÜLLER"],
        ["Fiat S.p.A.", "Fiat SpA", "FIAT S.P.A."],
        ["Nestlé S.A.", "Nestle SA", "NESTLÉ"],
        ["Volvo AB (publ)", "Volvo AB"],
        ["Toyota K.K.", "Toyota Kabushiki Kaisha", "Toyota"],
        ["トヨタ株式会社", "株式会社トヨタ", "(株)トヨタ", "㈱トヨタ", "トヨタ"],
        ["阿里巴巴集团有限公司", "阿里巴巴有限公司", "阿里巴巴"],
        ["삼성전자 주식회사", "삼성전자(주)", "㈜삼성전자", "주식회사 삼성전자"],
        ["شركة الاتصالات ش.م.م", "الاتصالات ش.م.م", "الاتصالات"],
        ["ООО Ромашка", "Ромашка"],
        ["ＡＣＭＥ　Ｉｎｃ．", "Acme Inc"],
        ["Acme Holdings Co., Ltd.", "ACME HOLDINGS CO LTD", "Acme Holdings Limited"],
    ],
)
def test_legal_form_case_punctuation_accent_and_width_variants_share_a_company_key(spellings):
    keys = {LEX.company_tokens(s) for s in spellings}
    assert len(keys) == 1, keys


def test_a_name_that_is_only_a_legal_form_keeps_it():
    assert LEX.company_tokens("Ltd.") == ("ltd",)


def test_distinct_companies_keep_distinct_keys():
    assert LEX.company_tokens("Acme Inc.") != LEX.company_tokens("Acme Robotics Inc.")


def test_fold_folds_width_case_accents_and_punctuation_but_not_cjk_marks():
    assert fold("ＳＯＣＩÉＴÉ  Générale, S.A.") == "societe generale sa"
    assert fold("ガス") == "ガス"  # the dakuten is part of the word, not an accent


@pytest.mark.parametrize(
    ("website", "domain"),
    [
        ("https://www.acme.com/about", "acme.com"),
        ("eu.shop.acme.com", "acme.com"),
        ("http://acme.co.uk:8080", "acme.co.uk"),
        ("WWW.ACME.CO.JP", "acme.co.jp"),
        ("acme", None),
        ("", None),
    ],
)
def test_domains_are_reduced_to_the_registrable_domain(website, domain):
    assert LEX.domain(website) == domain


def test_free_mail_addresses_say_nothing_about_the_company():
    assert LEX.email_domain("pat.doe@gmail.com") is None
    assert LEX.email_domain("kim@naver.com") is None
    assert LEX.email_domain("pat@sales.acme.de") == "acme.de"


def test_deal_name_key_drops_the_account_words_however_they_are_spelled():
    company = LEX.company_tokens("Acme Inc.")
    noise = LEX.name_noise(fold_words("Acme Inc."), company)
    assert LEX.deal_name_key("ACME, Inc. – Renewal 2025", noise)[0] == "renewal 2025"
    assert LEX.deal_name_key("Acme Corporation - Renewal 2025", noise)[0] == "renewal 2025"
    assert LEX.deal_name_key("Acme", noise)[0] == "acme"  # nothing else left: the name stays


def test_the_numbers_a_deal_name_mentions_are_kept_apart_and_sorted():
    assert LEX.deal_name_key("Renewal 2025 – 40 seats", frozenset())[1] == "2025 40"
    assert LEX.deal_name_key("Expansion", frozenset())[1] == ""


def test_company_names_that_differ_by_a_slip_share_a_blocking_group():
    import numpy as np

    from pipesync.consolidate.features import MISSING, company_groups

    names = np.array(["orgate elektronik", "orggate elektronik", "globex", "rgate elektronik", ""], dtype=object)
    codes = np.array([0, 1, 2, 3, MISSING])
    group = company_groups(names, codes)
    assert group[0] == group[1] == group[3]  # slips at the end, in the middle and at the start
    assert group[2] != group[0] and group[4] == MISSING


def test_a_company_named_with_words_another_system_adds_shares_a_blocking_group():
    import numpy as np

    from pipesync.consolidate.features import company_groups

    names = np.array(["beaconway", "beaconway media", "bellwether"], dtype=object)
    group = company_groups(names, np.array([0, 1, 2]))
    assert group[0] == group[1] != group[2]
