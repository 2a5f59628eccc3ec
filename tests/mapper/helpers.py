"""Building discoveries the way adapters report them, for the mapper's tests."""

from __future__ import annotations

from pipesync.model import DiscoveredPipeline, DiscoveredStage, Discovery


def stage(label: str, order: int | None = None, probability: float | None = None, *, id: str | None = None,
          closed: bool | None = None, won: bool | None = None) -> DiscoveredStage:
    return DiscoveredStage(id=id or label, label=label, order=order, probability=probability,
                           is_closed=closed, is_won=won)


def ordered(*specs: tuple, closed: bool | None = False) -> list[DiscoveredStage]:
    """Open CRM stages in pipeline order, from (label, probability) pairs."""
    return [stage(label, n, p, closed=closed) for n, (label, p) in enumerate(specs)]


def discovery(*pipelines: tuple[str, list[DiscoveredStage]], source: str = "crm") -> Discovery:
    return Discovery(source=source, pipelines=[
        DiscoveredPipeline(id=pid, label=pid, stages=stages) for pid, stages in pipelines
    ])


def labels_only(*labels: str, pipeline: str = "*") -> Discovery:
    """What a CSV file discovers: stage values, no order, no flags, no probability."""
    return discovery((pipeline, [stage(label) for label in labels]), source="sheet")
