"""A small project whose one source is a CSV export the tests rewrite: what issue 15's attacks start from."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, select

from pipesync.config import load_config
from pipesync.warehouse import schema as t

HEADER = ["id", "name", "stage", "amount", "currency", "updated"]
STAGES = {"Lead": "qualification", "Proposal": "proposal", "Negotiation": "negotiation", "Won": "closed_won"}
PAGE_SIZE = 5


def make_project(folder: Path, url: str) -> Path:
    """pipesync.yaml and the mapping of source ``crm`` (``crm.csv``, pages of 5 rows) in ``folder``."""
    (folder / "pipesync.yaml").write_text(
        f"warehouse: {url}\nreporting_currency: USD\nfx_rates: {{EUR: 1.1}}\nmappings_dir: .\n"
        f"sources:\n  - name: crm\n    type: csv\n    options: {{path: crm.csv, format: generic, page_size: {PAGE_SIZE}}}\n"
    )
    stages = "".join(f"      - {{label: {label}, stage: {key}}}\n" for label, key in STAGES.items())
    (folder / "crm.yaml").write_text(f"source: crm\npipelines:\n  - id: \"*\"\n    stages:\n{stages}")
    return folder / "pipesync.yaml"


def deal_rows(n: int, *, version: int = 1) -> list[list[str]]:
    """``n`` deals; in version 2 every third one moved on a stage, a day later."""
    labels = list(STAGES)
    out = []
    for i in range(1, n + 1):
        stage = (i + (version > 1 and i % 3 == 0)) % 3
        out.append([str(1000 + i), f"Deal {i} café", labels[stage], f"{i * 100}.50", "EUR" if i % 2 else "USD", f"2026-11-{version:02d} 10:{i % 60:02d}"])
    return out


def csv_text(rows: list[list[str]], header: list[str] = HEADER) -> str:
    return "".join(",".join(r) + "\r\n" for r in [header, *rows])


def write(folder: Path, text: str | bytes) -> None:
    path = folder / "crm.csv"
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))


def settings_of(folder: Path, url: str):
    settings = load_config(folder / "pipesync.yaml")
    settings.warehouse = url
    return settings


VOLATILE = {"synced_at", "id", "first_seen", "last_seen", "discovered_at"}


def tables(url: str, which=(t.deals, t.stage_history, t.quarantine)) -> dict[str, list[dict]]:
    """The tables' rows, without what differs between two runs of the same data (times of writing, ids)."""
    engine = create_engine(url)
    with engine.connect() as conn:
        out = {
            table.name: sorted(
                ({k: v for k, v in r._mapping.items() if k not in VOLATILE} for r in conn.execute(select(table))),
                key=repr,
            )
            for table in which
        }
    engine.dispose()
    return out


def deals(url: str) -> dict[str, dict]:
    return {r["key"]: r for r in tables(url, [t.deals])["deals"]}
