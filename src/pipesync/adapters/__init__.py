"""Adapters, one module per system; :func:`open_adapter` picks one by source type.

Each registers through the entry-point group ``pipesync.adapters`` (:mod:`pipesync.plugins`):
its options model in a light module, its adapter class imported on demand, so a CSV-only
user never loads the vendor SDKs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipesync.adapters.base import Adapter
from pipesync.plugins import plugin

if TYPE_CHECKING:
    from pipesync.config import Settings, SourceConfig


def open_adapter(source: "SourceConfig", settings: "Settings") -> Adapter:
    return plugin(source.type).adapter_class()(source, settings)


__all__ = ["Adapter", "open_adapter"]
