"""A file's won and lost deals count on the day they were won or lost, not the day they were expected to close.

The Pipedrive export below is written so that every closed deal's expected close date
falls in the other quarter than its won/lost time: read by the expected date, Q3's and
Q4's wins and losses would swap. Credits, blank amounts and columns the reader does not
find go through the same sync.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from pathlib import Path

from sqlalchemy import create_engine, select

from pipesync.config import load_config
from pipesync.metrics.periods import Period
from pipesync.metrics.run import run_metrics
from pipesync.sync import run_sync
from pipesync.warehouse import schema

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=timezone.utc)
Q3 = Period(date(2026, 7, 1), date(2026, 9, 30))
Q4 = Period(date(2026, 10, 1), date(2026, 12, 31))

HEADER = ("Deal - ID,Deal - Title,Deal - Owner,Deal - Stage,Deal - Status,Deal - Value,Deal - Currency,"
          "Deal - Deal created,Deal - Expected close date,Deal - Won time,Deal - Lost time\n")
ROWS = [
    # id, title, stage, status, value, currency, created, expected close, won time, lost time
    ("1", "Won in Q3, expected in Q4", "Negotiations Started", "won", "10000", "EUR", "2026-06-01 10:00:00", "2026-12-15", "2026-09-30 17:45:12", ""),
    ("2", "Won in Q4, expected in Q3", "Proposal Made", "won", "20000", "EUR", "2026-07-01 10:00:00", "2026-09-15", "2026-10-02 09:00:00", ""),
    ("3", "Lost in Q3, expected in Q4", "Qualified", "lost", "5000", "EUR", "2026-07-10 10:00:00", "2026-10-31", "", "2026-08-20 11:00:00"),
    ("4", "Lost in Q4, expected in Q3", "Qualified", "lost", "7000", "EUR", "2026-07-20 10:00:00", "2026-08-31", "", "2026-11-03 16:20:00"),
    ("5", "Open", "Proposal Made", "open", "3000", "EUR", "2026-10-05 10:00:00", "2026-11-30", "", ""),
    ("6", "A refund", "Negotiations Started", "won", "(1,500.00)", "EUR", "2026-08-01 10:00:00", "2026-09-01", "2026-09-02 10:00:00", ""),
    ("7", "No amount yet", "Proposal Made", "open", "", "EUR", "2026-10-06 10:00:00", "", "", ""),
]
MAPPING = """source: pd
parse:
  timezone: Europe/Berlin
pipelines:
  - id: "*"
    stages:
      - {label: Qualified, stage: qualification}
      - {label: Proposal Made, stage: proposal}
      - {label: Negotiations Started, stage: negotiation}
