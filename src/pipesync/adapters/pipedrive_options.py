"""Pipedrive's options (the config validates them, the report links with them)."""

from __future__ import annotations

from typing import Literal
from urllib.parse import quote

from pydantic import Field

from pipesync.adapters.options import OAuthApiOptions, base_url_field
from pipesync.plugins import AdapterPlugin

PAGE_MAX = 500  # v2 list endpoints


class PipedriveOptions(OAuthApiOptions):
    credentials = frozenset({"api_token", "access_token", "client_id", "client_secret", "refresh_token"})

    auth: Literal["api_token", "oauth"] = Field(
        "api_token", description="api_token (secret api_token) or oauth (secrets client_id, client_secret, "
                                 "refresh_token; calls go to the grant's api_domain)")
    base_url: str = base_url_field("https://api.pipedrive.com")
    burst_window_s: float = Field(2.0, gt=0, description="the burst limit's window in seconds (Pipedrive reports "
                                                         "only the limit)")
    page_size: int = Field(PAGE_MAX, gt=0, le=PAGE_MAX, description="deals per v2 list page")
    origin_field: str = Field("Pipesync origin", description="custom text field tagging pipesync's writes")
    create_origin_field: bool = Field(True, description="create origin_field on the first write if it is missing")
    # Pipedrive has no standard lead-source, next-step or foreign-id fields: custom fields by name.
    lead_source_field: str = Field("Lead source", description="custom field read into lead_source")
    next_step_field: str = Field("Next step", description="custom field read into next_step")
    external_ref_fields: dict[str, str] = Field({"Salesforce ID": "salesforce", "HubSpot ID": "hubspot"}, description=(
        "custom fields holding the same deal's id in another source: {field name: source}"))
    company_domain: str | None = Field(None, description="the company's Pipedrive domain (acme or "
                                                         "acme.pipedrive.com), for links to records")

    def needed_secrets(self) -> frozenset[str]:
        # OAuth's refresh token may live in oauth_store alone, once a first one was stored
        return frozenset({"api_token"} if self.auth == "api_token" else {"client_id", "client_secret"})

    def record_url(self, source_id: str) -> str | None:
        company = (self.company_domain or "").strip().lower().removesuffix(".pipedrive.com")
        if not company or not company.replace("-", "").isalnum():
            return None
        return f"https://{company}.pipedrive.com/deal/{quote(source_id, safe='')}"


PLUGIN = AdapterPlugin(PipedriveOptions, "pipesync.adapters.pipedrive:PipedriveAdapter",
                       "Pipedrive deals over API v2 (httpx)", init_secrets=("api_token",))
