"""The plan's review page (`pipesync plan --html`), checked in real headless Chromium."""

from __future__ import annotations

from datetime import datetime, timezone

from pipesync.model import ChangeKind, FieldChange
from pipesync.pushback.plan import Plan, PlannedChange, Refusal
from pipesync.pushback.review import write_review
from tests.report.chromium import load, png_size, screenshot

HOSTILE = '<script>alert("xss")</script>'


def hostile_plan() -> Plan:
    changes = [
        PlannedChange(seq=1, source="hubspot", source_id="101", deal_key="hubspot:101", golden_id="gd_1",
                      kind=ChangeKind.SET_FIELDS, rule="write_back", reason="the consolidated figures",
                      fields=[FieldChange(field="custom:pipesync_golden_id", before=None, after="gd_1"),
                              FieldChange(field="custom:pipesync_also_in", before="x", after=HOSTILE)],
                      record_url="https://app.hubspot.com/contacts/1/record/0-3/101"),
        PlannedChange(seq=2, source="pipedrive", source_id="7", deal_key="pipedrive:7", kind=ChangeKind.CLOSE_LOST,
                      rule="close_stale", reason="no activity for 140 days \u202e reversed",
                      fields=[FieldChange(field="status", before="open", after="lost")]),
        PlannedChange(seq=3, source="hubspot", source_id="102", deal_key="hubspot:102", kind=ChangeKind.MERGE,
                      rule="duplicates", reason="a duplicate", merge_into="hubspot:101"),
    ]
    return Plan(plan_id="plan-test", created_at=datetime(2026, 12, 5, tzinfo=timezone.utc), warehouse="x",
                rules=["write_back", "close_stale", "duplicates"], changes=changes,
                refused=[Refusal(rule="duplicates", source="salesforce", reason="Salesforce cannot merge")])


def test_the_review_page_shows_every_change_escaped_with_links_and_no_console_message(tmp_path):
    page = write_review(hostile_plan(), tmp_path / "plan.html")
    html = page.read_text(encoding="utf-8")
    assert HOSTILE not in html and "&lt;script&gt;" in html and "<script" not in html
    assert 'href="https://app.hubspot.com/contacts/1/record/0-3/101"' in html
    run = load(page, tmp_path)
    assert run.console == []
    for text in ("write_back", "close_stale", "duplicates", "hubspot:102", "Left out", "Salesforce cannot merge"):
        assert text in run.dom
    shot = tmp_path / "plan.png"
    assert screenshot(page, shot, tmp_path) == [] and png_size(shot) == (1440, 900)
