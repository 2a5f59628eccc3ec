from __future__ import annotations

import pytest

from tests.metrics.builders import DealRow, write_warehouse


def quarter_deals() -> list[DealRow]:
    """Eight deals around Q4 2026 (today is 2026-11-22), plus two that must not count.

    Every expected figure in test_compute.py is worked out by hand from this list.
    """
    return [
        # open, in proposal since 11-01 (no stage_entered_at: taken from the history)
        DealRow("salesforce:D1", "proposal", "open", 10_000, "2026-08-01", last_activity="2026-11-20",
                history=[("prospecting", "2026-08-01"), ("qualification", "2026-09-01"), ("proposal", "2026-11-01")]),
        # open, in qualification since 10-05: stuck (SLA 30) and stale (untouched since 10-06)
        DealRow("hubspot:D2", "qualification", "open", 20_000, "2026-10-05", owner="bob@example.com",
                stage_entered="2026-10-05", last_activity="2026-10-06", updated="2026-10-06",
                history=[("qualification", "2026-10-05")]),
        # won in Q4 after 60 days
        DealRow("salesforce:D3", "closed_won", "won", 30_000, "2026-09-01", close="2026-10-31", lead_source="Inbound",
                history=[("prospecting", "2026-09-01"), ("negotiation", "2026-10-15"), ("closed_won", "2026-10-31")]),
        # won in Q4 after 162 days
        DealRow("hubspot:D4", "closed_won", "won", 50_000, "2026-06-01", close="2026-11-10", owner="bob@example.com",
                lead_source="Partner",
                history=[("prospecting", "2026-06-01"), ("proposal", "2026-07-01"), ("closed_won", "2026-11-10")]),
        # lost in Q4
        DealRow("salesforce:D5", "closed_lost", "lost", 40_000, "2026-07-15", close="2026-10-20", lead_source="Inbound",
                lost_reason="Price",
                history=[("prospecting", "2026-07-15"), ("qualification", "2026-08-15"), ("closed_lost", "2026-10-20")]),
        # won in Q3 after 122 days
        DealRow("salesforce:D6", "closed_won", "won", 25_000, "2026-05-01", close="2026-08-31",
                history=[("prospecting", "2026-05-01"), ("closed_won", "2026-08-31")]),
        # lost in Q3
        DealRow("hubspot:D7", "closed_lost", "lost", 15_000, "2026-07-01", close="2026-09-15", owner="bob@example.com",
                lost_reason="No budget", history=[("prospecting", "2026-07-01"), ("closed_lost", "2026-09-15")]),
        # parked since 10-20, untouched since created 10-10: not stale, it is in the fridge on purpose
        DealRow("hubspot:D8", "on_hold", "open", 100_000, "2026-10-10", owner="bob@example.com",
                history=[("prospecting", "2026-10-10"), ("on_hold", "2026-10-20")]),
        # deleted: counts nowhere
        DealRow("hubspot:D9", "negotiation", "open", 999_000, "2026-10-01", deleted=True,
                history=[("negotiation", "2026-10-02")]),
        # lost long ago: not even loaded
        DealRow("csv:D10", "closed_lost", "lost", 5_000, "2025-01-01", close="2025-02-01", lost_reason="Price",
                history=[("prospecting", "2025-01-01"), ("closed_lost", "2025-02-01")]),
    ]


@pytest.fixture
def quarter_settings(warehouse_url):
    """The quarter's deals in a warehouse on each tested dialect."""
    return write_warehouse(warehouse_url, quarter_deals())
