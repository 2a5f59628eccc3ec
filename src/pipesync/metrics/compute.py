"""Pipeline metrics for a period and a view, computed on the consolidated truth.

Everything is vectorised over the deal set (numpy), so a million deals take
seconds. docs/metrics.md states each definition exactly as computed here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime

import numpy as np
from sqlalchemy import select
from sqlalchemy.engine import Connection

from pipesync.errors import ConfigError
from pipesync.metrics import attention, dealset, stageflow
from pipesync.metrics.asof import State, state_at
from pipesync.metrics.dealset import LOST, WON, DealSet, History, day_number
from pipesync.metrics.definitions import (
    ALL_SEGMENT,
    DAYS_PER_MONTH,
    HEADLINE,
    MIN_CLOSED_FOR_RATE,
    STAGE_CONVERSIONS,
    VIEWS,
    StageConversion,
)
from pipesync.metrics.grouped import group_count, group_sum
from pipesync.metrics.periods import Period, compare
from pipesync.metrics.results import (
    DealList,
    Figure,
    FlaggedDeal,
    FunnelStep,
    LeadSourceWinRate,
    LostReason,
    Metrics,
    PeriodFigures,
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


def load_truth(conn: Connection, pipeline: SharedPipeline, since: date, *, owners: bool = True) -> Truth:
    """The deal set for periods starting on or after ``since`` (older closed deals cannot count in them).

    ``owners=False`` leaves out the owner segment (matching owners across systems costs seconds at a
    million deals) for a caller that does not split by owner."""
    deals, history = dealset.load(conn, pipeline, since, owners=owners)
    return Truth(deals, history, StageTable.of(pipeline))


@dataclass
class PeriodState:
    """Per-deal facts about one period, shared by every view."""

    at_end: State  # the deals as they stood at the period's as-of instant (its end, or earlier)
    velocity_open: np.ndarray  # open at the end and not parked
    created_in: np.ndarray
    won_in: np.ndarray
    lost_in: np.ndarray
    cycle_days: np.ndarray  # close date − created date, for won deals
    start: float
    before: float  # the as-of instant: the first day after the period, or earlier


def period_state(truth: Truth, period: Period, as_of: float) -> PeriodState:
    """The period measured up to ``as_of`` (a day number; its end when that is earlier)."""
    d, st = truth.deals, truth.stages
    start, before = day_number(period.start), min(day_number(period.end) + 1, as_of)
    at_end = state_at(d, truth.history, st, before)
    with np.errstate(invalid="ignore"):
        closed_in = (d.close_day >= start) & (d.close_day < before)
        created_in = ~np.isnan(d.created) & (d.created >= start) & (d.created < before)
    won_in = closed_in & (d.status == WON)
    cycle = np.maximum(0.0, d.close_day - np.floor(d.created))
    return PeriodState(
        at_end=at_end,
        velocity_open=at_end.open & ~st.parked[at_end.stage],
        created_in=created_in,
        won_in=won_in,
        lost_in=closed_in & (d.status == LOST),
        cycle_days=cycle,
        start=start,
        before=before,
    )


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


def headline(truth: Truth, s: PeriodState, codes: np.ndarray, n: int, flags: dict[str, np.ndarray] | None) -> dict[str, np.ndarray]:
    """Each headline metric per segment (``codes`` gives each deal's segment)."""
    amount = np.nan_to_num(truth.deals.amount)
    priced = ~np.isnan(truth.deals.amount)
    prob = truth.stages.probability[s.at_end.stage]

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
        "open_pipeline_value": total(amount, s.at_end.open),
        "open_pipeline_count": count(s.at_end.open),
        "weighted_pipeline": total(amount * prob, s.at_end.open),
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
    for g, (codes, names) in enumerate(groupings):
        now_figs = headline(truth, cur, codes, len(names), flags)
        prev_figs = headline(truth, prev, codes, len(names), None)
        few = np.zeros(len(names), dtype=bool)
        if g:  # a group of the view, not the whole deal set
            few = _withhold_small_rates(now_figs)
            _withhold_small_rates(prev_figs)
        rows = [
            SegmentMetrics(
                segment=name,
                metrics={m.key: figure(now_figs[m.key][i], prev_figs[m.key][i] if m.compared else None) for m in HEADLINE},
                few_closed=bool(few[i]),
            )
            for i, name in enumerate(names)
        ]
        result.extend(sorted(rows, key=lambda r: (-(r.metrics["open_pipeline_value"].value or 0), r.segment)))
    return result


def _withhold_small_rates(figures: dict[str, np.ndarray]) -> np.ndarray:
    """Withholds the win rate of each group with fewer closed deals than MIN_CLOSED_FOR_RATE; which ones."""
    few = figures["won_count"] + figures["lost_count"] < MIN_CLOSED_FOR_RATE
    figures["win_rate"] = np.where(few, np.nan, figures["win_rate"])
    return few


def _pipeline_by_stage(truth: Truth, s: PeriodState) -> list[StagePipeline]:
    st = truth.stages
    n = len(st.category)
    stage = st.slots(s.at_end.stage[s.at_end.open])
    amount = np.nan_to_num(truth.deals.amount)[s.at_end.open]
    counts = group_count(stage, n)
    values = group_sum(amount, stage, n)
    weighted = group_sum(amount * st.probability[stage], stage, n)
    return [
        StagePipeline(stage=stage_.key, label=stage_.label, count=int(counts[i]), value=float(values[i]), weighted=float(weighted[i]))
        for i, stage_ in enumerate(st.pipeline.stages)
        if stage_.category is Category.OPEN
    ]


def _funnel(truth: Truth, cur: PeriodState, prev: PeriodState, definition: StageConversion) -> list[FunnelStep]:
    st, n = truth.stages, len(truth.deals)

    def counts(s: PeriodState) -> tuple[np.ndarray, np.ndarray]:
        """(reached, went on) per step, as floats for the ratios."""
        if definition == "cohort":
            entered, went_on = stageflow.stage_cohorts(truth.history, st, s.start, s.before)
            return entered.astype(float), went_on.astype(float)
        parked = s.at_end.open & st.parked[s.at_end.stage]
        reached = stageflow.funnel_counts(truth.history, st, n, s.start, s.before, parked).astype(float)
        return reached, np.append(reached[1:], np.nan)

    (reached, went_on), (prev_reached, prev_went_on) = counts(cur), counts(prev)
    conversion, prev_conversion = _ratio(went_on, reached), _ratio(prev_went_on, prev_reached)
    share = _ratio(reached, np.full_like(reached, reached[0]))
    steps = []
    for k, code in enumerate(st.funnel_stages):
        last = k == len(st.funnel_stages) - 1
        steps.append(
            FunnelStep(
                stage=st.key(code),
                label="Won" if last else st.label(code),
                reached=int(reached[k]),
                went_on=None if last else int(went_on[k]),
                conversion=None if last else _number(conversion[k]),
                share_of_first=_number(share[k]),
                previous_reached=int(prev_reached[k]),
                previous_conversion=None if last else _number(prev_conversion[k]),
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
        LeadSourceWinRate(
            lead_source=lead.labels[i], won=int(won[i]), lost=int(lost[i]),
            win_rate=None if few else float(won[i] / (won[i] + lost[i])), few_closed=few,
        )
        for i in range(n)
        if won[i] + lost[i]
        for few in [bool(won[i] + lost[i] < MIN_CLOSED_FOR_RATE)]
    ]
    return sorted(rows, key=lambda r: (-(r.won + r.lost), r.lead_source))


def _deal_list(truth: Truth, mask: np.ndarray, stage: np.ndarray, limit: int, describe: Describe) -> DealList:
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
                id=d.ids[i], name="", source=sources.labels[sources.codes[i]], stage=truth.stages.key(int(stage[i])),
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
    stage_conversion: StageConversion = "cohort",
    limit: int = 50,
) -> Metrics:
    """The metrics of ``period`` for ``view`` as of the instant ``now``, against the previous period.

    When ``now`` falls inside the period, the previous period is measured up to the
    same point (periods.compare). Pure: reads nothing, writes nothing, and the wall
    clock plays no part.
    """
    if view not in VIEWS:
        raise ConfigError(f"unknown view {view!r}: use one of {', '.join(VIEWS)}")
    if stage_conversion not in STAGE_CONVERSIONS:
        raise ConfigError(f"unknown stage conversion {stage_conversion!r}: use one of {', '.join(STAGE_CONVERSIONS)}")
    d, st = truth.deals, truth.stages
    c = compare(period, now)
    cur, prev = period_state(truth, period, _day(c.as_of)), period_state(truth, c.previous, _day(c.previous_as_of))
    # Stuck, stale and suspicious are about the as-of instant itself, whatever the period.
    now_state = cur.at_end if c.to_date else state_at(d, truth.history, st, _day(now))
    stage = np.where(now_state.open, now_state.stage, d.stage)

    stuck_mask, stage_days = attention.stuck(now_state, st)
    stale_mask, touch_days = attention.stale(now_state, st, stale_after_days)
    owners = d.segments["owner"]
    candidates = now_state.open | cur.won_in | cur.lost_in
    baseline = np.where(now_state.existed, d.amount, np.nan)  # a deal created later is no evidence yet
    verdict = suspicious_amounts(baseline, owners.codes, len(owners.labels), stage, len(st.pipeline.stages), candidates)
    flags = {"stuck_deals": stuck_mask, "stale_deals": stale_mask, "suspicious_amounts": verdict.flagged}

    def stuck_reason(i: int) -> tuple[str, float, None]:
        sla = int(st.sla_days[stage[i]])
        return f"{stage_days[i]:.0f} days in {st.label(int(stage[i]))} (SLA {sla} days)", float(stage_days[i]), None

    def stale_reason(i: int) -> tuple[str, float, None]:
        return f"no activity or update for {touch_days[i]:.0f} days", float(touch_days[i]), None

    def suspicious_reason(i: int) -> tuple[str, None, float]:
        typical = float(verdict.typical[i])
        factor = d.amount[i] / typical
        shown = f"{factor:.0f}×" if factor >= 1 else f"1/{1 / factor:.0f}"
        group = "the owner's deals in this stage" if verdict.within_stage[i] else "the owner's deals"
        return f"{shown} the typical size of {group} ({typical:,.0f} {reporting_currency})", None, typical

    return Metrics(
        period=PeriodInfo(start=period.start, end=period.end, to_date=c.to_date),
        previous_period=PeriodInfo(start=c.previous.start, end=c.previous_through, to_date=c.to_date),
        as_of=now,
        view=view,
        deal_set=d.kind,
        reporting_currency=reporting_currency,
        stage_conversion=stage_conversion,
        segments=_segments(truth, cur, prev, view, flags),
        pipeline_by_stage=_pipeline_by_stage(truth, cur),
        funnel=_funnel(truth, cur, prev, stage_conversion),
        days_in_stage=_days_in_stage(truth, cur, prev),
        lost_reasons=_lost_reasons(truth, cur),
        win_rate_by_lead_source=_win_rate_by_lead_source(truth, cur),
        stuck_deals=_deal_list(truth, stuck_mask, stage, limit, stuck_reason),
        stale_deals=_deal_list(truth, stale_mask, stage, limit, stale_reason),
        suspicious_amounts=_deal_list(truth, verdict.flagged, stage, limit, suspicious_reason),
    )


def trend(truth: Truth, periods: Sequence[Period], now: datetime, keys: Sequence[str]) -> list[PeriodFigures]:
    """The whole deal set's ``keys`` for each period, each measured as of ``now`` or its end if earlier."""
    whole = np.zeros(len(truth.deals), dtype=np.int64)
    points = []
    for p in periods:
        c = compare(p, now)
        figures = headline(truth, period_state(truth, p, _day(c.as_of)), whole, 1, None)
        info = PeriodInfo(start=p.start, end=p.end, to_date=c.to_date)
        points.append(PeriodFigures(period=info, values={k: _number(figures[k][0]) for k in keys}))
    return points


def _day(instant: datetime) -> float:
    return instant.timestamp() / 86400.0


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
