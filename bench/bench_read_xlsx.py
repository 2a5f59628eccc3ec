"""Reading a large Excel export: rows/s and peak RSS of the CSV/file adapter on an .xlsx, beside the same rows as CSV.

    python bench/bench_read_xlsx.py [--rows 100000]

Writes a Pipedrive-style export of ``--rows`` deals (bench's own data) as CSV and as
.xlsx (openpyxl, write-only), then, in a fresh process each, reads every page of it
through the adapter (header search, board-layout filtering, typed cells to text, ids
compared for repeats) and prints the time, rows/s and the process's peak RSS. The
sheet's cells are held by calamine (Rust) compactly and turned into Python objects a
row at a time, so memory grows with the file, not with Python objects per cell.
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import tempfile
from pathlib import Path

from pipesync_sandbox.csv_export import write_export

READ = """
import resource, sys, time
from pathlib import Path
from pipesync.adapters.csv_file import CsvAdapter
from pipesync.config import Settings, SourceConfig
path = Path(sys.argv[1])
source = SourceConfig(name="crm", type="csv", options={"path": str(path), "format": "pipedrive_export"})
started = time.perf_counter()
with CsvAdapter(source, Settings(base_dir=path.parent, mappings_dir=str(path.parent))) as adapter:
    adapter.discover()
    rows = sum(len(page.deals) for page in adapter.read_deals(None))
took = time.perf_counter() - started
print(rows, took, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    import openpyxl

    with tempfile.TemporaryDirectory() as folder:
        csv_path = write_export(Path(folder) / "crm.csv", args.rows)
        book = openpyxl.Workbook(write_only=True)
        sheet = book.create_sheet("Deals")
        with csv_path.open(encoding="utf-8", newline="") as f:
            for row in csv.reader(f):
                sheet.append([float(c) if c.replace(".", "", 1).isdigit() else c for c in row])
        xlsx_path = Path(folder) / "crm.xlsx"
        book.save(xlsx_path)
        for path in (csv_path, xlsx_path):
            out = subprocess.run([sys.executable, "-c", READ, str(path)], capture_output=True, text=True, check=True)
            rows, took, rss = out.stdout.split()
            print(f"{path.suffix:5} {int(rows):,} rows ({path.stat().st_size / 1e6:.1f} MB) in {float(took):.2f} s: "
                  f"{int(rows) / float(took):,.0f} rows/s, peak RSS {float(rss):.0f} MB")


if __name__ == "__main__":
    main()
