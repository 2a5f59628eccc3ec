"""The Pipedrive sandbox: a local emulator of Pipedrive's API v2 and the v1 endpoints that remain.

``create_app(data, faults, as_of=world.as_of) -> (asgi_app, store)``; serve the
app with :func:`pipesync_sandbox.server.serve` and call it with
``store.credentials.api_token`` (``x-api-token`` header or ``api_token``
query) or an OAuth access token from ``POST /oauth/token``.

Served: ``/api/v2/deals`` (+ ``/archived``, ``/{id}`` GET/PATCH/DELETE, POST),
``/api/v2/pipelines``, ``/stages``, ``/organizations``, ``/persons``,
``/dealFields`` (GET, POST); ``/v1`` (or ``/api/v1``) ``/users``,
``/deals/{id}/flow``, ``/deals/{id}/changelog``, ``/deals/{id}/merge``,
``/recents``, the field catalogues ``/dealFields``, ``/personFields``, ``/organizationFields``,
``/noteFields``, ``/activityFields``, ``/productFields``, ``/leadFields`` (GET, ``start``/``limit``);
``/oauth/token``.

Choices where the vendor's behaviour is not documented (unverified): error
message texts; the OAuth error body (``{"success": false, "message": …}``);
a deleted deal keeps its last open/won/lost ``status`` beside ``is_deleted``;
``/v1/recents`` lists deleted deals (``deleted: true``) until they are purged
and serves only ``deal`` items; ``x-daily-requests-left`` counts tokens; v1 field catalogues
give paging both at the top of ``additional_data`` (as the reference writes it) and under
``pagination`` (as v1 lists do), and type fields only from the reference's list of types.

Modules: ``store`` (the company's data and its changes), ``render`` (JSON
shapes), ``writes`` (strict v2 write checks), ``params`` (query parameters,
cursors), ``limits`` (token budget and burst; each endpoint's token cost in
``token_costs.yaml``), ``auth`` (API token, OAuth), ``envelope`` (success and
error bodies), ``app`` (routes).
"""

from pipesync_sandbox.pipedrive.app import create_app
from pipesync_sandbox.pipedrive.auth import Credentials
from pipesync_sandbox.pipedrive.store import PipedriveStore

__all__ = ["Credentials", "PipedriveStore", "create_app"]
