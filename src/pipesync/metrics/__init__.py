"""Pipeline metrics on the consolidated truth (docs/metrics.md)."""

from pipesync.metrics.compute import Truth, load_truth, measure
from pipesync.metrics.periods import Period, quarter_of, resolve_period
from pipesync.metrics.results import Metrics
from pipesync.metrics.run import run_metrics

__all__ = ["Metrics", "Period", "Truth", "load_truth", "measure", "quarter_of", "resolve_period", "run_metrics"]
