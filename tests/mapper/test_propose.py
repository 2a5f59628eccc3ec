"""The proposal engine: every discovered stage gets a shared stage, a confidence and reasons — or
stays undecided with guesses, never mapped with false confidence."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipesync.mapper.propose import accept_confident, propose_mapping
from pipesync.mapping import Mapping
from pipesync.pipeline import load_pipeline

from tests.mapper.helpers import discovery, labels_only, ordered, stage

PIPELINE = load_pipeline()


def only(proposal):
    (_, s), = list(proposal.stages())
    return s


def by_label(proposal):
    return {s.label: s for _, s in proposal.stages()}


@pytest.mark.parametrize(("label", "key", "lang"), [
    ("方案报价", "proposal", "zh"), ("提案", "proposal", "zh"), ("商务谈判", "negotiation", "zh"),
    ("商務談判", "negotiation", "zh"), ("협상", "negotiation", "ko"), ("التفاوض", "negotiation", "ar"),
    ("Angebot", "proposal", "de"), ("Propuesta", "proposal", "es"), ("Négociation", "negotiation", "fr"),
    ("Negociação", "negotiation", "pt"), ("見積提出", "proposal", "ja"), ("Closed Won", "closed_won", "en"),
])
def test_a_label_is_read_in_its_language(label, key, lang):
    s = only(propose_mapping(labels_only(label), PIPELINE))
    assert (s.stage, s.accepted) == (key, True)
    assert s.confidence >= 0.9
    assert any(f"({lang}:" in r or lang == "en" for r in s.reasons)


def test_reasons_name_the_stage_in_english_and_the_term_found():
    s = only(propose_mapping(labels_only("Propuesta"), PIPELINE))
    assert s.reasons[0] == "label ≈ 'Proposal' (es: Propuesta)"


def test_closed_won_flags_decide_whatever_the_label_says():
    d = discovery(("p", [stage("Booked - Finance", 5, 1.0, closed=True, won=True)]))
    s = only(propose_mapping(d, PIPELINE))
    assert (s.stage, s.confidence, s.reasons[0]) == ("closed_won", 0.99, "closed+won flag")


def test_a_closed_stage_without_won_flag_is_lost():
    s = only(propose_mapping(discovery(("p", [stage("Disqualified", 6, 0.0, closed=True, won=False)])), PIPELINE))
    assert s.stage == "closed_lost" and s.accepted


def test_hubspot_closed_stages_are_told_apart_by_probability():
    d = discovery(("default", [stage("Done", 5, 1.0, closed=True), stage("Gone", 6, 0.0, closed=True)]))
    got = by_label(propose_mapping(d, PIPELINE))
    assert (got["Done"].stage, got["Gone"].stage) == ("closed_won", "closed_lost")
    assert got["Done"].reasons[0] == "closed flag, probability 1.0"


def test_flags_and_label_that_disagree_go_to_review():
    s = only(propose_mapping(discovery(("p", [stage("Closed Lost", 6, 1.0, closed=True, won=True)])), PIPELINE))
    assert s.stage == "closed_won"
    assert not s.accepted
    assert "check this stage" in s.reasons[-1]


def test_an_open_stage_is_never_proposed_as_won_or_lost():
    # Pipedrive: won is a deal status, a stage named so is still an open stage
    d = discovery(("p", ordered(("Qualified", 0.2), ("Won", 0.9))))
    s = by_label(propose_mapping(d, PIPELINE))["Won"]
    assert s.stage is None and not s.accepted
    assert "flags the stage open" in s.reasons[0]


def test_a_label_matching_nothing_is_left_undecided_with_guesses():
    d = discovery(("p", ordered(("Lead In", 0.1), ("Frobnicate", 0.6), ("Negotiation", 0.8))))
    s = by_label(propose_mapping(d, PIPELINE))["Frobnicate"]
    assert (s.stage, s.accepted, s.confidence) == (None, False, 0.0)
    assert {g.stage for g in s.guesses} >= {"proposal", "negotiation"}
    assert all(g.confidence <= 0.6 for g in s.guesses)
    assert any("probability 0.6 between proposal and negotiation" in r for g in s.guesses for r in g.reasons)


def test_a_label_naming_two_stages_goes_to_review_with_both():
    d = discovery(("p", ordered(("Lead", 0.1), ("Proposal & Negotiation", 0.7))))
    s = by_label(propose_mapping(d, PIPELINE))["Proposal & Negotiation"]
    assert s.stage in {"proposal", "negotiation"} and not s.accepted
    assert {s.stage, *(g.stage for g in s.guesses)} >= {"proposal", "negotiation"}


def test_an_outcome_word_outweighs_a_stage_name():
    s = only(propose_mapping(labels_only("Lost after proposal"), PIPELINE))
    assert s.stage == "closed_lost" and s.accepted


def test_probability_that_agrees_raises_confidence_and_says_so():
    d = discovery(("p", ordered(("Lead", 0.1), ("Proposal sent to client", 0.5), ("Negotiation", 0.8))))
    s = by_label(propose_mapping(d, PIPELINE))["Proposal sent to client"]
    assert s.stage == "proposal"
    assert "probability 0.5 ≈ proposal agrees" in s.reasons


def test_probabilities_all_alike_are_ignored():
    # Pipedrive's untouched default: 100% on every stage says nothing
    d = discovery(("p", ordered(("Lead", 1.0), ("Proposal made", 1.0), ("Frobnicate", 1.0))))
    got = by_label(propose_mapping(d, PIPELINE))
    assert not any("probability" in r for s in got.values() for r in s.reasons)
    assert all("probability" not in r for g in got["Frobnicate"].guesses for r in g.reasons)


def test_a_span_term_is_placed_by_the_stages_around_it():
    # "Contact made" is a first step for one team and qualification for another: its neighbours decide
    d = discovery(("p", ordered(("Lead In", 0.1), ("Contact Made", 0.2), ("Needs Defined", 0.4), ("Proposal Made", 0.6))))
    s = by_label(propose_mapping(d, PIPELINE))["Contact Made"]
    assert (s.stage, s.accepted) == ("qualification", True)
    assert "'Lead In' (prospecting) before it and 'Needs Defined' (discovery) after it" in s.reasons[-1]

    d = discovery(("p", ordered(("Contact Made", 0.1), ("Qualified", 0.2), ("Demo", 0.4))))
    assert by_label(propose_mapping(d, PIPELINE))["Contact Made"].stage == "prospecting"


def test_a_span_term_is_placed_by_its_probability_read_against_its_neighbours():
    # Sources weigh stages their own way: HubSpot's default pipeline opens at 0.2 with "Qualified To Buy" at 0.4
    d = discovery(("p", ordered(("Appointment Scheduled", 0.2), ("Qualified To Buy", 0.4), ("Presentation Scheduled", 0.6))))
    assert by_label(propose_mapping(d, PIPELINE))["Appointment Scheduled"].stage == "prospecting"
    # a first contact barely above the lead stage's probability is still prospecting, not the stage halfway
    d = discovery(("p", ordered(("New lead", 0.05), ("Contact made", 0.10), ("Needs analysis", 0.35), ("Quote", 0.5))))
    s = by_label(propose_mapping(d, PIPELINE))["Contact made"]
    assert (s.stage, s.accepted) == ("prospecting", True)
    assert "its probability 0.1 against theirs" in s.reasons[-1]


def test_the_stages_named_around_a_span_term_bound_it():
    # before a qualification stage, a first contact cannot be discovery, whatever its position says
    d = discovery(("p", ordered(("Lead", None), ("Contacted", None), ("Qualified", None), ("Demo", None))))
    s = by_label(propose_mapping(d, PIPELINE))["Contacted"]
    assert s.stage == "prospecting" and not s.accepted  # halfway between the two: a person decides


def test_a_meeting_booked_is_the_opening_step_or_discovery_never_qualification():
    d = discovery(("p", ordered(("Cold lead", 0.05), ("Meeting booked", 0.25), ("Needs analysis", 0.35))))
    assert by_label(propose_mapping(d, PIPELINE))["Meeting booked"].stage == "discovery"


def test_a_label_read_by_resemblance_anchors_nothing():
    # "Validación" resembles the French "Validation" (negotiation): too weak a reading to place its neighbour
    d = discovery(("p", ordered(("Lead", 0.05), ("Contact made", 0.10), ("Validación", 0.2), ("Needs analysis", 0.35))))
    s = by_label(propose_mapping(d, PIPELINE))["Contact made"]
    assert s.stage == "prospecting"
    assert "'Needs analysis' (discovery) after it" in s.reasons[-1]


def test_waiting_parks_a_deal_only_when_nothing_says_what_it_waits_for():
    assert only(propose_mapping(labels_only("Waiting"), PIPELINE)).stage == "on_hold"
    assert only(propose_mapping(labels_only("Esperando firma"), PIPELINE)).stage == "negotiation"
    assert only(propose_mapping(labels_only("Aguardando pedido de compra"), PIPELINE)).stage == "negotiation"
    # waiting for something the lexicon does not know: a guess for review, not a parked deal
    s = only(propose_mapping(labels_only("Frobnication pending"), PIPELINE))
    assert (s.stage, s.accepted) == ("on_hold", False)


def test_a_word_resembling_a_term_is_a_hint_that_agreement_does_not_make_sure():
    # "decisiones" resembles "Decision"; probability and position agreeing do not make the label understood
    d = discovery(("p", ordered(("Lead", 0.1), ("Demo", 0.4), ("Quote", 0.6), ("Frobnicar decisiones", 0.8))))
    s = by_label(propose_mapping(d, PIPELINE))["Frobnicar decisiones"]
    assert s.stage == "negotiation" and not s.accepted


def test_a_file_that_numbers_its_stages_gives_them_an_order():
    numbered = by_label(propose_mapping(labels_only("1. Lead", "2. Qualified", "3. Meeting booked", "4. Proposal"), PIPELINE))
    s = numbered["3. Meeting booked"]
    assert (s.stage, s.accepted) == ("discovery", True)
    assert "'2. Qualified' (qualification) before it" in s.reasons[-1]
    # the same stages unnumbered: the order they first appear in is the file's row order, not the pipeline's
    s = by_label(propose_mapping(labels_only("Lead", "Qualified", "Meeting booked", "Proposal"), PIPELINE))["Meeting booked"]
    assert not s.accepted


def test_a_span_term_with_nothing_to_place_it_is_a_guess_for_review():
    s = only(propose_mapping(labels_only("Contacted"), PIPELINE))
    assert s.stage is not None and not s.accepted


def test_position_is_reported_for_ordered_stages_only():
    d = discovery(("p", ordered(("Lead", 0.1), ("Demo", 0.3), ("Quote", 0.5), ("Negotiation", 0.8))))
    assert "position 2 of 4 fits" in by_label(propose_mapping(d, PIPELINE))["Demo"].reasons
    assert not any("position" in r for r in only(propose_mapping(labels_only("Demo"), PIPELINE)).reasons)


def test_decisions_in_the_existing_file_are_kept():
    existing = Mapping.model_validate({"pipelines": [{"id": "*", "stages": [{"label": "Demo", "stage": "qualification"}]}]})
    s = only(propose_mapping(labels_only("Demo"), PIPELINE, existing))
    assert (s.stage, s.origin, s.accepted, s.confidence) == ("qualification", "kept", True, 1.0)


def test_an_undecided_stage_in_the_file_is_proposed_again():
    existing = Mapping.model_validate({"pipelines": [{"id": "*", "stages": [{"label": "Demo", "stage": None}]}]})
    s = only(propose_mapping(labels_only("Demo"), PIPELINE, existing))
    assert (s.stage, s.origin) == ("discovery", "proposed")


def test_a_label_mapped_in_another_pipeline_lends_its_mapping():
    existing = Mapping.model_validate({"pipelines": [
        {"id": "emea", "label": "EMEA", "stages": [{"label": "Frobnicate", "stage": "discovery"}]},
    ]})
    d = discovery(("emea", [stage("Frobnicate", 0)]), ("apac", [stage("Frobnicate", 0)]))
    got = {p.id: s for p, s in propose_mapping(d, PIPELINE, existing).stages()}
    assert got["emea"].origin == "kept"
    assert (got["apac"].stage, got["apac"].accepted) == ("discovery", True)
    assert got["apac"].reasons == ["same label is mapped to discovery in pipeline 'EMEA'"]


def test_the_threshold_decides_what_is_accepted():
    p = propose_mapping(labels_only("Negociation", "Propsal"), PIPELINE, threshold=0.99)
    assert all(not s.accepted for _, s in p.stages())
    accept_confident(p, 0.5)
    assert all(s.accepted for _, s in p.stages())


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=30), min_size=1, max_size=5, unique=True),
       st.lists(st.one_of(st.none(), st.floats(0, 1)), min_size=5, max_size=5))
def test_any_labels_get_a_known_stage_or_none_and_a_confidence_in_range(labels, probabilities):
    d = discovery(("p", [stage(l, n, probabilities[n], id=f"s{n}") for n, l in enumerate(labels)]))
    for _, s in propose_mapping(d, PIPELINE).stages():
        assert s.stage is None or s.stage in PIPELINE.keys
        assert 0.0 <= s.confidence <= 1.0
        assert s.accepted == (s.stage is not None and s.confidence >= 0.8)
        assert all(g.stage in PIPELINE.keys and g.stage != s.stage for g in s.guesses)
