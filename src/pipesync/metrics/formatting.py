"""How a figure is shown to people (CLI table, HTML report): one place, so both agree."""

from __future__ import annotations

from pipesync.metrics.definitions import Unit


def format_value(value: float | None, unit: Unit, currency: str = "") -> str:
    if value is None:
        return "–"
    if unit == "ratio":
        return f"{value:.1%}"
    if unit == "count":
        return f"{value:,.0f}"
    if unit == "days":
        return f"{value:,.1f} d"
    suffix = {"money": "", "money_per_day": " / day", "money_per_month": " / month"}[unit]
    return f"{_compact(value)} {currency}{suffix}".replace("  ", " ").strip()


def format_delta(delta: float | None, pct: float | None, unit: Unit, currency: str = "") -> str:
    """'+12.0% (+3,400 USD)'-style change; ratios change in percentage points."""
    if delta is None:
        return ""
    if unit == "ratio":
        return f"{delta * 100:+.1f} pts"
    shown = f"{_sign(delta)}{format_value(abs(delta), unit, currency)}"
    return shown + (f" ({_sign(pct)}{abs(pct):.1f}%)" if pct is not None else "")


def _sign(x: float) -> str:
    return "+" if x >= 0 else "−"


def _compact(value: float) -> str:
    magnitude = abs(value)
    for limit, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if magnitude >= limit:
            scaled = value / limit
            # three significant figures: 3.29B, 41.3M, 413M
            decimals = 0 if abs(scaled) >= 100 else 1 if abs(scaled) >= 10 else 2
            return f"{scaled:,.{decimals}f}{suffix}"
    return f"{value:,.0f}"