"""


def project(tmp_path: Path, url: str, export: str, mapping: str, fmt: str = "pipedrive_export") -> Path:
    (tmp_path / "mappings").mkdir()
    (tmp_path / "mappings" / "pd.yaml").write_text(mapping, encoding="utf-8")
    (tmp_path / "deals.csv").write_text(export, encoding="utf-8")
    config = tmp_path / "pipesync.yaml"
    config.write_text(f"warehouse: {url}\nreporting_currency: EUR\nmappings_dir: mappings\nsources:\n"
                      f"  - name: pd\n    type: csv\n    options: {{path: deals.csv, format: {fmt}}}\n", encoding="utf-8")
    return config


def pipedrive_export() -> str:
    return HEADER + "".join(f"{i},\"{t}\",Marie Durand,{s},{st},\"{v}\",{c},{cr},{e},{w},{lo}\n"
                            for i, t, s, st, v, c, cr, e, w, lo in ROWS)


def test_won_and_lost_deals_land_in_the_period_of_their_won_or_lost_day(tmp_path, warehouse_url):
    settings = load_config(project(tmp_path, warehouse_url, pipedrive_export(), MAPPING))
    result = run_sync(settings)
    counts = result.sources["pd"]
    assert (counts.inserted, counts.quarantined, counts.warnings) == (6, 1, [])

    engine = create_engine(warehouse_url)
    with engine.connect() as conn:
        d = schema.deals.c
        stored = {r.source_id: (r.close_date, r.actual_close_date, r.currency) for r in conn.execute(
            select(d.source_id, d.close_date, d.actual_close_date, d.currency))}
        (reason,) = conn.execute(select(schema.quarantine.c.field, schema.quarantine.c.reason)).all()
    engine.dispose()
    assert stored == {
        "1": (date(2026, 12, 15), date(2026, 9, 30), "EUR"),
        "2": (date(2026, 9, 15), date(2026, 10, 2), "EUR"),
        "3": (date(2026, 10, 31), date(2026, 8, 20), "EUR"),
        "4": (date(2026, 8, 31), date(2026, 11, 3), "EUR"),
        "5": (date(2026, 11, 30), None, "EUR"),
        "7": (None, None, "EUR"),  # no amount, and still its currency
    }
    assert reason.field == "amount"
    assert reason.reason.startswith("deals.csv row 7: amount: negative_amount: a credit or refund? set "
                                    "parse.negative_amounts: accept in pd.yaml")

    q3, q4 = run_metrics(settings, Q3, now=NOW), run_metrics(settings, Q4, now=NOW)
    figures = lambda m, *keys: tuple(m.total(k).value for k in keys)  # noqa: E731
    assert figures(q3, "won_count", "won_value", "lost_count") == (1, 10_000, 1)  # deal 1 won, deal 3 lost
    assert figures(q4, "won_count", "won_value", "lost_count") == (1, 20_000, 1)  # deal 2 won, deal 4 lost
    # cycles to the won day: deal 1 created 06-01, won 09-30 (121 days); deal 2 07-01 → 10-02 (93 days)
    assert figures(q3, "avg_sales_cycle_days") == (121,)
    assert figures(q4, "avg_sales_cycle_days") == (93,)


def test_credits_are_kept_where_the_mapping_accepts_them(tmp_path, warehouse_url):
    mapping = MAPPING.replace("parse:\n", "parse:\n  negative_amounts: accept\n")
    settings = load_config(project(tmp_path, warehouse_url, pipedrive_export(), mapping))
    assert run_sync(settings).sources["pd"].quarantined == 0
    q3 = run_metrics(settings, Q3, now=NOW)
    assert (q3.total("won_count").value, q3.total("won_value").value) == (2, 8_500)  # 10,000 and the refund


def test_a_list_of_columns_reads_the_first_one_filled(tmp_path, warehouse_url):
    export = ("id,name,stage,closed,when won,when lost,owner,created,value\n"
              "1,A,Won,2026-09-01,2026-09-30,,ann,2026-06-01,10\n"
              "2,B,Lost,2026-09-01,,2026-10-02,ann,2026-06-01,10\n"
              "3,C,Lost,2026-09-01,  ,,ann,2026-06-01,10\n")
    mapping = ("source: pd\nfields:\n  close_date: closed\n  actual_close_date: [when won, when lost]\n  owner_name: owner\n"
               "pipelines:\n  - id: \"*\"\n    stages:\n      - {label: Won, stage: closed_won}\n"
               "      - {label: Lost, stage: closed_lost}\n")
    settings = load_config(project(tmp_path, warehouse_url, export, mapping, fmt="generic"))
    assert run_sync(settings).sources["pd"].inserted == 3
    engine = create_engine(warehouse_url)
    with engine.connect() as conn:
        d = schema.deals.c
        actual = dict(conn.execute(select(d.source_id, d.actual_close_date)).all())
    engine.dispose()
    assert actual == {"1": date(2026, 9, 30), "2": date(2026, 10, 2), "3": None}


def test_sync_warns_of_a_field_the_metrics_need_that_every_row_leaves_empty(tmp_path, warehouse_url):
    # "Expected Closing" and "Rep" are headers the generic reader does not know; the amounts are all blank
    export = "id,name,stage,Expected Closing,Rep,created,amount\n1,A,Won,2026-09-01,ann,2026-06-01,\n2,B,Won,2026-09-02,bob,2026-06-02,\n"
    mapping = "source: pd\npipelines:\n  - id: \"*\"\n    stages:\n      - {label: Won, stage: closed_won}\n"
    settings = load_config(project(tmp_path, warehouse_url, export, mapping, fmt="generic"))
    warnings = run_sync(settings).sources["pd"].warnings
    assert [w["field"] for w in warnings] == ["amount", "close_date", "owner"]
    message = warnings[1]["message"]
    assert message.startswith("pd: no deal has a close date (all 2 are empty)")
    assert "won and lost deals by period" in message and "under fields: in pd.yaml" in message
