"""Pipeline metrics on the consolidated truth (docs/metrics.md).

``from pipesync.metrics import run_metrics`` and the other names below load their
module on first use (PEP 562), so the command line reaches the light modules
(``definitions``) without loading numpy and the warehouse.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipesync.metrics.compute import load_truth, measure
    from pipesync.metrics.periods import Period, end_of_day, month_of, quarter_of, resolve_period
    from pipesync.metrics.results import Metrics
    from pipesync.metrics.run import MetricsRun, run_metrics, run_views

_MODULE_OF = {
    "run_metrics": "run", "run_views": "run", "MetricsRun": "run",
    "Period": "periods", "end_of_day": "periods", "month_of": "periods", "quarter_of": "periods", "resolve_period": "periods",
    "Metrics": "results",
    "load_truth": "compute", "measure": "compute",
}

__all__ = sorted(_MODULE_OF)


def __getattr__(name: str) -> Any:
    if name in _MODULE_OF:
        value = getattr(importlib.import_module(f"{__name__}.{_MODULE_OF[name]}"), name)
        globals()[name] = value  # later lookups skip this function
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
