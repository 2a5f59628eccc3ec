"""The report's forecast section in real headless Chromium, on a generated multi-year world."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from pipesync.config import ForecastSettings, Settings, Target
from pipesync.metrics.periods import Period, end_of_day
from pipesync.report.builder import build_report
from pipesync_sandbox.deal_flow import FlowRules, simulate, write_warehouse
from tests.report.chromium import load, screenshot_kept

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("forecast-report")
    rules = FlowRules()
    write_warehouse(f"sqlite:///{work / 'warehouse.db'}", simulate(rules, 11, 6_000), rules)
    settings = Settings(
        warehouse=f"sqlite:///{work / 'warehouse.db'}",
        forecast=ForecastSettings(targets=[Target(period="2026-Q4", amount=1_500_000), Target(period="2027-Q1", amount=1_400_000)]),
    )
    return build_report(settings, work / "report.html", Period(date(2026, 10, 1), date(2026, 12, 31)), now=end_of_day(date(2026, 11, 22)))


def test_the_forecast_section_renders_without_console_messages(report, tmp_path):
    page = load(report, tmp_path)
    assert page.console == []
    assert 'data-ready="1"' in page.dom
    assert "<h2>Forecast</h2>" in page.dom and "<h2>Forecast vs actual</h2>" in page.dom
    for label in ("2026-Q4 (current)", "2027-Q1", "2025-Q4", "2026-Q3", "Mean abs. error", "Target"):
        assert label in page.dom
    assert "lowest backtest error on this warehouse" in page.dom


def test_screenshot_of_the_forecast_at_1440_by_900(report, tmp_path):
    assert screenshot_kept(report, "forecast-1440x900.png", tmp_path) == []
