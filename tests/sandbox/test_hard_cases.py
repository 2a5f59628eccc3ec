"""The generator's hard cases: every class present, labelled, and the same for the same seed."""

from __future__ import annotations

from collections import Counter

from pipesync_sandbox.generator import generate
from pipesync_sandbox.hard_cases import FAMILIES


def tags(world):
    return Counter(a for data in world.systems.values() for d in data.deals for a in d.anomalies)


def test_a_world_with_hard_cases_holds_every_class_labelled_and_is_reproducible():
    world = generate(5, 6_000, hard_cases=True)
    found = tags(world)
    assert {f"hard_negative:{f}" for f in FAMILIES} | {"dangling_ref", "sf15_ref", "cross_script"} <= set(found)
    assert tags(generate(5, 6_000, hard_cases=True)) == found
    assert not any(t.startswith("hard_negative") for t in tags(generate(5, 6_000)))


def test_a_hard_negative_pair_differs_only_by_its_token_not_by_its_account():
    world = generate(5, 6_000, hard_cases=True)
    deals = [d for data in world.systems.values() for d in data.deals if "hard_negative:year" in d.anomalies]
    truths = {d.truth_id for d in deals}
    assert len(truths) >= 2 and all(d.amount is None or d.amount > 0 for d in deals)


def test_cross_script_customers_are_held_natively_in_salesforce_and_in_latin_letters_elsewhere():
    world = generate(5, 6_000, hard_cases=True)
    names = {(s, d.name.isascii()) for s, data in world.systems.items() for d in data.deals
             if "cross_script" in d.anomalies}
    assert ("salesforce", False) in names and ("hubspot", True) in names
    assert ("hubspot", False) not in names
