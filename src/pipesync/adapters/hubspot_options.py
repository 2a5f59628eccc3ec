"""HubSpot's options (no SDK import: the config validates them, the report links with them)."""

from __future__ import annotations

from typing import Literal
from urllib.parse import quote

from pydantic import Field

from pipesync.adapters.options import OAuthApiOptions, base_url_field, web_base
from pipesync.plugins import AdapterPlugin

APP_URL = "https://app.hubspot.com"


class HubSpotOptions(OAuthApiOptions):
    credentials = frozenset({"access_token", "client_id", "client_secret", "refresh_token"})

    auth: Literal["private_app", "oauth"] = Field(
        "private_app", description="private_app (secret access_token) or oauth (secrets client_id, client_secret, "
                                   "refresh_token)")
    base_url: str = base_url_field("https://api.hubapi.com")
    lookback_s: float = Field(30, ge=0, description="incremental searches start this far before the watermark "
                                                    "(the search index lags writes)")
    reconcile_hours: float = Field(24, gt=0, description="an incremental read this long after the last full read "
                                                         "runs as a full read")
    search_per_second: int = Field(5, gt=0, description="search's own rate limit")
    burst_limit: int | None = Field(None, gt=0, description="requests per ten seconds assumed before the first "
                                                            "response reports X-HubSpot-RateLimit-Max")
    external_ref_properties: dict[str, str] = Field({"salesforce_opportunity_id": "salesforce"}, description=(
        "deal properties holding the same deal's id in another source: {property: source}"))
    portal_id: str | int | None = Field(None, description="the account's Hub ID, for links to records")
    app_url: str = Field(APP_URL, description="HubSpot's web app, for links to records "
                                              "(https://app-eu1.hubspot.com for EU accounts)")

    def needed_secrets(self) -> frozenset[str]:
        # OAuth's refresh token may live in oauth_store alone, once a first one was stored
        return frozenset({"access_token"} if self.auth == "private_app" else {"client_id", "client_secret"})

    def record_url(self, source_id: str) -> str | None:
        base = web_base(self.app_url)
        if not base or self.portal_id is None or self.portal_id == "":
            return None
        return f"{base}/contacts/{quote(str(self.portal_id), safe='')}/record/0-3/{quote(source_id, safe='')}"


PLUGIN = AdapterPlugin(HubSpotOptions, "pipesync.adapters.hubspot:HubSpotAdapter",
                       "HubSpot deals over the CRM API (hubspot-api-client)", init_secrets=("access_token",))
