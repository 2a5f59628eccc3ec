"""``pipesync init``: a commented starting config and the default shared pipeline."""

from __future__ import annotations

from pathlib import Path

from pipesync.errors import ConfigError
from pipesync.pipeline import default_pipeline_path

CONFIG_TEMPLATE = """\
# pipesync configuration. Paths are relative to this file.
# Secrets are never written here: each is read from an environment variable
# (or a file, e.g. a mounted Kubernetes secret) when a source needs it.

# Where the unified tables go: any SQLAlchemy URL. Overridable with PIPESYNC_WAREHOUSE.
warehouse: sqlite:///pipesync.db

# All amounts are also stored converted into this currency (amount_reporting).
reporting_currency: USD
# Units of the reporting currency for one unit of each other currency.
fx_rates:
  EUR: 1.08
  GBP: 1.27

# Mapping files live here: one per source (<name>.yaml) and pipeline.yaml, the shared pipeline.
mappings_dir: mappings

# A deal with no activity and no update for this many days counts as stale.
stale_after_days: 30

# Processes a sync may use to read a large file side by side (default: one per core).
# sync_workers: 2

sources:
  # A CSV export. format: salesforce_report | hubspot_export | pipedrive_export | zoho_crm | zoho_bigin |
  # monday_crm | salesflare | zendesk_sell | vtiger | jiandaoyun | canonical | generic
  - name: sf_export
    type: csv
    options:
      path: exports/opportunities.csv
      format: salesforce_report
      # A column holding the same deal's id in another source links the two outright:
      # external_refs: {HubSpot Deal ID: hubspot}
  # A CRM over its API (credentials from the environment):
  # - name: hubspot
  #   type: hubspot
  #   secrets:
  #     access_token: {env: HUBSPOT_TOKEN}
"""


def init_project(folder: Path, *, force: bool = False) -> list[Path]:
    """Writes pipesync.yaml and mappings/pipeline.yaml into ``folder``; returns what it wrote."""
    folder.mkdir(parents=True, exist_ok=True)
    targets = {
        folder / "pipesync.yaml": CONFIG_TEMPLATE,
        folder / "mappings" / "pipeline.yaml": default_pipeline_path().read_text(encoding="utf-8"),
    }
    existing = [p for p in targets if p.exists()]
    if existing and not force:
        raise ConfigError(f"{', '.join(map(str, existing))} already exist(s): use --force to overwrite")
    for path, text in targets.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return list(targets)
