"""Local, faithful emulators of the Salesforce, HubSpot and Pipedrive APIs, with seeded data.

- :mod:`pipesync.sandbox.world` — the data model of one seeded world;
- :mod:`pipesync.sandbox.generator` — ``generate(seed, size)``, labels, canonical deals;
  it draws on :mod:`~pipesync.sandbox.lexicon` (``data/*.yaml``), :mod:`~pipesync.sandbox.names`
  (names and their drift) and :mod:`~pipesync.sandbox.ids` (vendor-shaped ids);
- :mod:`pipesync.sandbox.server` — ``serve(app, tls=...)``: real HTTP(S) on loopback;
- :mod:`pipesync.sandbox.faults` — switchable faults and their ASGI middleware;
- :mod:`pipesync.sandbox.ratelimit` — rolling windows and daily budgets;
- :mod:`pipesync.sandbox.salesforce`, ``hubspot``, ``pipedrive`` — the vendor apps;
- :mod:`pipesync.sandbox.sandboxes` — ``Sandboxes``: all three running, with credentials.

Submodules are imported on use; importing this package stays cheap.
"""
