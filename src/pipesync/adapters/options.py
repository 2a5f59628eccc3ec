"""Options every API adapter shares (sign-in transport, the retry policy, quotas, history).

Where a vendor's default differs (Salesforce's timeout and daily reserve, each API's
address), the subclass declares the field again through the factory here, so the
description is written once.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from pydantic import Field

from pipesync.plugins import AdapterOptions


def timeout_field(default: float) -> Any:
    return Field(default, gt=0, description="seconds a request may take before it counts as a transient failure")


def quota_reserve_field(default: int) -> Any:
    return Field(default, ge=0, description="daily API calls to leave unused: the run stops, resumably, before "
                                            "the remaining calls fall under this")


def base_url_field(default: str) -> Any:
    return Field(default, description="the API's address (a proxy or a sandbox)")


class ApiOptions(AdapterOptions):
    """What every HTTP API adapter takes."""

    ca_bundle: str | None = Field(None, description="PEM file of a private CA to trust (default: the system's CAs)")
    timeout_s: float = timeout_field(60.0)
    max_attempts: int = Field(8, ge=1, description="attempts of a request that fails transiently (429, 5xx, timeout) "
                                                   "before the run stops")
    retry_base_s: float = Field(0.5, gt=0, description="first backoff between attempts, in seconds (doubles, with jitter)")
    retry_max_s: float = Field(60.0, gt=0, description="longest backoff between attempts, in seconds")
    quota_reserve: int = quota_reserve_field(0)
    own_write_tolerance_s: float = Field(5.0, ge=0, description="a record modified within this many seconds of "
                                                                "pipesync's origin tag is pipesync's own write-back")
    metadata_refresh_hours: float = Field(24, gt=0, description="pipelines, stages, owners and fields are re-read "
                                          "when older than this (or when a page names one not known, or on a full sync)")
    history: bool | None = Field(None, description="read stage history on sync (default: where it comes a page at "
                                                   "a time, not a call per deal)")

    def history_wanted(self, in_bulk: bool) -> bool:
        return in_bulk if self.history is None else self.history


class OAuthApiOptions(ApiOptions):
    """An API at one address, signed in with a static token or OAuth with rotating refresh tokens."""

    oauth_url: str | None = Field(None, description="the OAuth token endpoint (default: the vendor's)")
    oauth_store: str | None = Field(None, description="file holding the newest rotated refresh token "
                                                      "(default: .pipesync/<source>-oauth.json next to the config)")


def web_base(value: str | None) -> str | None:
    """``value`` as an http(s) address without a trailing slash; None for anything else (no unsafe links)."""
    if not value:
        return None
    parts = urlsplit(value.strip())
    if parts.scheme not in ("https", "http") or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"
