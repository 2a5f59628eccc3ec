"""On a generated multi-year world (pipesync_sandbox.deal_flow), the history-weighted method recovers
the win rates the generator drew outcomes from, and backtests better than the stage-weighted one.

Seed 11 is the world the generator's rules and the method were developed on; seed 23 is held out:
nothing was tuned on it.
"""

from __future__ import annotations

import math
from datetime import date

import pytest

from pipesync.config import Settings
from pipesync.forecast import forecast
from pipesync_sandbox.deal_flow import FlowRules, simulate, write_warehouse

RULES = FlowRules()


@pytest.fixture(scope="module", params=[11, 23], ids=["seed11", "heldout23"])
def world(request, tmp_path_factory):
    path = tmp_path_factory.mktemp(f"flow{request.param}") / "warehouse.db"
    write_warehouse(f"sqlite:///{path}", simulate(RULES, request.param, 25_000), RULES)
    return forecast(Settings(warehouse=f"sqlite:///{path}"), as_of=date(2026, 11, 22))


def test_learned_win_rates_recover_the_generators(world):
    checked = 0
    for rate in world.history.rates:
        if rate.observations < 150:
            continue
        known = RULES.win_rate(RULES.stages.index(rate.stage), rate.days_from, rate.days_to)
        # a deal is seen at several instants, so observations are not independent: four standard errors
        tolerance = 4 * math.sqrt(known * (1 - known) / rate.observations)
        assert abs(rate.won_rate - known) <= tolerance, (rate, known)
        checked += 1
    assert checked >= 10  # the first two or three day ranges of every stage
    # and they say what the stage alone cannot: a deal long in negotiation is far less likely to be won
    negotiation = {r.days_from: r.won_rate for r in world.history.rates if r.stage == "negotiation"}
    assert negotiation[0] > 2 * negotiation[15]


def test_history_weighted_beats_stage_weighted_over_the_last_four_quarters(world):
    scores = {m.method: m for m in world.backtest.methods}
    assert scores["history_weighted"].periods == scores["stage_weighted"].periods == 4
    assert scores["history_weighted"].mape_pct < scores["stage_weighted"].mape_pct
    assert world.method == "history_weighted"
    print(f"MAPE over the last 4 quarters: history-weighted {scores['history_weighted'].mape_pct:.1f}%, "
          f"stage-weighted {scores['stage_weighted'].mape_pct:.1f}%")
