"""Local, faithful emulators of the Salesforce, HubSpot and Pipedrive APIs, with seeded data.

- :mod:`pipesync_sandbox.world` — the data model of one seeded world;
- :mod:`pipesync_sandbox.generator` — ``generate(seed, size)``, labels, canonical deals;
  it draws on :mod:`~pipesync_sandbox.lexicon` (``data/*.yaml``), :mod:`~pipesync_sandbox.names`
  (names and their drift) and :mod:`~pipesync_sandbox.ids` (vendor-shaped ids);
- :mod:`pipesync_sandbox.server` — ``serve(app, tls=...)``: real HTTP(S) on loopback;
- :mod:`pipesync_sandbox.faults` — switchable faults and their ASGI middleware;
- :mod:`pipesync_sandbox.ratelimit` — rolling windows and daily budgets;
- :mod:`pipesync_sandbox.salesforce`, ``hubspot``, ``pipedrive`` — the vendor apps, one subpackage
  each (``app``, ``store``, ``auth`` and the vendor's own pieces);
- :mod:`pipesync_sandbox.mutations` — ``DealMutations``: the changes every vendor store takes;
- :mod:`pipesync_sandbox.sandboxes` — ``Sandboxes``: all three running, with credentials;
- :mod:`pipesync_sandbox.sources` — source configs pointing the adapters at running sandboxes;
- :mod:`pipesync_sandbox.demo`, :mod:`pipesync_sandbox.cli` — ``pipesync demo`` and ``pipesync sandbox``,
  added to the product's command line through the ``pipesync.commands`` entry point.

The product (``pipesync``) never imports this package, and no module here imports
``pipesync.adapters``: the sandboxes check the adapters with code of their own.

Submodules are imported on use; importing this package stays cheap.
"""
