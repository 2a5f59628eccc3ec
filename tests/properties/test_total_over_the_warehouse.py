"""Consolidate, metrics and the report are total over every value the warehouse accepts.

A credit row, a deal closing in 2199, an empty name, a stage no pipeline knows: whatever
sync (or a person with SQL) can put in ``deals`` and ``stage_history``, every command
downstream of it finishes with a result, never a traceback.
"""

from __future__ import annotations

import tempfile
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings, strategies as st
from sqlalchemy import create_engine, insert

from pipesync.config import Settings
from pipesync.consolidate.store import run_consolidation
from pipesync.metrics.periods import Period
from pipesync.metrics.run import run_views
from pipesync.pipeline import load_pipeline
from pipesync.report.builder import build_report
from pipesync.warehouse import schema, version

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=timezone.utc)
STAGES = [s.key for s in load_pipeline().stages]

# The Numeric(20, 4) amount column holds up to 16 integer digits.
amounts = st.one_of(st.none(), st.decimals(min_value=-10**15, max_value=10**15, places=4, allow_nan=False),
                    st.sampled_from([Decimal(0), Decimal("-0.0001"), Decimal("9999999999999999.9999")]))
instants = st.one_of(st.none(), st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1),
                                             timezones=st.just(timezone.utc)))
days = st.one_of(st.none(), st.dates(min_value=date(1900, 1, 1), max_value=date(2200, 1, 1)))
text = st.text(max_size=40)
short = st.text(max_size=12)
# stages and statuses a pipeline knows, and some it does not (a hand edit, an older pipeline file)
stages = st.one_of(st.sampled_from(STAGES), st.text(min_size=1, max_size=20))
statuses = st.one_of(st.sampled_from(["open", "won", "lost"]), st.text(min_size=1, max_size=8))


@st.composite
def deal_rows(draw: st.DrawFn, index: int) -> dict[str, Any]:
    source = draw(st.sampled_from(["salesforce", "hubspot", "pipedrive", "sheet"]))
    source_id = f"{index}-{draw(st.text(max_size=8))}"
    return {
        "key": f"{source}:{source_id}", "source": source, "source_id": source_id,
        "name": draw(text), "pipeline": draw(st.one_of(st.none(), short)), "source_stage": draw(st.one_of(st.none(), short)),
        "stage": draw(stages), "status": draw(statuses), "amount": draw(amounts),
        "currency": draw(st.one_of(st.none(), st.sampled_from(["USD", "EUR", "JPY", "XXX"]))),
        "amount_reporting": draw(amounts),
        "probability": draw(st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False, width=32))),
        # an actual close date on any deal, open ones too, before or after its expected one or its creation
        "close_date": draw(days), "actual_close_date": draw(days), "created_at": draw(instants), "updated_at": draw(instants),
        "stage_entered_at": draw(instants), "last_activity_at": draw(instants),
        "owner_email": draw(st.one_of(st.none(), short, st.emails())), "owner_name": draw(st.one_of(st.none(), short)),
        "account_name": draw(st.one_of(st.none(), text)), "account_domain": draw(st.one_of(st.none(), short)),
        "contact_emails": draw(st.lists(st.one_of(short, st.emails()), max_size=3)),
        "lead_source": draw(st.one_of(st.none(), short)), "lost_reason": draw(st.one_of(st.none(), text)),
        "next_step": draw(st.one_of(st.none(), text)),
        "external_refs": draw(st.lists(st.one_of(short, st.builds(lambda s, i: f"{s}:{i}",
                                                                   st.sampled_from(["salesforce", "hubspot"]), short)),
                                       max_size=2)),
        "is_deleted": draw(st.booleans()), "raw": {}, "content_hash": "x", "synced_at": NOW,
    }


@st.composite
def warehouses(draw: st.DrawFn) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    count = draw(st.integers(min_value=0, max_value=12))
    deals = [draw(deal_rows(i)) for i in range(count)]
    # twins: the same deal in another system, so clusters form and survivorship runs on these values
    for i in range(1, count):
        if draw(st.booleans()):
            twin = deals[draw(st.integers(min_value=0, max_value=i - 1))]
            deals[i] |= {k: twin[k] for k in ("name", "account_name", "account_domain", "amount", "close_date", "actual_close_date",
                                               "owner_email", "contact_emails")}
    history = {}
    for deal in deals:
        for _ in range(draw(st.integers(min_value=0, max_value=3))):
            when = draw(instants) or NOW
            change = {"deal_key": deal["key"], "from_stage": draw(st.one_of(st.none(), stages)),
                      "to_stage": draw(stages), "changed_at": when,
                      "origin": draw(st.sampled_from(["source_history", "observed"]))}
            # the warehouse holds one row per change (deal, from, to, time, origin): a repeat is not a value it holds
            history.setdefault((change["deal_key"], change["from_stage"] or "", change["to_stage"], when, change["origin"]), change)
    return deals, list(history.values())


def write(url: str, deals: list[dict[str, Any]], history: list[dict[str, Any]]) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        version.create(conn)
        if deals:
            conn.execute(insert(schema.deals), deals)
        if history:
            conn.execute(insert(schema.stage_history), history)
    engine.dispose()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(warehouses(), st.booleans())
def test_every_command_after_sync_finishes_on_any_warehouse_content(content, consolidated: bool) -> None:
    deals, history = content
    with tempfile.TemporaryDirectory() as work:
        url = f"sqlite:///{Path(work) / 'warehouse.db'}"
        write(url, deals, history)
        project = Settings(warehouse=url, stale_after_days=30, fx_rates={"EUR": Decimal("1.1"), "JPY": Decimal("0.0067")})
        if consolidated:
            summary = run_consolidation(project)
            assert summary.golden_deals <= summary.deals <= len(deals)
        quarter = Period(date(2026, 10, 1), date(2026, 12, 31))
        run = run_views(project, quarter, ("all", "owner", "source", "lead_source"), now=NOW)
        assert set(run.views) == {"all", "owner", "source", "lead_source"}
        report = build_report(project, Path(work) / "report.html", quarter, now=NOW)
        assert "Pipeline report" in report.read_text(encoding="utf-8")
