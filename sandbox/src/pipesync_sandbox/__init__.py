"""Local, faithful emulators of the Salesforce, HubSpot and Pipedrive APIs, with seeded data.

- :mod:`pipesync_sandbox.world` — the data model of one seeded world;
- :mod:`pipesync_sandbox.generator` — ``generate(seed, size)``, labels, canonical deals;
  it draws on :mod:`~pipesync_sandbox.lexicon` (``data/*.yaml``), :mod:`~pipesync_sandbox.names`
  (names and their drift) and :mod:`~pipesync_sandbox.ids` (vendor-shaped ids);
- :mod:`pipesync_sandbox.server` — ``serve(app, tls=...)``: real HTTP(S) on loopback;
- :mod:`pipesync_sandbox.faults` — switchable faults and their ASGI middleware;
- :mod:`pipesync_sandbox.ratelimit` — rolling windows and daily budgets;
- :mod:`pipesync_sandbox.salesforce.app`, ``hubspot``, ``pipedrive`` — the vendor apps;
- :mod:`pipesync_sandbox.sandboxes` — ``Sandboxes``: all three running, with credentials.

Submodules are imported on use; importing this package stays cheap.
"""
