"""Adapters, one module per system; :func:`open_adapter` picks one by source type."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

from pipesync.adapters.base import Adapter

if TYPE_CHECKING:
    from pipesync.config import Settings, SourceConfig

# type → "module:Class", imported on demand so a CSV-only user never loads the vendor SDKs.
REGISTRY = {
    "csv": "pipesync.adapters.csv_file:CsvAdapter",
    "salesforce": "pipesync.adapters.salesforce:SalesforceAdapter",
    "hubspot": "pipesync.adapters.hubspot:HubSpotAdapter",
    "pipedrive": "pipesync.adapters.pipedrive:PipedriveAdapter",
}


def open_adapter(source: "SourceConfig", settings: "Settings") -> Adapter:
    module, cls = REGISTRY[source.type].split(":")
    return getattr(import_module(module), cls)(source, settings)


__all__ = ["Adapter", "REGISTRY", "open_adapter"]
