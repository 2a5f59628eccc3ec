"""Mutated exports (truncated, stray quotes, repeated rows, NULs, huge cells, other encodings) never cost a stored deal.

After a good first sync, a sync of any mutation of the file: returns (never raises), keeps
every deal row, marks none deleted when the read failed and no more than the deletion guard
lets through otherwise (only deals whose row the mutation destroyed), and quarantines
only with a file and row.
"""

from __future__ import annotations

import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine

from pipesync.adapters.csv_file import decode
from pipesync.sync import DELETION_FLOOR, DELETION_SHARE, run_sync
from pipesync.warehouse import schema as t
from pipesync.warehouse import version
from tests.warehouse.integrity import csv_text, deal_rows, deals, make_project, settings_of, tables, write

N = 30
EXAMPLES = {"sqlite": 30, "postgresql": 12}


def _at(data: bytes, where: float) -> int:
    return min(len(data), int(where * len(data)))


def _line_span(data: bytes, a: float, b: float) -> tuple[int, int]:
    """Where a run of whole lines starts and ends."""
    starts = [0, *(m.end() for m in re.finditer(b"\n", data))]
    i, j = sorted((int(a * (len(starts) - 1)), int(b * (len(starts) - 1))))
    return starts[i], starts[j]


MUTATIONS = {
    "truncate": lambda d, a, b: d[: _at(d, a)],
    "stray quote": lambda d, a, b: d[: _at(d, a)] + b'"' + d[_at(d, a):],
    "NUL": lambda d, a, b: d[: _at(d, a)] + b"\0" + d[_at(d, a):],
    "bytes not UTF-8": lambda d, a, b: d[: _at(d, a)] + b"\xff\xfe\x81" + d[_at(d, a):],
    "repeat lines": lambda d, a, b: (lambda s, e: d[:e] + d[s:e] + d[e:])(*_line_span(d, a, b)),
    "drop lines": lambda d, a, b: (lambda s, e: d[:s] + d[e:])(*_line_span(d, a, b)),
    "huge cell": lambda d, a, b: d[: _at(d, a)] + (b'"' if b < 0.5 else b"") + b"x" * 140_000 + d[_at(d, a):],
    "windows-1252": lambda d, a, b: d.decode("utf-8", "replace").encode("cp1252", "replace"),
    "utf-16": lambda d, a, b: d.decode("utf-8", "replace").encode("utf-16"),
    "delimiter": lambda d, a, b: d[: _at(d, a)] + (b"," if b < 0.5 else b";") + d[_at(d, a):],
}
mutation = st.tuples(st.sampled_from(sorted(MUTATIONS)), st.floats(0, 1), st.floats(0, 1))


def test_no_mutation_of_an_export_loses_a_deal_or_deletes_one_on_a_read_error(tmp_path, warehouse_url):
    dialect = "sqlite" if warehouse_url.startswith("sqlite") else "postgresql"
    make_project(tmp_path, warehouse_url)
    original = csv_text(deal_rows(N))
    lines = original.splitlines()[1:]

    def first_sync() -> None:
        write(tmp_path, original)
        assert run_sync(settings_of(tmp_path, warehouse_url)).status == "ok"

    if dialect == "sqlite":
        first_sync()
        saved = {p.name: p.read_bytes() for p in tmp_path.glob("warehouse.db*") if p.is_file()}  # not the run locks' folder

    def restore() -> None:
        if dialect == "sqlite":
            for p in tmp_path.glob("warehouse.db*"):
                if p.is_file():
                    p.unlink()
            for name, data in saved.items():
                (tmp_path / name).write_bytes(data)
        else:
            engine = create_engine(warehouse_url)
            with engine.begin() as conn:
                version.drop(conn)
            engine.dispose()
            first_sync()

    @settings(max_examples=EXAMPLES[dialect], deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
    @given(st.lists(mutation, min_size=1, max_size=3))
    def check(mutations: list[tuple[str, float, float]]) -> None:
        restore()
        data = original.encode("utf-8")
        for name, a, b in mutations:
            data = MUTATIONS[name](data, a, b)
        write(tmp_path, data)
        before = deals(warehouse_url)

        result = run_sync(settings_of(tmp_path, warehouse_url), workers=2)  # returns: every failure is in the counts

        after = deals(warehouse_url)
        assert set(after) >= set(before), "a stored deal is gone"
        deleted = {k for k, d in after.items() if d["is_deleted"] and not before[k]["is_deleted"]}
        crm = result.sources["crm"]
        if crm.error:
            assert not deleted, f"marked deleted although the read failed: {crm.error}"
        assert len(deleted) <= max(DELETION_FLOOR, DELETION_SHARE * N)
        try:
            text = decode(data)
        except UnicodeDecodeError:  # the read failed, so nothing was deleted (checked above)
            text = ""
        for key in deleted:
            line = next(line for line in lines if line.startswith(key.removeprefix("crm:") + ","))
            assert line not in text, f"{key} was marked deleted though its row is intact ({crm})"
        for entry in tables(warehouse_url, [t.quarantine])["quarantine"]:
            assert re.fullmatch(r"crm\.csv row \d+", entry["locator"]), entry
            assert entry["reason"].startswith(entry["locator"] + ": "), entry

    check()
