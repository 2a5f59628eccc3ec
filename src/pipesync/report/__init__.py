"""The self-contained HTML pipeline report: ``pipesync.report.builder.build_report``."""
