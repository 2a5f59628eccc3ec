"""The revenue forecast: stage-weighted, history-weighted and by category, backtested (docs/forecast.md).

``from pipesync.forecast import forecast`` loads the engine on first use (PEP 562), so the command
line reaches this package without loading numpy and the warehouse.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipesync.forecast.results import Forecast
    from pipesync.forecast.run import forecast

_MODULE_OF = {"forecast": "run", "Forecast": "results"}

__all__ = sorted(_MODULE_OF)


def __getattr__(name: str) -> Any:
    if name in _MODULE_OF:
        value = getattr(importlib.import_module(f"{__name__}.{_MODULE_OF[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
