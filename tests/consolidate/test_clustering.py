"""Clustering guards: strongest links first, no chaining through a weak link."""

from __future__ import annotations

import numpy as np

from pipesync.consolidate.clustering import HARD, cluster
from pipesync.consolidate.rules import Clustering

SETTINGS = Clustering(match_probability=0.9, same_source_probability=0.99, cannot_link_probability=0.05,
                      max_cluster_size=4)
NO_HARD = (np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64))


def groups(n, sources, pairs, hard=NO_HARD, settings=SETTINGS):
    left = np.array([p[0] for p in pairs], dtype=np.int64)
    right = np.array([p[1] for p in pairs], dtype=np.int64)
    probability = np.array([p[2] for p in pairs], dtype=np.float64)
    found_by = np.zeros(len(pairs), dtype=np.int64)
    result = cluster(n, np.array(sources), hard, left, right, probability, found_by, settings)
    return {tuple(result.members(c)) for c in range(len(result))}, result


def test_linked_records_of_different_sources_form_one_cluster():
    found, result = groups(3, [0, 1, 2], [(0, 1, 0.99), (1, 2, 0.95)])
    assert found == {(0, 1, 2)}
    assert result.confidence[0] == 0.95  # the weakest member's best link


def test_a_weak_link_does_not_chain_two_clearly_different_records():
    # 0≈1 and 1≈2, but 0 and 2 were compared and are clearly different deals
    found, _ = groups(3, [0, 1, 2], [(0, 1, 0.99), (1, 2, 0.93), (0, 2, 0.01)])
    assert found == {(0, 1), (2,)}


def test_the_strongest_link_wins_the_contested_record():
    # record 1 (source B) matches 0 and 2, both source A: it joins the stronger
    found, _ = groups(3, [0, 1, 0], [(0, 1, 0.93), (1, 2, 0.999)])
    assert found == {(0,), (1, 2)}


def test_two_records_of_one_source_meet_only_through_a_direct_strong_link():
    # 0 and 2 are both source A, linked only through 1
    found, _ = groups(3, [0, 1, 0], [(0, 1, 0.99), (1, 2, 0.99)])
    assert found == {(0, 1), (2,)}
    # … unless they are a proven in-system duplicate
    found, _ = groups(3, [0, 1, 0], [(0, 1, 0.99), (1, 2, 0.99), (0, 2, 0.999)])
    assert found == {(0, 1, 2)}


def test_clusters_do_not_grow_beyond_the_maximum_size():
    chain = [(i, i + 1, 0.99) for i in range(5)]
    found, _ = groups(6, [0, 1, 2, 3, 4, 5], chain)
    assert max(len(g) for g in found) <= SETTINGS.max_cluster_size
    assert sum(len(g) for g in found) == 6


def test_hard_links_join_outright_and_are_reported_as_such():
    hard = (np.array([0]), np.array([1]))
    found, result = groups(2, [0, 0], [(0, 1, 0.01)], hard=hard)
    assert found == {(0, 1)}
    assert result.kind[0] == HARD and result.partner[0] == 1 and result.probability[0] == 1.0


def test_records_without_links_stay_alone():
    found, result = groups(3, [0, 1, 2], [(0, 1, 0.5)])
    assert found == {(0,), (1,), (2,)}
    assert result.partner.tolist() == [-1, -1, -1]
    assert result.confidence.tolist() == [1.0, 1.0, 1.0]
