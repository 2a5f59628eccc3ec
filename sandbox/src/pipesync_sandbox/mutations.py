"""What tests, benchmarks and demos do to a running sandbox's deals, in the same words for every vendor.

Each vendor store (:class:`~pipesync_sandbox.salesforce.SalesforceStore`,
:class:`~pipesync_sandbox.hubspot.HubSpotStore`,
:class:`~pipesync_sandbox.pipedrive.PipedriveStore`) implements
:class:`DealMutations` the way a user's action in that CRM would land: the
vendor's own modified stamps, change history, deletion and merge semantics.
Deal ids are the vendor's, as strings: what an adapter reports as ``source_id``.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class DealMutations(Protocol):
    def touch_deals(self, fraction: float, *, seed: int = 0) -> list[str]:
        """Edit a deterministic ``fraction`` of the deals a user would edit, as users do; the ids changed.

        Salesforce edits its live OPEN opportunities (stage, amount or close date); HubSpot and
        Pipedrive any live deal.
        """
        ...

    def delete_deal(self, deal_id: str) -> None:
        """Delete one live deal as a user would (recycle bin, archive, soft delete: the vendor's way)."""
        ...

    def merge_deals(self, survivor_id: str, merged_id: str) -> str:
        """Merge ``merged_id`` into ``survivor_id``; the id of the deal that survives (HubSpot makes a new one)."""
        ...
