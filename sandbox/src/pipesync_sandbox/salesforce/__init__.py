"""The Salesforce sandbox: a local org the real ``simple_salesforce`` client cannot tell from the real one.

``create_app(data, faults, credentials=..., as_of=world.as_of) -> (asgi_app, store)``;
serve the app with ``pipesync_sandbox.server.serve(app, tls=True)`` (the client
only speaks https). Modules: ``store`` (the org's schema and records, and the
writes it accepts), ``soql`` (the SOQL subset: parse, check, evaluate),
``auth`` (the connected app, the API user, sessions), ``app`` (routes).
"""

from pipesync_sandbox.salesforce.app import create_app
from pipesync_sandbox.salesforce.auth import SalesforceCredentials
from pipesync_sandbox.salesforce.store import SalesforceStore

__all__ = ["SalesforceCredentials", "SalesforceStore", "create_app"]
