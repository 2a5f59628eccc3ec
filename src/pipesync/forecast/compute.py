"""Each method's forecast of each period, from the deal set as it stood at an instant, and the backtest.

Pure: reads nothing, writes nothing; ``run.forecast`` loads the truth and calls these.
docs/forecast.md defines every figure exactly as computed here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipesync.config import ForecastSettings
from pipesync.forecast.history import LEVELS, Learned, Situations, Window, chances, learn
from pipesync.forecast.periods import following, label, preceding
from pipesync.forecast.results import METHODS, Backtest, BacktestPeriod, MethodScore, PeriodKind
from pipesync.metrics.dealset import WON, day_number
from pipesync.metrics.grouped import group_count, group_sum
from pipesync.metrics.periods import Period

PERIODS_PER_YEAR = {"quarter": 4, "month": 12}


@dataclass
class Projection:
    """Per forecast period, one array per figure with a value per segment."""

    figures: list[dict[str, np.ndarray]]
    levels: np.ndarray  # the open deals by the history level that priced their chance in the first period with time left


def windows_of(t: float, periods: list[Period]) -> list[Window]:
    """The part of each period from ``t`` on: the first from ``t`` to its end (empty once it is over)."""
    windows = []
    for p in periods:
        start, end = day_number(p.start), day_number(p.end) + 1
        windows.append(Window(min(max(start, t), end), end))
    return windows


def learning_instants(t: float, periods: list[Period], kind: PeriodKind, years: int) -> list[tuple[float, list[Window]]]:
    """The same point of each earlier period (as many days in, at most its length), with the windows of
    the periods that followed it as they follow the first."""
    elapsed = t - day_number(periods[0].start)
    instants = []
    for before in preceding(periods[0], kind, years * PERIODS_PER_YEAR[kind]):
        start = day_number(before.start)
        at = start + min(elapsed, day_number(before.end) + 1 - start)
        instants.append((at, windows_of(at, following(before, kind, len(periods)))))
    return instants


def project(
    situations: Situations, learned: Learned, t: float, periods: list[Period], segments: np.ndarray,
    n_segments: int, settings: ForecastSettings,
) -> Projection:
    """Every method's figures for each period, per segment, as of ``t``."""
    d, st = situations.truth.deals, situations.truth.stages
    s = situations.at(t)
    amount = np.nan_to_num(d.amount)
    seg, value = segments[s.deals], amount[s.deals]
    prob = st.probability[s.stage]
    windows = windows_of(t, periods)
    # Each open deal's period by its expected close date; one already past or unknown is late, not gone:
    # it is expected in the first period with time left.
    first = next((k for k, w in enumerate(windows) if w.end > w.start), len(windows))
    expected = d.expected_close[s.deals]
    with np.errstate(invalid="ignore"):
        period_of = np.searchsorted([w.end for w in windows], expected, side="right")
        period_of[np.isnan(expected) | (expected < t)] = first
    period_of[period_of == len(windows)] = -1  # after the last period forecast
    commit, best = prob >= settings.commit_from, prob >= settings.best_case_from
    won = d.status == WON

    def total(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return group_sum(values[mask], seg[mask], n_segments)

    figures, levels = [], np.zeros(len(LEVELS), dtype=np.int64)
    for k, (p, w) in enumerate(zip(periods, windows)):
        with np.errstate(invalid="ignore"):
            won_in = won & (d.close_day >= day_number(p.start)) & (d.close_day < w.start)
        won_so_far = group_sum(amount[won_in], segments[won_in], n_segments)
        here = period_of == k
        chance, level = chances(learned, s, k, settings.min_sample)
        fallback = level == len(LEVELS) - 1
        chance = np.where(fallback, prob * here, chance)
        if k == first:
            levels = np.bincount(level, minlength=len(LEVELS))
        new = learned.new_value[k] if k < len(learned.new_value) else np.zeros(n_segments)
        figures.append({
            "won_so_far": won_so_far,
            "open_deals": group_count(seg[here], n_segments).astype(float),
            "open_value": total(value, here),
            "stage_weighted": won_so_far + total(value * prob, here),
            "history_weighted": won_so_far + group_sum(value * chance, seg, n_segments) + new,
            "new_deals": new,
            "commit": won_so_far + total(value, here & commit),
            "best_case": won_so_far + total(value, here & best),
            "pipeline": won_so_far + total(value, here),
        })
    return Projection(figures, levels)


def backtest(
    situations: Situations, current: Period, kind: PeriodKind, count: int, settings: ForecastSettings,
) -> Backtest:
    """Each of the ``count`` periods before ``current`` forecast as of its first day, from what was known
    then, against the won value it actually closed."""
    d = situations.truth.deals
    n = len(d)
    whole = np.zeros(n, dtype=np.int64)
    amount = np.nan_to_num(d.amount)
    rows = []
    for p in reversed(preceding(current, kind, count)):
        t = day_number(p.start)
        instants = learning_instants(t, [p], kind, settings.history_years)
        learned = learn(situations, instants, whole, 1, known_by=t)
        figures = project(situations, learned, t, [p], whole, 1, settings).figures[0]
        with np.errstate(invalid="ignore"):
            won_in = (d.status == WON) & (d.close_day >= t) & (d.close_day < day_number(p.end) + 1)
        actual = float(amount[won_in].sum())
        forecasts = {m: float(figures[m][0]) for m in METHODS}
        errors = {m: (100.0 * (f - actual) / actual if actual else None) for m, f in forecasts.items()}
        rows.append(BacktestPeriod(label=label(p, kind), start=p.start, end=p.end, actual=actual, forecasts=forecasts, errors_pct=errors))
    scores = []
    for m in METHODS:
        errors = [e for r in rows if (e := r.errors_pct[m]) is not None]
        scores.append(MethodScore(
            method=m, periods=len(errors), bias_pct=float(np.mean(errors)) if errors else None,
            mape_pct=float(np.mean(np.abs(errors))) if errors else None,
        ))
    return Backtest(periods=rows, methods=scores)


def best_method(bt: Backtest) -> tuple[str, str]:
    """The method with the lowest backtest MAPE, and why it was chosen, in words."""
    scored = [s for s in bt.methods if s.mape_pct is not None]
    if not scored:
        return "stage_weighted", "no past period with won deals to backtest on yet: the shared pipeline's stage probabilities"
    best = min(scored, key=lambda s: (s.mape_pct, METHODS.index(s.method)))  # type: ignore[arg-type]
    return best.method, (
        f"lowest backtest error on this warehouse: {best.mape_pct:.1f}% mean absolute percentage error "
        f"over the last {best.periods} period{'s' if best.periods != 1 else ''}"
    )
