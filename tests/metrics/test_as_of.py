"""As of a past day, the figures are those that stood then, however the deals changed since.

``then()`` is the warehouse as synced at the end of 2026-11-15; ``later()`` is the same
warehouse a week later, after closes, stage moves, a deal taken out of the fridge and
two new deals. As of 2026-11-15 both give the same figures, worked out by hand below.
SLAs (default pipeline): prospecting, qualification, proposal, negotiation 30 days,
discovery 45; on_hold is parked. "As of 2026-11-15" is the instant 2026-11-16 00:00 UTC.
"""

from __future__ import annotations

import json
from datetime import date

import pytest
from typer.testing import CliRunner

import pipesync.cli.metrics_cmd  # noqa: F401 - registers the command
from pipesync.cli.app import app
from pipesync.metrics.periods import Period, end_of_day
from pipesync.metrics.run import run_metrics
from tests.metrics.builders import DealRow, write_warehouse

DAY = date(2026, 11, 15)
AS_OF = end_of_day(DAY)


def then() -> list[DealRow]:
    return [
        # open in proposal since 11-01, touched 11-10: neither stuck nor stale
        DealRow("salesforce:A1", "proposal", "open", 10_000, "2026-10-02", stage_entered="2026-11-01", updated="2026-11-01",
                last_activity="2026-11-10",
                history=[("prospecting", "2026-10-02"), ("qualification", "2026-10-12"), ("proposal", "2026-11-01")]),
        # open in qualification since 10-05 and never touched since: 42 days, stuck and stale
        DealRow("hubspot:A2", "qualification", "open", 20_000, "2026-10-05", owner="bob@example.com",
                stage_entered="2026-10-05", updated="2026-10-05", history=[("qualification", "2026-10-05")]),
        # lost on 11-10
        DealRow("salesforce:A3", "closed_lost", "lost", 40_000, "2026-08-10", close="2026-11-10", lead_source="Inbound",
                lost_reason="Price",
                history=[("prospecting", "2026-08-10"), ("discovery", "2026-09-01"), ("closed_lost", "2026-11-10")]),
        # won on 10-20, 45 days after it was created
        DealRow("salesforce:A4", "closed_won", "won", 30_000, "2026-09-05", close="2026-10-20", lead_source="Partner",
                history=[("prospecting", "2026-09-05"), ("negotiation", "2026-10-01"), ("closed_won", "2026-10-20")]),
        # parked since 10-25: neither stuck (no SLA) nor stale (in the fridge on purpose)
        DealRow("hubspot:A5", "on_hold", "open", 100_000, "2026-10-10", owner="bob@example.com", stage_entered="2026-10-25",
                history=[("prospecting", "2026-10-10"), ("on_hold", "2026-10-25")]),
        # open in discovery since 08-10, last touched then: 98 days, stuck (SLA 45) and stale
        DealRow("salesforce:A6", "discovery", "open", 50_000, "2026-07-20", stage_entered="2026-08-10",
                last_activity="2026-08-10", history=[("prospecting", "2026-07-20"), ("discovery", "2026-08-10")]),
        # Q3: won 08-05, before the same point of Q3 (08-15); lost 09-10, after it
        DealRow("csv:B1", "closed_won", "won", 20_000, "2026-06-10", close="2026-08-05",
                history=[("prospecting", "2026-06-10"), ("closed_won", "2026-08-05")]),
        DealRow("csv:B2", "closed_lost", "lost", 15_000, "2026-07-05", close="2026-09-10",
                history=[("prospecting", "2026-07-05"), ("closed_lost", "2026-09-10")]),
    ]


def later() -> list[DealRow]:
    """A week on: every change is dated after 2026-11-15."""
    deals = {d.key: d for d in then()}
    a1, a2, a5, a6 = (deals[k] for k in ("salesforce:A1", "hubspot:A2", "hubspot:A5", "salesforce:A6"))
    a1.stage, a1.stage_entered, a1.updated, a1.last_activity = "negotiation", "2026-11-18", "2026-11-18", "2026-11-20"
    a1.history.append(("negotiation", "2026-11-18"))
    a2.stage, a2.status, a2.close = "closed_won", "won", "2026-11-20"
    a2.stage_entered, a2.updated, a2.last_activity = "2026-11-20", "2026-11-20", "2026-11-19"
    a2.history.append(("closed_won", "2026-11-20"))
    a5.stage, a5.stage_entered = "proposal", "2026-11-19"  # out of the fridge
    a5.history.append(("proposal", "2026-11-19"))
    a6.stage, a6.status, a6.close, a6.lost_reason = "closed_lost", "lost", "2026-11-19", "Timing"
    a6.stage_entered, a6.updated, a6.last_activity = "2026-11-19", "2026-11-19", "2026-11-19"
    a6.history.append(("closed_lost", "2026-11-19"))
    return [
        *deals.values(),
        DealRow("pipedrive:N1", "prospecting", "open", 25_000, "2026-11-18", history=[("prospecting", "2026-11-18")]),
        DealRow("pipedrive:N2", "closed_won", "won", 60_000, "2026-11-17", close="2026-11-21",
                history=[("prospecting", "2026-11-17"), ("closed_won", "2026-11-21")]),
    ]


