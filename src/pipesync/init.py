"""``pipesync init``: a commented starting config and the default shared pipeline."""

from __future__ import annotations

import textwrap
from pathlib import Path

from pipesync.adapters.docs import option_docs, yaml_value
from pipesync.errors import ConfigError
from pipesync.pipeline import default_pipeline_path
from pipesync.plugins import registered

CONFIG_HEADER = """\
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
"""

# The example sources' names, where not their type's.
NAMES = {"csv": "sf_export"}


def config_template() -> str:
    """The commented starting config: an example source per adapter (a CSV export first, the only one
    not commented out), each option under its description from the adapter's options model."""
    plugins = sorted(registered().items(), key=lambda item: item[0] != "csv")
    lines = [CONFIG_HEADER.rstrip("\n")]
    for n, (source_type, plugin) in enumerate(plugins):
        block = source_example(NAMES.get(source_type, source_type), source_type)
        if plugin.summary:
            lines.append(f"  # {plugin.summary}" + ("" if n == 0 else " (remove the # to use it):"))
        lines += [f"  {line}" if n == 0 else f"  # {line}" for line in block]
    return "\n".join(lines) + "\n"


def source_example(name: str, source_type: str) -> list[str]:
    """A source entry (YAML lines, indented as a list item): options with an example are set, the others
    are shown commented out at their defaults, each under its description."""
    plugin = registered()[source_type]
    lines = [f"- name: {name}", f"  type: {source_type}"]
    if plugin.init_secrets:
        lines.append("  secrets:")
        lines += [f"    {s}: {{env: {name.upper()}_{s.upper()}}}" for s in plugin.init_secrets]
    lines.append("  options:")
    for option in option_docs(plugin.options):
        lines += [f"    # {text}" for text in textwrap.wrap(option.description, 96)]
        if option.required or option.example is not None:
            lines.append(f"    {option.name}: {yaml_value(option.example)}")
        else:
            lines.append(f"    # {option.name}: {'' if option.default is None else yaml_value(option.default)}".rstrip())
    return lines


def init_project(folder: Path, *, force: bool = False) -> list[Path]:
    """Writes pipesync.yaml and mappings/pipeline.yaml into ``folder``; returns what it wrote."""
    folder.mkdir(parents=True, exist_ok=True)
    targets = {
        folder / "pipesync.yaml": config_template(),
        folder / "mappings" / "pipeline.yaml": default_pipeline_path().read_text(encoding="utf-8"),
    }
    existing = [p for p in targets if p.exists()]
    if existing and not force:
        raise ConfigError(f"{', '.join(map(str, existing))} already exist(s): use --force to overwrite")
    for path, text in targets.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return list(targets)
