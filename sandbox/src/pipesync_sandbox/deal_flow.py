"""Years of deal flow whose outcomes follow stage- and age-dependent win rates the generator knows.

Deals are created at a steady rate and walk the shared pipeline's open stages in order. In each
stage a deal sits an exponentially distributed number of days; when it leaves, it goes on (from the
last stage: is won) with one chance if it left within the stage's ``young_days``, and with a much
lower one if it sat longer, else it is lost. So a deal 200 days in negotiation is far less likely to
be won than one that arrived yesterday, and :meth:`FlowRules.win_rate` says exactly how much: the
figures a forecast learned from the warehouse's stage history should recover. Each deal's expected
close date is the rep's guess when it was created (created + ``expected_days``), never moved.

``write_warehouse`` stores a flow as canonical deals with their stage history (and, with
``golden=True``, as one golden deal per record), for the forecast's tests and bench.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

DAY = 86_400.0


@dataclass(frozen=True)
class FlowRules:
    stages: tuple[str, ...] = ("prospecting", "qualification", "discovery", "proposal", "negotiation")
    mean_days: tuple[float, ...] = (12.0, 14.0, 16.0, 14.0, 12.0)
    young_days: tuple[float, ...] = (20.0, 25.0, 30.0, 25.0, 20.0)
    go_on_young: tuple[float, ...] = (0.70, 0.70, 0.75, 0.75, 0.80)
    go_on_old: tuple[float, ...] = (0.25, 0.20, 0.25, 0.20, 0.15)
    expected_days: float = 75.0  # the rep's guess of the time to close, from creation
    sources: tuple[str, ...] = ("salesforce", "hubspot")

    def go_on(self, stage: int, days_in: float) -> float:
        """The chance that a deal ``days_in`` days into ``stage`` goes on from it (is won, from the last)."""
        mu, young = self.mean_days[stage], self.young_days[stage]
        if days_in >= young:
            return self.go_on_old[stage]
        still_young = 1 - math.exp(-(young - days_in) / mu)  # leaves before it turns old (memoryless)
        return self.go_on_young[stage] * still_young + self.go_on_old[stage] * (1 - still_young)

    def win_rate(self, stage: int, days_from: float, days_to: float | None = None) -> float:
        """The chance that a deal in ``stage`` for between ``days_from`` and ``days_to`` days is won.

        Deals in a stage are spread over their days in it as the survival of the stay, e^(−x/mean):
        the mix a forecast sees at any instant of a steady flow.
        """
        mu = self.mean_days[stage]
        hi = days_to if days_to is not None else days_from + 20 * mu
        xs = np.linspace(days_from, hi, 2001)
        weights = np.exp(-xs / mu)
        here = float(np.sum([self.go_on(stage, x) for x in xs] * weights) / np.sum(weights))
        return here * math.prod(self.go_on(s, 0.0) for s in range(stage + 1, len(self.stages)))


@dataclass
class Flow:
    """One deal per index; the history lists every stage entry."""

    now: float  # day number
    created: np.ndarray  # day numbers
    amount: np.ndarray
    source: np.ndarray  # index into rules.sources
    status: np.ndarray  # 0 open, 1 won, 2 lost
    stage: np.ndarray  # index into rules.stages while open
    entered: np.ndarray  # day the deal entered its current stage (or closed)
    expected_close: np.ndarray  # day number
    history_deal: np.ndarray
    history_stage: np.ndarray  # index into rules.stages; len(stages) = won, len(stages) + 1 = lost
    history_at: np.ndarray


def simulate(rules: FlowRules, seed: int, deals: int, *, years: float = 3.0, now: datetime = datetime(2026, 11, 22, tzinfo=UTC)) -> Flow:
    rng = np.random.default_rng(seed)
    today = now.timestamp() / DAY
    created = np.sort(today - rng.uniform(0, years * 365.25, deals))
    amount = np.round(np.exp(rng.normal(math.log(20_000), 0.6, deals)), 2)
    source = rng.integers(0, len(rules.sources), deals)
    n_stages = len(rules.stages)
    status = np.zeros(deals, dtype=np.int8)
    stage = np.zeros(deals, dtype=np.int64)
    at = created.copy()
    h_deal, h_stage, h_at = [np.arange(deals)], [np.zeros(deals, dtype=np.int64)], [created.copy()]
    walking = np.ones(deals, dtype=bool)
    for s in range(n_stages):
        here = walking & (stage == s)
        stay = rng.exponential(rules.mean_days[s], deals)
        leaves = here & (at + stay < today)
        chance = np.where(stay < rules.young_days[s], rules.go_on_young[s], rules.go_on_old[s])
        go_on = leaves & (rng.random(deals) < chance)
        lost = leaves & ~go_on
        at = np.where(leaves, at + stay, at)
        status[lost] = 2
        if s == n_stages - 1:
            status[go_on] = 1
        else:
            stage[go_on] = s + 1
        for mask, code in ((go_on, s + 1 if s < n_stages - 1 else n_stages), (lost, n_stages + 1)):
            idx = np.flatnonzero(mask)
            h_deal.append(idx)
            h_stage.append(np.full(len(idx), code))
            h_at.append(at[idx])
        walking &= ~leaves | (go_on & (s < n_stages - 1))
    expected = np.floor(created + rng.normal(rules.expected_days, 20.0, deals))
    deal, code, when = np.concatenate(h_deal), np.concatenate(h_stage), np.concatenate(h_at)
    order = np.lexsort((when, deal))
    return Flow(today, created, amount, source, status, stage, at, expected, deal[order], code[order], when[order])


def write_warehouse(url: str, flow: Flow, rules: FlowRules, *, golden: bool = False, chunk: int = 50_000) -> None:
    """Stores the flow in the (new) warehouse at ``url``: deals with their stage history, and with
    ``golden`` one golden deal per record, as consolidation would write for records with no twin."""
    from sqlalchemy import create_engine, insert

    from pipesync.warehouse import schema, version

    keys = rules.stages + ("closed_won", "closed_lost")
    status_word = np.array(["open", "won", "lost"], dtype=object)
    when = lambda day: datetime.fromtimestamp(float(day) * DAY, UTC)  # noqa: E731
    synced = datetime.fromtimestamp(flow.now * DAY, UTC)
    engine = create_engine(url)
    with engine.begin() as conn:
        version.create(conn)
    n = len(flow.created)
    for lo in range(0, n, chunk):
        rows = []
        for i in range(lo, min(n, lo + chunk)):
            closed = flow.status[i] != 0
            key = f"{rules.sources[flow.source[i]]}:{i}"
            stage = keys[len(rules.stages) + int(flow.status[i]) - 1] if closed else rules.stages[flow.stage[i]]
            day = datetime.fromtimestamp(float(flow.expected_close[i]) * DAY, UTC).date()
            rows.append({
                "key": key, "source": rules.sources[flow.source[i]], "source_id": str(i), "name": f"Deal {i}",
                "pipeline": "default", "source_stage": stage, "stage": stage, "status": status_word[flow.status[i]],
                "amount": float(flow.amount[i]), "currency": "USD", "amount_reporting": float(flow.amount[i]),
                "close_date": day, "actual_close_date": when(flow.entered[i]).date() if closed else None,
                "created_at": when(flow.created[i]), "updated_at": when(flow.entered[i]),
                "stage_entered_at": when(flow.entered[i]), "owner_email": f"owner{i % 12}@example.com",
                "owner_name": f"Owner {i % 12}", "contact_emails": [], "external_refs": [], "is_deleted": False,
                "raw": {}, "content_hash": "x", "synced_at": synced,
            })
        with engine.begin() as conn:
            conn.execute(insert(schema.deals), rows)
            if golden:
                conn.execute(insert(schema.golden_deals), [
                    {k: v for k, v in r.items() if k not in ("key", "source_id", "raw", "content_hash", "synced_at")}
                    | {"golden_id": f"g{r['source_id']}", "members": [r["key"]], "provenance": {}, "conflicts": []}
                    for r in rows
                ])
                conn.execute(insert(schema.deal_links), [{"deal_key": r["key"], "golden_id": f"g{r['source_id']}", "score": 1.0, "rule": "alone"} for r in rows])
    history_key = np.array([f"{rules.sources[s]}:{i}" for i, s in enumerate(flow.source)], dtype=object)[flow.history_deal]
    for lo in range(0, len(flow.history_deal), chunk):
        with engine.begin() as conn:
            conn.execute(insert(schema.stage_history), [
                {"deal_key": history_key[j], "from_stage": None, "to_stage": keys[flow.history_stage[j]],
                 "changed_at": when(flow.history_at[j]), "origin": "source_history"}
                for j in range(lo, min(len(flow.history_deal), lo + chunk))
            ])
    engine.dispose()