def test_a_past_day_is_reproduced_after_later_changes(warehouse_url):
    m = run_metrics(write_warehouse(warehouse_url, later()), now=AS_OF)
    figure = {key: f.value for key, f in m.segments[0].metrics.items()}
    previous = {key: f.previous for key, f in m.segments[0].metrics.items()}
    # The quarter containing the day, to date; Q3 through the same point (46 days in: 08-15).
    assert (m.period.start, m.period.end, m.period.to_date) == (date(2026, 10, 1), date(2026, 12, 31), True)
    assert (m.previous_period.start, m.previous_period.end) == (date(2026, 7, 1), date(2026, 8, 15))
    # Open then: A1, A2, A5, A6 (A2 and A6 closed later; N1 and N2 did not exist)
    assert (figure["open_pipeline_count"], figure["open_pipeline_value"]) == (4, 180_000)
    # A1 proposal 10k×0.5, A2 qualification 20k×0.2, A5 on_hold 100k×0.05 (its move on 11-19 came later), A6 discovery 50k×0.35
    assert figure["weighted_pipeline"] == pytest.approx(5_000 + 4_000 + 5_000 + 17_500)
    assert (figure["new_pipeline_count"], figure["new_pipeline_value"]) == (3, 130_000)  # A1, A2, A5
    assert (figure["won_count"], figure["lost_count"], figure["win_rate"]) == (1, 1, 0.5)  # A4 won, A3 lost
    assert figure["avg_sales_cycle_days"] == 45
    # A1, A2, A6 open and not parked: 3 × 30,000 × 0.5 ÷ 45 days
    assert figure["velocity_per_day"] == pytest.approx(1_000)
    assert (figure["stuck_deals"], figure["stale_deals"]) == (2, 2)
    assert {(d.id, d.stage, d.days) for d in m.stuck_deals.deals} == {("hubspot:A2", "qualification", 42), ("salesforce:A6", "discovery", 98)}
    assert {(d.id, d.days) for d in m.stale_deals.deals} == {("hubspot:A2", 42), ("salesforce:A6", 98)}
    # Q3 through 08-15: A3, A6, B2 open and new; B1 won
    assert (previous["open_pipeline_count"], previous["new_pipeline_value"], previous["win_rate"]) == (3, 105_000, 1.0)
    # Entries up to 11-15: A1 prospecting, qualification (both went on) and proposal (its move on 11-18
    # came later); A5 prospecting (then parked); A2 qualification (won later); A4 negotiation, then won.
    assert [s.reached for s in m.funnel] == [2, 2, 0, 1, 1, 1]
    assert [s.went_on for s in m.funnel] == [1, 1, 0, 0, 1, None]


def test_the_command_gives_the_same_document_before_and_after_the_changes(tmp_path):
    documents = []
    for name, deals in (("then", then()), ("later", later())):
        settings = write_warehouse(f"sqlite:///{tmp_path / name}.db", deals)
        config = tmp_path / f"{name}.yaml"
        config.write_text(f"warehouse: {settings.warehouse}\n", encoding="utf-8")
        result = CliRunner().invoke(app, ["metrics", "-c", str(config), "--as-of", DAY.isoformat(), "--json"])
        assert result.exit_code == 0, result.output
        documents.append(json.loads(result.stdout))
    assert documents[0] == documents[1]
    assert documents[0]["as_of"] == "2026-11-16T00:00:00Z"


def test_a_touch_after_the_day_tells_nothing_about_the_days_before(tmp_path):
    # Created 09-01 and untouched until an activity on 11-20: as of 11-15 the last known touch
    # is its creation, 76 days before. The same deal with an activity on 11-01 was touched 15 days before.
    def deal(activity: str) -> DealRow:
        return DealRow("hubspot:T1", "prospecting", "open", 5_000, "2026-09-01", last_activity=activity, updated=activity,
                       history=[("prospecting", "2026-09-01")])

    late = run_metrics(write_warehouse(f"sqlite:///{tmp_path / 'late.db'}", [deal("2026-11-20")]), now=AS_OF)
    early = run_metrics(write_warehouse(f"sqlite:///{tmp_path / 'early.db'}", [deal("2026-11-01")]), now=AS_OF)
    assert [(d.id, d.days) for d in late.stale_deals.deals] == [("hubspot:T1", 76)]
    assert early.stale_deals.count == 0


def test_the_last_day_of_a_quarter_gives_the_whole_quarter(tmp_path):
    settings = write_warehouse(f"sqlite:///{tmp_path / 'w.db'}", then())
    m = run_metrics(settings, now=end_of_day(date(2026, 9, 30)))
    assert Period(m.period.start, m.period.end) == Period(date(2026, 7, 1), date(2026, 9, 30))
    assert (m.period.to_date, m.previous_period.start, m.previous_period.end) == (False, date(2026, 4, 1), date(2026, 6, 30))


def test_days_in_stage_count_from_the_crm_entry_even_when_a_sync_saw_the_move_later(tmp_path):
    # The CRM says qualification since 10-05; the history entry was observed by a sync on 10-07.
    deal = DealRow("hubspot:O1", "qualification", "open", 5_000, "2026-10-01", stage_entered="2026-10-05",
                   last_activity="2026-11-14", history=[("prospecting", "2026-10-01"), ("qualification", "2026-10-07")])
    m = run_metrics(write_warehouse(f"sqlite:///{tmp_path / 'w.db'}", [deal]), now=AS_OF)
    assert [(d.id, d.days) for d in m.stuck_deals.deals] == [("hubspot:O1", 42)]
