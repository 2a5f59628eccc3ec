"""The labelled stage list behind bench/map_accuracy.py, and the accuracy it pins."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipesync.mapper.evaluation import evaluate, load_label_set
from pipesync.pipeline import load_pipeline

HERE = Path(__file__).parent
PIPELINE = load_pipeline()


@pytest.fixture(scope="module")
def labels():
    return load_label_set(HERE / "stage_labels.yaml")


def test_the_list_is_large_and_multilingual(labels):
    stages = [(s.language, st) for s in labels.setups for st in s.stages]
    assert len(stages) >= 150
    languages = {lang for lang, _ in stages}
    assert {"en", "zh", "zh-Hant", "ja", "ko", "ar", "de", "fr", "es", "pt"} <= languages
    assert {st.expect for _, st in stages} == set(PIPELINE.keys)
    assert {s.system for s in labels.setups} == {"salesforce", "hubspot", "pipedrive", "csv"}


def test_proposals_reach_the_accuracy_target(labels):
    result = evaluate(labels, PIPELINE)
    assert result.accuracy >= 0.95, [m.model_dump() for m in result.misses]
    # the errors that would pass silently stay rare
    assert result.accepted_wrong <= 0.03 * result.total
