"""The report in real headless Chromium: it renders without a console message, offline, at 1440×900."""

from __future__ import annotations

from html.parser import HTMLParser
from datetime import date
from pathlib import Path

import pytest

from pipesync.config import Settings, SourceConfig
from pipesync.metrics.periods import Period
from pipesync.report.builder import build_report
from tests.metrics.builders import NOW, DealRow, write_warehouse
from tests.metrics.conftest import quarter_deals
from tests.report.chromium import load, screenshot_kept

pytestmark = pytest.mark.browser

HOSTILE = '<script>alert("xss")</script>'
HOSTILE_OWNER = '"><img src=x onerror=alert(1)>@evil.example'
RIGHT_TO_LEFT_OVERRIDE = "Renewal \u202egpj.exe"  # shows as "Renewal exe.jpg" unless isolated


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("report")
    deals = quarter_deals() + [
        DealRow("hubspot:X1", "negotiation", "open", 70_000, "2026-06-01", name=HOSTILE, owner=HOSTILE_OWNER,
                stage_entered="2026-07-01", lead_source="<b>bold</b>", history=[("negotiation", "2026-07-01")]),
        DealRow("hubspot:X2", "negotiation", "open", 60_000, "2026-06-01", name=RIGHT_TO_LEFT_OVERRIDE,
                stage_entered="2026-07-01", history=[("negotiation", "2026-07-01")]),
    ]
    settings = write_warehouse(f"sqlite:///{work / 'warehouse.db'}", deals)
    settings = Settings(
        warehouse=settings.warehouse,
        sources=[
            SourceConfig(name="salesforce", type="salesforce", options={"instance_url": "https://acme.my.salesforce.com"}),
            SourceConfig(name="hubspot", type="hubspot", options={"portal_id": "123456"}),
        ],
    )
    return build_report(settings, work / "report.html", Period(date(2026, 10, 1), date(2026, 12, 31)), now=NOW)


def test_the_page_renders_without_console_messages_and_runs_its_script(report, tmp_path):
    page = load(report, tmp_path)
    assert page.console == []
    assert 'data-ready="1"' in page.dom  # set by the page's script once it ran to the end
    assert "Pipeline report" in page.dom


def test_screenshot_at_1440_by_900(report, tmp_path):
    assert screenshot_kept(report, "report-1440x900.png", tmp_path) == []


def test_every_value_is_escaped(report):
    html = report.read_text(encoding="utf-8")
    assert HOSTILE not in html and "&lt;script&gt;alert(&#34;xss&#34;)&lt;/script&gt;" in html
    # the owner is shown by name (here the address's local part, title-cased by the builder): escaped too
    assert "<img src=x" not in html.lower() and "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in html.lower()
    assert "<b>bold</b>" not in html
    assert html.count("<script") == 1


def test_user_text_is_isolated_so_an_override_character_cannot_reorder_the_page(report):
    html = report.read_text(encoding="utf-8")
    assert f"<td><bdi>{RIGHT_TO_LEFT_OVERRIDE}</bdi></td>" in html
    assert "unicode-bidi: isolate" in html


def test_the_font_stack_covers_cjk_hangul_and_arabic(report):
    html = report.read_text(encoding="utf-8")
    for family in ("Noto Sans CJK SC", "Malgun Gothic", "Noto Sans Arabic"):
        assert family in html


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def test_it_is_self_contained(report):
    parser = _Tags()
    parser.feed(report.read_text(encoding="utf-8"))
    # nothing is fetched: no stylesheet link, no script, image or frame source
    assert not [t for t, attrs in parser.tags if t == "link" or "src" in attrs]
    csp = next(attrs["content"] for t, attrs in parser.tags if t == "meta" and attrs.get("http-equiv") == "Content-Security-Policy")
    assert csp.startswith("default-src 'none'")


def test_listed_deals_link_back_to_their_crm_record(report):
    html = report.read_text(encoding="utf-8")
    # D2 is stuck and stale; its record is in HubSpot portal 123456
    assert 'href="https://app.hubspot.com/contacts/123456/record/0-3/D2"' in html


def test_an_empty_warehouse_still_gives_a_clean_page(tmp_path):
    settings = write_warehouse(f"sqlite:///{tmp_path / 'empty.db'}", [])
    report = build_report(settings, tmp_path / "empty.html", Period(date(2026, 10, 1), date(2026, 12, 31)), now=NOW)
    page = load(report, tmp_path)
    assert page.console == []
    assert 'data-ready="1"' in page.dom
    assert "No deals lost in the period." in page.dom


def test_a_page_that_throws_is_caught(tmp_path):
    # The check above must be able to fail: the same harness on a broken page.
    broken = tmp_path / "broken.html"
    broken.write_text("<html><body><script>notDefined();</script></body></html>", encoding="utf-8")
    page = load(broken, tmp_path)
    assert any("notDefined" in line for line in page.console)
