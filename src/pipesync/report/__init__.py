"""The self-contained HTML pipeline report: ``pipesync.report.builder.build_report``.

Kept free of imports so that ``pipesync.report.links`` can be used by the metrics
without pulling in the builder (which itself uses the metrics).
"""
