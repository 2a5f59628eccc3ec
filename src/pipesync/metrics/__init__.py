"""Pipeline metrics on the consolidated truth (docs/metrics.md).

Import from the modules: ``run`` (run_metrics), ``periods`` (Period, resolve_period),
``results`` (Metrics), ``compute`` (load_truth, measure). This package file stays
empty so that the command line can reach the light modules without loading numpy.
"""
