"""The HubSpot sandbox: the CRM v3/v4 endpoints a deals adapter uses, faithful enough for ``hubspot-api-client``.

``create_app(data, faults) -> (asgi_app, store)``; the credentials are in
``store.auth``. Modules: ``store`` (deals as HubSpot holds them, companies,
contacts, owners, pipelines), ``search`` (CRM search: checks, filters, sorts,
paging), ``auth`` (private-app token, OAuth with rotating refresh tokens),
``app`` (routes).
"""

from pipesync_sandbox.hubspot.app import create_app
from pipesync_sandbox.hubspot.auth import HubSpotAuth
from pipesync_sandbox.hubspot.store import HubSpotStore

__all__ = ["HubSpotAuth", "HubSpotStore", "create_app"]
