"""Fixtures for tests that need seeded worlds or running sandboxes.

``small_world`` is one 10,000-deal world per session (generation is
deterministic, so sharing it is safe as long as tests do not mutate it);
``sandboxes`` serves all three CRMs from a smaller world, fresh per test
module so faults switched on by one module never leak into another.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pipesync_sandbox.generator import generate
from pipesync_sandbox.sandboxes import Sandboxes
from pipesync_sandbox.world import World


@pytest.fixture(scope="session")
def small_world() -> World:
    return generate(seed=11, size=10_000)


@pytest.fixture(scope="module")
def sandboxes() -> Iterator[Sandboxes]:
    with Sandboxes(seed=12, size=2_000) as boxes:
        yield boxes
