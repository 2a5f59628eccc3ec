"""The rules a migration follows, without a CRM: where a deal lands, how an interrupted create is
found again, where a target record sits on the shared pipeline."""

from __future__ import annotations

from pipesync.adapters.changes import created_keys, origin_tag
from pipesync.mapping import Mapping, PipelineRule, StageRule
from pipesync.migrate.reconcile import UNPLACED, _shared_stage
from pipesync.pipeline import load_pipeline
from pipesync.pushback.planner import landing_fields

SHARED = load_pipeline()
RULE = PipelineRule(id="default", stages=[
    StageRule(id="s1", stage="prospecting"), StageRule(id="s2", stage="discovery"), StageRule(id="s3", stage="discovery"),
    StageRule(id="won", stage="closed_won"), StageRule(id="lost", stage="closed_lost")], writes={"discovery": "s3"})


def test_a_shared_stage_lands_in_the_one_stage_mapped_to_it_or_the_writes_entry():
    assert landing_fields(RULE, SHARED, "prospecting", frozenset()) == {"source_stage": "s1"}
    assert landing_fields(RULE, SHARED, "discovery", frozenset()) == {"source_stage": "s3"}


def test_a_shared_stage_nothing_maps_to_cannot_land_unless_the_crm_closes_by_status():
    assert landing_fields(RULE, SHARED, "negotiation", frozenset()) is None
    no_lost = PipelineRule(id="p", stages=[StageRule(id="a", stage="prospecting")])
    assert landing_fields(no_lost, SHARED, "closed_lost", frozenset({"status"})) == {"status": "lost"}
    assert landing_fields(no_lost, SHARED, "closed_lost", frozenset()) is None


def test_an_interrupted_create_is_found_by_the_source_key_its_origin_tag_carries():
    tagged = [("901", origin_tag(key="hubspot:1")), ("902", origin_tag(key="hubspot:2")), ("903", origin_tag()),
              ("904", "someone's own text hubspot:3"), ("905", None)]
    assert created_keys(tagged, ["hubspot:1", "hubspot:3", "hubspot:9"]) == {"hubspot:1": "901"}


def test_a_target_record_is_placed_on_the_shared_pipeline_by_the_targets_mapping():
    mapping = Mapping(pipelines=[RULE])
    assert _shared_stage(mapping, SHARED, {"pipeline": "default", "source_stage": "s2"}) == "discovery"
    assert _shared_stage(mapping, SHARED, {"pipeline": "default", "source_stage": "zz"}) == UNPLACED
    # a CRM closing by status: the status decides
    assert _shared_stage(mapping, SHARED, {"pipeline": "default", "source_stage": "s1", "status": "lost"}) == "closed_lost"
