"""Every API adapter counts its requests and the 429s it met, which sync records per source and `pipesync run` logs."""

from __future__ import annotations

import pytest

from pipesync_sandbox.faults import Faults
from pipesync_sandbox.generator import generate
from tests.adapters.sandbox_env import SYSTEMS, running


@pytest.fixture(scope="module")
def world():
    return generate(11, 300)


@pytest.mark.parametrize("system", SYSTEMS)
def test_requests_and_rate_limit_refusals_are_counted(system: str, world, tmp_path) -> None:
    faults = Faults(burst_429_every=3, burst_429_len=1)
    with running(system, world, tmp_path, faults=faults, options={"retry_base_s": 0.01, "retry_max_s": 1}) as env:
        with env.adapter() as adapter:
            pages = list(adapter.read_deals(None))
            assert pages
            assert adapter.calls >= len(pages) + adapter.rate_limited and adapter.rate_limited > 0
