"""One vendor sandbox running on loopback, with a source config pointing an adapter at it.

Every vendor store takes the same mutations (:class:`pipesync_sandbox.mutations.DealMutations`:
touch, delete, merge); :class:`SystemEnv` adds the live ids from the generator's ground truth.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipesync.adapters import open_adapter
from pipesync.adapters.base import Adapter
from pipesync.config import Settings, SourceConfig
from pipesync_sandbox.faults import Faults
from pipesync_sandbox.mutations import DealMutations
from pipesync_sandbox.sandboxes import RunningSandbox, Sandboxes
from pipesync_sandbox.sources import sandbox_source
from pipesync_sandbox.world import SYSTEMS, World

__all__ = ["SYSTEMS", "SystemEnv", "running"]


@dataclass
class SystemEnv:
    sandbox: RunningSandbox
    source: SourceConfig

    @property
    def system(self) -> str:
        return self.sandbox.system

    @property
    def store(self) -> DealMutations:
        return self.sandbox.store

    def adapter(self) -> Adapter:
        return open_adapter(self.source, Settings())

    def seeded_live_ids(self) -> set[str]:
        """Ground truth: the generator's deals that are neither deleted nor merged away."""
        return {str(d.id) for d in self.sandbox.data.deals if not d.is_deleted and not d.merged_into}


@contextmanager
def running(system: str, world: World, tmp: Path, *, faults: Faults | None = None, oauth: bool = False,
            options: dict[str, Any] | None = None, certificate: str | None = None) -> Iterator[SystemEnv]:
    """The system's sandbox serving its part of ``world``; ``oauth`` picks the refreshable auth mode,
    ``certificate`` serves it over TLS with that certificate (``pipesync_sandbox.server.CERTIFICATES``)."""
    tls = {system: certificate} if certificate else None
    with Sandboxes(world, systems=(system,), faults={system: faults or Faults()}, tls=tls) as boxes:
        sandbox = boxes[system]
        yield SystemEnv(sandbox, sandbox_source(sandbox, tmp / "secrets", oauth=oauth, options=options))
