"""Pipeline metrics for a period and a view, computed on the consolidated truth.

Everything is vectorised over the deal set (numpy), so a million deals take
seconds. docs/metrics.md states each definition exactly as computed here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np
from sqlalchemy import select
from sqlalchemy.engine import Connection

from pipesync.errors import ConfigError
from pipesync.metrics import attention, dealset, stageflow
from pipesync.metrics.dealset import LOST, OPEN, WON, DealSet, History, day_number
from pipesync.metrics.definitions import ALL_SEGMENT, DAYS_PER_MONTH, HEADLINE, VIEWS
from pipesync.metrics.grouped import group_count, group_sum
from pipesync.metrics.periods import Period
from pipesync.metrics.results import (
    DealList,
    Figure,
    FlaggedDeal,
    FunnelStep,
    LeadSourceWinRate,
    LostReason,
    Metrics,
    PeriodInfo,
    RecordRef,
    SegmentMetrics,
    StageDays,
    StagePipeline,
)
from pipesync.metrics.stages import StageTable
from pipesync.metrics.suspicious import suspicious_amounts
from pipesync.model import Category, SharedPipeline
from pipesync.warehouse import schema


# Why a listed deal is listed: (reason in words, days, typical amount).
Describe = Callable[[int], tuple[str, float | None, float | None]]


@dataclass
class Truth:
    """The deal set and history loaded for a period (and the one before it)."""

    deals: DealSet
    history: History
    stages: StageTable


def load_truth(conn: Connection, pipeline: SharedPipeline, period: Period) -> Truth:
    deals, history = dealset.load(conn, pipeline, period.previous().start)
    return Truth(deals, history, StageTable.of(pipeline))


@dataclass
class PeriodState:
    """Per-deal facts about one period, shared by every view."""

    open_at_end: np.ndarray  # open at the as-of instant (period end, or now if that is earlier)
    stage_at_end: np.ndarray  # stage code at that instant
    velocity_open: np.ndarray  # open at the end and not parked
    created_in: np.ndarray
    won_in: np.ndarray
    lost_in: np.ndarray
    cycle_days: np.ndarray  # close date − created date, for won deals
    start: float
    before: float  # first day after the period, or now


def period_state(truth: Truth, period: Period, now: float) -> PeriodState:
    d, st = truth.deals, truth.stages
    start, after = day_number(period.start), day_number(period.end) + 1
    as_of = min(after, now)
    created_known = ~np.isnan(d.created)
    with np.errstate(invalid="ignore"):
        existed = ~created_known | (d.created < as_of)
        closed_later = (d.status != OPEN) & (d.close_day >= as_of)
        open_at_end = existed & ((d.status == OPEN) | closed_later)
        # The stage then: the last history entry before it, if that is an open stage; else the
        # current stage of a deal still open; else the pipeline's first step (the entry stage).
        hist_stage, _ = stageflow.last_entries(truth.history, len(d), as_of)
        from_history = (hist_stage >= 0) & (st.category[hist_stage] == OPEN)
        entry_stage = st.funnel_stages[0]
        stage_at_end = np.where(from_history, hist_stage, np.where(d.status == OPEN, d.stage, entry_stage))
        closed_in = (d.close_day >= start) & (d.close_day < after)
        created_in = created_known & (d.created >= start) & (d.created < after)
    won_in = closed_in & (d.status == WON)
    cycle = np.maximum(0.0, d.close_day - np.floor(d.created))
    return PeriodState(
        open_at_end=open_at_end,
        stage_at_end=stage_at_end.astype(np.int64),
        velocity_open=open_at_end & ~st.parked[stage_at_end],
        created_in=created_in,
        won_in=won_in,
        lost_in=closed_in & (d.status == LOST),
        cycle_days=cycle,
        start=start,
        before=as_of,
    )


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


def headline(truth: Truth, s: PeriodState, codes: np.ndarray, n: int, flags: dict[str, np.ndarray] | None) -> dict[str, np.ndarray]:
    """Each headline metric per segment (``codes`` gives each deal's segment)."""
    amount = np.nan_to_num(truth.deals.amount)
    priced = ~np.isnan(truth.deals.amount)
    prob = truth.stages.probability[s.stage_at_end]

    def count(mask: np.ndarray) -> np.ndarray:
        return group_count(codes[mask], n).astype(float)

    def total(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return group_sum(values[mask], codes[mask], n)

    won, lost = count(s.won_in), count(s.lost_in)
    won_priced = s.won_in & priced
    cycle_known = s.won_in & ~np.isnan(s.cycle_days)
    avg_won = _ratio(total(amount, won_priced), count(won_priced))
    win_rate = _ratio(won, won + lost)
    avg_cycle = _ratio(total(s.cycle_days, cycle_known), count(cycle_known))
    velocity_open = count(s.velocity_open)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_day = np.where(avg_cycle > 0, velocity_open * avg_won * win_rate / np.where(avg_cycle > 0, avg_cycle, 1), np.nan)
    out = {
        "open_pipeline_value": total(amount, s.open_at_end),
        "open_pipeline_count": count(s.open_at_end),
        "weighted_pipeline": total(amount * prob, s.open_at_end),
        "new_pipeline_count": count(s.created_in),
        "new_pipeline_value": total(amount, s.created_in),
        "won_count": won,
        "lost_count": lost,
        "won_value": total(amount, s.won_in),
        "win_rate": win_rate,
        "avg_won_deal_size": avg_won,
        "avg_sales_cycle_days": avg_cycle,
        "velocity_open_deals": velocity_open,
        "velocity_per_day": per_day,
        "velocity_per_month": per_day * DAYS_PER_MONTH,
    }
    for key in ("stuck_deals", "stale_deals", "suspicious_amounts"):
        out[key] = count(flags[key]) if flags is not None else np.full(n, np.nan)
    return out


def _number(x: float) -> float | None:
    return None if x is None or np.isnan(x) else float(x)


def figure(value: float, previous: float | None) -> Figure:
    v, p = _number(value), None if previous is None else _number(previous)
    delta = None if v is None or p is None else v - p
    pct = None if delta is None or not p else 100.0 * delta / abs(p)
    return Figure(value=v, previous=p, delta=delta, delta_pct=pct)


def _segments(truth: Truth, cur: PeriodState, prev: PeriodState, view: str, flags: dict[str, np.ndarray]) -> list[SegmentMetrics]:
    n_deals = len(truth.deals)
    groupings = [(np.zeros(n_deals, dtype=np.int64), [ALL_SEGMENT])]
    column = VIEWS[view]
    if column is not None:
        labels = truth.deals.segments[column]
        groupings.append((labels.codes.astype(np.int64), labels.labels))
    result: list[SegmentMetrics] = []
    for codes, names in groupings:
        now_figs = headline(truth, cur, codes, len(names), flags)
        prev_figs = headline(truth, prev, codes, len(names), None)
        rows = [
            SegmentMetrics(
                segment=name,
                metrics={m.key: figure(now_figs[m.key][i], prev_figs[m.key][i] if m.compared else None) for m in HEADLINE},
            )
            for i, name in enumerate(names)
        ]
        result.extend(sorted(rows, key=lambda r: (-(r.metrics["open_pipeline_value"].value or 0), r.segment)))
    return result


def _pipeline_by_stage(truth: Truth, s: PeriodState) -> list[StagePipeline]:
    st = truth.stages
    n = len(st.category)
    stage = st.slots(s.stage_at_end[s.open_at_end])
    amount = np.nan_to_num(truth.deals.amount)[s.open_at_end]
    counts = group_count(stage, n)
    values = group_sum(amount, stage, n)
    weighted = group_sum(amount * st.probability[stage], stage, n)
    return [
        StagePipeline(stage=stage_.key, label=stage_.label, count=int(counts[i]), value=float(values[i]), weighted=float(weighted[i]))
        for i, stage_ in enumerate(st.pipeline.stages)
        if stage_.category is Category.OPEN
    ]


def _funnel(truth: Truth, cur: PeriodState, prev: PeriodState) -> list[FunnelStep]:
    st, n = truth.stages, len(truth.deals)

    def counts(s: PeriodState) -> np.ndarray:
        parked = s.open_at_end & st.parked[s.stage_at_end]
        return stageflow.funnel_counts(truth.history, st, n, s.start, s.before, parked)

    now_c, prev_c = counts(cur), counts(prev)
    steps = []
    for k, code in enumerate(st.funnel_stages):
        last = k == len(st.funnel_stages) - 1
        went_on = None if last else int(now_c[k + 1])
        label = "Won" if last else st.label(code)
        steps.append(
            FunnelStep(
                stage=st.key(code),
                label=label,
                reached=int(now_c[k]),
                went_on=went_on,
                conversion=None if last else _number(_ratio(now_c[k + 1 : k + 2], now_c[k : k + 1])[0]),
                share_of_first=_number(_ratio(now_c[k : k + 1], now_c[0:1])[0]),
                previous_reached=int(prev_c[k]),
                previous_conversion=None if last else _number(_ratio(prev_c[k + 1 : k + 2], prev_c[k : k + 1])[0]),
            )
        )
    return steps


def _days_in_stage(truth: Truth, cur: PeriodState, prev: PeriodState) -> list[StageDays]:
    st = truth.stages
    n = len(st.category)
    visits, mean, median = stageflow.days_in_stage(truth.history, n, cur.start, cur.before)
    _, prev_mean, _ = stageflow.days_in_stage(truth.history, n, prev.start, prev.before)
    return [
        StageDays(
            stage=s.key, label=s.label, visits=int(visits[i]), avg_days=_number(mean[i]),
            median_days=_number(median[i]), previous_avg_days=_number(prev_mean[i]),
        )
        for i, s in enumerate(st.pipeline.stages)
        if s.category is Category.OPEN
    ]


def _lost_reasons(truth: Truth, s: PeriodState) -> list[LostReason]:
    reasons = truth.deals.lost_reason
    n = len(reasons.labels)
    codes = reasons.codes[s.lost_in].astype(np.int64)
    counts = group_count(codes, n)
    values = group_sum(np.nan_to_num(truth.deals.amount)[s.lost_in], codes, n)
    rows = [LostReason(reason=reasons.labels[i], count=int(counts[i]), value=float(values[i])) for i in range(n) if counts[i]]
    return sorted(rows, key=lambda r: (-r.count, -r.value, r.reason))


def _win_rate_by_lead_source(truth: Truth, s: PeriodState) -> list[LeadSourceWinRate]:
    lead = truth.deals.segments["lead_source"]
    n = len(lead.labels)
    codes = lead.codes.astype(np.int64)
    won, lost = group_count(codes[s.won_in], n), group_count(codes[s.lost_in], n)
    rows = [
        LeadSourceWinRate(lead_source=lead.labels[i], won=int(won[i]), lost=int(lost[i]), win_rate=float(won[i] / (won[i] + lost[i])))
        for i in range(n)
        if won[i] + lost[i]
    ]
    return sorted(rows, key=lambda r: (-(r.won + r.lost), r.lead_source))


def _deal_list(truth: Truth, mask: np.ndarray, limit: int, describe: Describe) -> DealList:
    d = truth.deals
    idx = np.flatnonzero(mask)
    amount = np.nan_to_num(d.amount[idx], nan=-np.inf)
    top = idx[np.lexsort((idx, -amount))][:limit]  # largest first; ties in a stable order
    owners, sources = d.segments["owner"], d.segments["source"]
    deals = []
    for i in top:
        reason, days, typical = describe(i)
        deals.append(
            FlaggedDeal(
                id=d.ids[i], name="", source=sources.labels[sources.codes[i]], stage=truth.stages.key(int(d.stage[i])),
                owner=owners.labels[owners.codes[i]], amount=_number(d.amount[i]), reason=reason, days=days,
                typical_amount=typical,
            )
        )
    return DealList(count=len(idx), deals=deals)


def measure(
    truth: Truth,
    period: Period,
    *,
    view: str = "all",
    now: datetime,
    stale_after_days: int,
    reporting_currency: str,
    limit: int = 50,
) -> Metrics:
    """The metrics of ``period`` for ``view``, against the previous period. Pure: reads nothing, writes nothing."""
    if view not in VIEWS:
        raise ConfigError(f"unknown view {view!r}: use one of {', '.join(VIEWS)}")
    d, st = truth.deals, truth.stages
    now_day = now.timestamp() / 86400.0
    previous = period.previous()
    cur, prev = period_state(truth, period, now_day), period_state(truth, previous, now_day)

    stuck_mask, stage_days = attention.stuck(d, truth.history, st, now_day)
    stale_mask, touch_days = attention.stale(d, st, now_day, stale_after_days)
    owners = d.segments["owner"]
    candidates = (d.status == OPEN) | cur.won_in | cur.lost_in
    verdict = suspicious_amounts(d.amount, owners.codes, len(owners.labels), d.stage, len(st.pipeline.stages), candidates)
    flags = {"stuck_deals": stuck_mask, "stale_deals": stale_mask, "suspicious_amounts": verdict.flagged}

    def stuck_reason(i: int) -> tuple[str, float, None]:
        sla = int(st.sla_days[d.stage[i]])
        return f"{stage_days[i]:.0f} days in {st.label(int(d.stage[i]))} (SLA {sla} days)", float(stage_days[i]), None

    def stale_reason(i: int) -> tuple[str, float, None]:
        return f"no activity or update for {touch_days[i]:.0f} days", float(touch_days[i]), None

    def suspicious_reason(i: int) -> tuple[str, None, float]:
        typical = float(verdict.typical[i])
        factor = d.amount[i] / typical
        shown = f"{factor:.0f}×" if factor >= 1 else f"1/{1 / factor:.0f}"
        group = "the owner's deals in this stage" if verdict.within_stage[i] else "the owner's deals"
        return f"{shown} the typical size of {group} ({typical:,.0f} {reporting_currency})", None, typical

    return Metrics(
        period=PeriodInfo(start=period.start, end=period.end),
        previous_period=PeriodInfo(start=previous.start, end=previous.end),
        as_of=now,
        view=view,
        deal_set=d.kind,
        reporting_currency=reporting_currency,
        segments=_segments(truth, cur, prev, view, flags),
        pipeline_by_stage=_pipeline_by_stage(truth, cur),
        funnel=_funnel(truth, cur, prev),
        days_in_stage=_days_in_stage(truth, cur, prev),
        lost_reasons=_lost_reasons(truth, cur),
        win_rate_by_lead_source=_win_rate_by_lead_source(truth, cur),
        stuck_deals=_deal_list(truth, stuck_mask, limit, stuck_reason),
        stale_deals=_deal_list(truth, stale_mask, limit, stale_reason),
        suspicious_amounts=_deal_list(truth, verdict.flagged, limit, suspicious_reason),
    )


def attach_records(conn: Connection, metrics: Metrics) -> None:
    """Fills each listed deal's name and the CRM records behind it (for links back to each one)."""
    listed = [deal for lst in (metrics.stuck_deals, metrics.stale_deals, metrics.suspicious_amounts) for deal in lst.deals]
    if not listed:
        return
    ids = sorted({deal.id for deal in listed})
    deals, links = schema.deals, schema.deal_links
    if metrics.deal_set == "golden":
        names = dict(conn.execute(select(schema.golden_deals.c.golden_id, schema.golden_deals.c.name).where(schema.golden_deals.c.golden_id.in_(ids))).all())
        rows = conn.execute(
            select(links.c.golden_id, deals.c.key, deals.c.source, deals.c.source_id)
            .join(deals, deals.c.key == links.c.deal_key)
            .where(links.c.golden_id.in_(ids))
            .order_by(deals.c.key)
        ).all()
    else:
        found = conn.execute(select(deals.c.key, deals.c.name, deals.c.source, deals.c.source_id).where(deals.c.key.in_(ids))).all()
        names = {r.key: r.name for r in found}
        rows = [(r.key, r.key, r.source, r.source_id) for r in found]
    records: dict[str, list[RecordRef]] = {}
    for owner_id, key, source, source_id in rows:
        records.setdefault(owner_id, []).append(RecordRef(key=key, source=source, source_id=source_id))
    for deal in listed:
        deal.name = names.get(deal.id) or ""
        deal.records = records.get(deal.id, [])


def utc_now() -> datetime:
    return datetime.now(timezone.utc)
