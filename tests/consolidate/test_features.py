"""Match keys as columns: computed once per distinct value, yet exactly as if computed per deal."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from rapidfuzz import fuzz, process

from pipesync.consolidate.features import MISSING, compute_features
from pipesync.consolidate.keys import fold, fold_words, load_lexicon
from pipesync.consolidate.scoring import _Similarities
from tests.consolidate.conftest import make_deal, records

LEX = load_lexicon()
ACCOUNTS = ["Acme Inc.", "ACME, INC", "Globex GmbH", "トヨタ株式会社", None]
WEBSITES = ["https://www.acme.com", "acme.com", "globex.de", None]
CONTACTS = [[], ["pat@acme.com"], ["pat@acme.com", "lee@gmail.com"], ["x@globex.de"]]
NAMES = ["Renewal 2025", "Acme – Expansion", "New Business", "Renewal 2026", ""]

deal_fields = st.fixed_dictionaries({
    "account_name": st.sampled_from(ACCOUNTS),
    "account_domain": st.sampled_from(WEBSITES),
    "contact_emails": st.sampled_from(CONTACTS),
    "name": st.sampled_from(NAMES[:-1]),
    "owner_email": st.sampled_from(["Jo@Seller.example", "jo@seller.example ", None]),
})


@given(st.text())
def test_fold_is_its_words_joined_by_single_spaces(text):
    assert fold(text) == " ".join(fold_words(text))
    assert fold(text) == fold(fold(text))


@settings(max_examples=40, deadline=None)
@given(st.lists(deal_fields, min_size=1, max_size=12))
def test_codes_are_equal_exactly_when_the_keys_are_equal_and_follow_first_appearance(deals):
    features = compute_features(records(*(make_deal("hubspot", str(i), **d) for i, d in enumerate(deals))), LEX)
    for key in ("company", "name", "owner", "account_domain"):
        codes = features.codes[key]
        known = codes[codes != MISSING]
        # numbered 0, 1, 2 … in order of first appearance
        assert list(dict.fromkeys(known.tolist())) == list(range(len(set(known.tolist()))))
    text, codes = features.text["company"], features.codes["company"]
    for i in range(features.n):
        for j in range(features.n):
            assert (codes[i] == codes[j]) == (text[i] == text[j])
    owners = [d["owner_email"].strip().lower() if d["owner_email"] else None for d in deals]
    for i in range(features.n):
        for j in range(features.n):
            same = owners[i] is not None and owners[i] == owners[j]
            assert (features.codes["owner"][i] == features.codes["owner"][j] != MISSING) == same


def test_similarities_of_repeated_name_pairs_are_those_of_rapidfuzz_pair_by_pair():
    deals = [make_deal("hubspot", str(i), name=NAMES[i % len(NAMES)], account_name="Acme Inc.") for i in range(20)]
    features = compute_features(records(*deals), LEX)
    rng = np.random.default_rng(7)
    left, right = rng.integers(0, 20, 200), rng.integers(0, 20, 200)
    similarities = _Similarities(features, left, right)
    for scorer, function in (("token_set_ratio", fuzz.token_set_ratio), ("partial_ratio", fuzz.partial_ratio)):
        got = similarities.get("name", scorer, np.arange(200))
        text, known = features.text["name"], features.is_known("name")
        expected = process.cpdist(text[left], text[right], scorer=function)
        expected[~(known[left] & known[right])] = 0.0
        assert np.allclose(got, expected)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 5), st.sampled_from([1.0, 2.5, np.nan, -3.0]), st.integers(0, 3)), max_size=40),
    st.sampled_from([1, 2**58]),  # block ids packed with the ranks into one integer, or too far apart for that
)
def test_blocks_sort_by_block_then_each_sort_key_then_record_order_as_lexsort_does(rows, spread):
    from pipesync.consolidate.blocking import _dense_rank, _sort_order

    block = np.array([r[0] for r in rows], dtype=np.int64) * spread + 730_000  # e.g. close dates as day numbers
    first = np.array([r[1] for r in rows], dtype=np.float64)
    second = np.array([r[2] for r in rows], dtype=np.float64)
    expected = np.lexsort((np.arange(len(rows)), second, first, block))
    assert np.array_equal(_sort_order(block, [_dense_rank(first), _dense_rank(second)]), expected)


def test_names_stating_the_same_phase_seats_and_region_share_one_token_key_a_year_alone_none():
    deals = [make_deal("hubspot", "1", name="Acme - Platform Implementation Phase IV EMEA"),
             make_deal("salesforce", "2", name="Acme EMEA Platform Implementation phase 4"),
             make_deal("pipedrive", "3", name="Acme Platform Implementation Phase 3 EMEA"),
             make_deal("hubspot", "4", name="Acme - Renewal FY25"),
             make_deal("pipedrive", "5", name="Acme - New Business")]
    stated = compute_features(records(*deals), load_lexicon()).codes["name_tokens"]
    assert stated[0] == stated[1] != stated[2]
    assert stated[3] == stated[4] == MISSING
