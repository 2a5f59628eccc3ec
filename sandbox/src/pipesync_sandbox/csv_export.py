"""Synthetic CSV exports in the shape a CRM writes them, for tests and benchmarks.

``write_export(path, n, seed)`` writes a Pipedrive-style deals export of ``n``
rows with a matching mapping file; ``version`` moves some deals to later stages
so that a second export of the "same" CRM has real changes in it.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path

STAGES = ["Lead In", "Contact Made", "Qualified", "Proposal Made", "Negotiations Started"]
SHARED = ["prospecting", "discovery", "qualification", "proposal", "negotiation"]
HEADER = [
    "Deal - ID", "Deal - Title", "Deal - Pipeline", "Deal - Stage", "Deal - Status", "Deal - Value", "Deal - Currency",
    "Deal - Expected close date", "Deal - Deal created", "Deal - Update time", "Deal - Owner", "Deal - Organization",
    "Deal - Lost reason", "Deal - Source channel",
]
MAPPING = "parse:\n  date_order: YMD\npipelines:\n  - id: Sales\n    stages:\n" + "".join(
    f"      - {{label: {label}, stage: {key}}}\n" for label, key in zip(STAGES, SHARED)
)


def write_export(path: Path, n: int, seed: int = 7, version: int = 1, owners: Sequence[str] = ()) -> Path:
    """Writes ``n`` deals to ``path`` and the source's mapping beside it as ``<stem>.yaml``; deals are
    owned by ``owners`` in turn (by "Owner 0" … "Owner 39" without)."""
    team = list(owners) or [f"Owner {k}" for k in range(40)]
    rng = random.Random(seed)
    start = date(2025, 1, 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(HEADER)
        for i in range(n):
            created = start + timedelta(days=rng.randrange(600))
            stage = rng.randrange(len(STAGES))
            status = rng.choices(["open", "won", "lost"], [6, 2, 2])[0]
            updated = created + timedelta(days=rng.randrange(1, 90))
            if version > 1 and i % 7 == 0 and stage < len(STAGES) - 1:
                stage, updated = stage + 1, updated + timedelta(days=version)
            w.writerow([
                str(100000 + i), f"Deal {i} for Company {i % 977}", "Sales", STAGES[stage], status,
                f"{rng.lognormvariate(9.5, 1.0):.2f}", rng.choice(["USD", "EUR", "GBP"]),
                (created + timedelta(days=rng.randrange(30, 200))).isoformat(), f"{created.isoformat()} 09:30:00",
                f"{updated.isoformat()} 17:45:00", team[i % len(team)], f"Company {i % 977} GmbH",
                "Price" if status == "lost" else "", rng.choice(["Web", "Partner", "Outbound", "Event"]),
            ])
    path.with_suffix(".yaml").write_text(MAPPING, encoding="utf-8")
    return path
