"""Salesforce's options (no SDK import: the config validates them, the report links with them)."""

from __future__ import annotations

from typing import Literal
from urllib.parse import quote

from pydantic import Field, model_validator

from pipesync.adapters.options import ApiOptions, quota_reserve_field, timeout_field, web_base
from pipesync.plugins import AdapterPlugin

DEFAULT_LOGIN_URL = "https://login.salesforce.com"


class SalesforceOptions(ApiOptions):
    credentials = frozenset({"client_secret", "password", "security_token", "refresh_token", "private_key", "session_id"})
    option_or_secret = frozenset({"client_id", "username"})

    auth: Literal["password", "refresh_token", "jwt", "session"] = Field(
        "password", description="sign-in: password (secrets password, security_token, client_secret), refresh_token "
                                "(secret refresh_token), jwt (secret private_key, PEM) or session (secret session_id)")
    login_url: str = Field(DEFAULT_LOGIN_URL, description="token endpoint host (https://test.salesforce.com, a My Domain)")
    username: str | None = Field(None, description="the API user (an option or a secret)",
                                 examples=["integration@acme.example"])
    client_id: str | None = Field(None, description="the connected app's consumer key (an option or a secret)",
                                  examples=["3MVG9-your-connected-app"])
    instance_url: str | None = Field(None, description="the org's address (default: the one the sign-in returns); "
                                                       "required for session, and for links to records")
    jwt_audience: str | None = Field(None, description="the JWT bearer flow's audience (default: login_url)")
    api_version: str = Field("62.0", pattern=r"^\d+\.\d$", description="REST API version")
    timeout_s: float = timeout_field(120.0)
    quota_reserve: int = quota_reserve_field(1000)
    batch_size: int = Field(2000, ge=200, le=2000, description="rows per query batch (Sforce-Query-Options: batchSize)")
    bulk_threshold: int = Field(50_000, ge=0, description="above this many rows a read runs as a Bulk API 2.0 "
                                                          "queryAll job")
    origin_field: str = Field("Pipesync_Origin__c", description="Text(255) field tagging pipesync's writes "
                                                                "(writes refuse to run without it)")
    lost_reason_field: str = Field("Loss_Reason__c", description="field read into lost_reason, written by "
                                                                 "close-lost changes")
    upsert_field: str = Field("External_Id__c", description="external-id field: creates become upserts keyed by "
                                                            "the change's deal key")
    external_ref_fields: dict[str, str] = Field({"HubSpot_Deal_Id__c": "hubspot"}, description=(
        "fields holding the same deal's id in another source: {field: source}"))

    @model_validator(mode="after")
    def _session_needs_instance(self) -> "SalesforceOptions":
        if self.auth == "session" and not self.instance_url:
            raise ValueError("auth: session needs instance_url (the instance the session belongs to)")
        return self

    def needed_secrets(self) -> frozenset[str]:
        return frozenset({"password": {"password"}, "refresh_token": {"refresh_token"}, "jwt": {"private_key"},
                          "session": {"session_id"}}[self.auth])

    def record_url(self, source_id: str) -> str | None:
        base = web_base(self.instance_url)
        return base and f"{base}/lightning/r/Opportunity/{quote(source_id, safe='')}/view"


PLUGIN = AdapterPlugin(SalesforceOptions, "pipesync.adapters.salesforce:SalesforceAdapter",
                       "Salesforce Opportunities over the REST and Bulk APIs (simple-salesforce)",
                       init_secrets=("password", "security_token", "client_secret"))
