"""What the warehouse knows about each CRM record a plan may touch.

The consolidated truth decides: a record is stale when its golden deal is (a copy
touched last week in another CRM keeps it alive), and its figures are the golden
deal's. Without a consolidation each record is its own golden deal.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

import numpy as np
from sqlalchemy import Connection, false, or_, select

from pipesync.metrics import attention
from pipesync.metrics.asof import state_at
from pipesync.metrics.compute import load_truth, measure
from pipesync.metrics.periods import day_of, quarter_of
from pipesync.model import SharedPipeline
from pipesync.warehouse import schema as t

EVER = date(1900, 1, 1)


@dataclass
class Member:
    """One live CRM record, as last synced."""

    key: str
    source: str
    source_id: str
    name: str
    pipeline: str | None
    source_stage: str | None
    status: str
    owner_email: str | None
    owner_name: str | None
    created_at: datetime | None
    golden_id: str  # its golden deal (its own key when nothing was consolidated)
    wins: int = 0  # fields of its golden deal it supplied (survivorship), to pick the survivor


@dataclass
class Golden:
    id: str
    name: str
    stage: str
    open: bool
    amount: Decimal | None
    probability: float
    days_in_stage: float | None = None
    stale_days: float | None = None  # set when stale
    stuck: bool = False
    suspicious: str | None = None  # why, when the amount is suspicious
    members: list[Member] = field(default_factory=list)


@dataclass
class Facts:
    consolidated: bool
    goldens: dict[str, Golden]

    def members(self) -> list[Member]:
        return [m for g in self.goldens.values() for m in g.members]


def _live_members(conn: Connection, sources: set[str]) -> list[Member]:
    d, links = t.deals, t.deal_links
    rows = conn.execute(
        select(d.c.key, d.c.source, d.c.source_id, d.c.name, d.c.pipeline, d.c.source_stage, d.c.status,
               d.c.owner_email, d.c.owner_name, d.c.created_at, links.c.golden_id)
        .outerjoin(links, links.c.deal_key == d.c.key)
        .where(d.c.source.in_(sorted(sources)), or_(d.c.is_deleted.is_(None), d.c.is_deleted == false()))
        .order_by(d.c.key)
    )
    return [Member(*row[:10], golden_id=row[10] or row[0]) for row in rows]


def _survivorship_wins(conn: Connection) -> dict[str, int]:
    wins: dict[str, int] = defaultdict(int)
    for (provenance,) in conn.execute(select(t.golden_deals.c.provenance)):
        for picked in (provenance or {}).values():
            if isinstance(picked, dict) and picked.get("deal_key"):
                wins[picked["deal_key"]] += 1
    return wins


def load_facts(conn: Connection, pipeline: SharedPipeline, sources: set[str], now: datetime, *,
               stale_after_days: int, suspicious: bool, reporting_currency: str) -> Facts:
    """The golden deals of the given sources' live records, with the flags the rules act on as of ``now``."""
    today = day_of(now)
    truth = load_truth(conn, pipeline, EVER)  # closed deals too: every record learns its golden deal
    deals, stages = truth.deals, truth.stages
    at = now.timestamp() / 86400.0
    state = state_at(deals, truth.history, stages, at)
    stale_mask, touch_days = attention.stale(state, stages, stale_after_days)
    stuck_mask, _ = attention.stuck(state, stages)
    flagged: dict[str, str] = {}
    if suspicious:
        listed = measure(truth, quarter_of(today), now=now, stale_after_days=stale_after_days,
                         reporting_currency=reporting_currency, limit=len(deals.ids)).suspicious_amounts
        flagged = {d.id: d.reason for d in listed.deals}
    index = {gid: i for i, gid in enumerate(deals.ids)}
    keys = [s.key for s in pipeline.stages]
    goldens: dict[str, Golden] = {}
    members = _live_members(conn, sources)
    wins = _survivorship_wins(conn) if deals.kind == "golden" else {}
    names = dict(conn.execute(select(t.golden_deals.c.golden_id, t.golden_deals.c.name)).all()) if deals.kind == "golden" else {}
    for m in members:
        m.wins = wins.get(m.key, 0)
        g = goldens.get(m.golden_id)
        if g is None:
            i = index.get(m.golden_id)
            if i is None:  # not in the measured deal set (its golden deal is deleted)
                continue
            code = int(deals.stage[i])
            stage = keys[code] if 0 <= code < len(keys) else ""
            amount = deals.amount[i]
            open_now = bool(state.open[i])
            with np.errstate(invalid="ignore"):
                in_stage = state.at - state.entered[i] if open_now and not np.isnan(state.entered[i]) else None
            g = goldens[m.golden_id] = Golden(
                id=m.golden_id, name=names.get(m.golden_id, m.name), stage=stage,
                open=open_now,
                amount=None if np.isnan(amount) else Decimal(f"{amount:.2f}"),
                probability=float(stages.probability[code]) if 0 <= code < len(keys) else 0.0,
                days_in_stage=None if in_stage is None else float(in_stage),
                stale_days=float(touch_days[i]) if stale_mask[i] else None,
                stuck=bool(stuck_mask[i]), suspicious=flagged.get(m.golden_id),
            )
        g.members.append(m)
    return Facts(consolidated=deals.kind == "golden", goldens=goldens)


def survivor(members: list[Member]) -> Member:
    """Of one golden deal's records in one CRM, the one the others are duplicates of: the one that
    supplied the most golden fields, then the oldest, then the smallest key."""
    oldest = datetime.max.replace(tzinfo=None)
    return min(members, key=lambda m: (-m.wins, (m.created_at.replace(tzinfo=None) if m.created_at else oldest), m.key))
