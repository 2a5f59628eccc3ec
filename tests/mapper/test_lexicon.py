"""The lexicon: label normalisation, term matching, and the file's own validation."""

from __future__ import annotations

import pytest

from pipesync.errors import FileErrors
from pipesync.mapper.lexicon import load_lexicon, normalize
from pipesync.pipeline import load_pipeline


@pytest.fixture(scope="module")
def lexicon():
    return load_lexicon(load_pipeline())


@pytest.mark.parametrize(("label", "normalised"), [
    ("1. Proposal/Price Quote (75%)", "proposal price quote"),
    ("03 - Negotiation", "negotiation"),
    ("ＰＲＯＰＯＳＡＬ", "proposal"),  # full-width, as some CJK keyboards type Latin letters
    ("Négociation", "negociation"),
    ("商務談判", "商务谈判"),  # traditional folds to simplified
    ("التَّفَاوُض", "تفاوض"),  # harakat and the definite article dropped
    ("Qualifizierung ✔", "qualifizierung"),
])
def test_labels_are_normalised_before_matching(label, normalised):
    assert normalize(label) == normalised


def test_filler_words_name_no_stage(lexicon):
    assert lexicon.normalize("Stage 3: Demo") == "demo"
    assert lexicon.normalize("谈判阶段") == "谈判"
    assert lexicon.normalize("Etapa 2 - Propuesta") == "propuesta"


@pytest.mark.parametrize(("label", "key"), [
    ("方案报价", "proposal"), ("提案", "proposal"), ("商务谈判", "negotiation"), ("협상", "negotiation"),
    ("التفاوض", "negotiation"), ("Angebot", "proposal"), ("Propuesta", "proposal"), ("Proposta", "proposal"),
    ("Devis", "proposal"), ("見積", "proposal"), ("受注", "closed_won"), ("失注", "closed_lost"),
    ("赢单", "closed_won"), ("輸單", "closed_lost"), ("보류", "on_hold"), ("Zurückgestellt", "on_hold"),
    ("Bedarfsanalyse", "discovery"), ("Calificación", "qualification"), ("Prospecção", "prospecting"),
])
def test_common_stage_names_in_every_language_are_known(lexicon, label, key):
    hits = lexicon.match(label)
    assert [h.kind for h in hits] == ["exact"]
    assert hits[0].term.keys == (key,)


def test_a_term_inside_a_label_is_found_as_words(lexicon):
    hits = lexicon.match("Proposal sent to customer")
    assert [(h.kind, h.term.keys) for h in hits] == [("word", ("proposal",))]


def test_a_longer_term_hides_the_shorter_ones_inside_it(lexicon):
    # "unqualified" is a lost term; neither "qualified" inside it nor the word "lead" beside it wins
    keys = {h.term.keys for h in lexicon.match("Unqualified lead")}
    assert ("closed_lost",) in keys
    assert ("qualification",) not in keys


def test_german_compounds_are_read_by_their_parts(lexicon):
    hits = lexicon.match("Vertragsverhandlungsrunde")
    assert hits and hits[0].kind == "compound" and hits[0].term.keys == ("negotiation",)


def test_typos_are_matched_fuzzily(lexicon):
    hits = lexicon.match("Negotation")
    assert hits[0].kind == "fuzzy" and hits[0].term.keys == ("negotiation",)
    assert hits[0].score >= 86


def test_short_words_are_not_matched_inside_others(lexicon):
    # "won" must not be read inside "wonderful", nor "lead" inside "leadership"
    assert lexicon.match("Wonderful leadership") == []


def test_korean_spacing_does_not_matter(lexicon):
    # "영업 기회 검증" and "영업기회 검증" are one label to a Korean reader
    for label in ("영업기회 검증", "영업 기회검증"):
        (hit,) = lexicon.match(label)
        assert hit.term.keys == ("qualification",)


def test_span_terms_name_a_stretch_of_the_pipeline(lexicon):
    (hit,) = lexicon.match("Contact made")
    assert hit.is_span and hit.term.keys == ("prospecting", "qualification", "discovery")


def test_a_term_standing_under_two_stages_is_refused(tmp_path):
    path = tmp_path / "lexicon.yaml"
    path.write_text("stages:\n  proposal: {en: [Offer]}\n  negotiation: {en: [OFFER]}\n", encoding="utf-8")
    with pytest.raises(FileErrors, match="'OFFER' stands under both proposal and negotiation"):
        load_lexicon(path=path)


def test_weak_terms_name_a_stage_of_the_lexicon(tmp_path):
    path = tmp_path / "lexicon.yaml"
    path.write_text("stages:\n  on_hold: {en: [Paused]}\nweak:\n  parked: {en: [Waiting]}\n", encoding="utf-8")
    with pytest.raises(FileErrors, match="weak terms: parked is not a stage of this lexicon"):
        load_lexicon(path=path)
    path.write_text("stages:\n  on_hold: {en: [Waiting]}\nweak:\n  on_hold: {en: [waiting]}\n", encoding="utf-8")
    with pytest.raises(FileErrors, match="'waiting' stands under both on_hold and on_hold \\(weak\\)"):
        load_lexicon(path=path)
    assert load_lexicon().match("Waiting")[0].term.weak


def test_a_custom_shared_pipeline_lends_its_stage_names(tmp_path):
    from pipesync.model import SharedPipeline

    custom = SharedPipeline.model_validate({"stages": [
        {"key": "demo_booked", "label": "Demo booked", "category": "open", "probability": 0.3},
        {"key": "closed_won", "label": "Closed won", "category": "won", "probability": 1},
        {"key": "closed_lost", "label": "Closed lost", "category": "lost", "probability": 0},
    ]})
    lexicon = load_lexicon(custom)
    assert lexicon.match("Demo Booked")[0].term.keys == ("demo_booked",)
    # terms for stages the custom pipeline lacks are not offered
    assert all(set(t.keys) <= {"demo_booked", "closed_won", "closed_lost"} for t in lexicon.terms)
