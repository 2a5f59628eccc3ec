"""Consolidation: duplicate and siloed deals matched and merged into explained golden deals.

``consolidate(records, rules, pipeline)`` is the pure engine; ``run_consolidation``
(store.py) reads the warehouse, runs it and writes ``golden_deals`` and
``deal_links``; ``explain`` tells why a deal sits in its cluster.
"""
