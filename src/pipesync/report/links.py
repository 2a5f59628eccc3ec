"""Links from a listed deal back to its record in the CRM it came from.

The URL is built from the source's type and options in ``pipesync.yaml`` and the
record's id in that source:

| type | needs (source ``options``) | record URL |
| --- | --- | --- |
| salesforce | ``instance_url`` (e.g. ``https://acme.my.salesforce.com``) | ``<instance_url>/lightning/r/Opportunity/<id>/view`` |
| hubspot | ``portal_id`` (the account's Hub ID); ``app_url`` for EU accounts (default ``https://app.hubspot.com``) | ``<app_url>/contacts/<portal_id>/record/0-3/<id>`` |
| pipedrive | ``company_domain`` (``acme`` or ``acme.pipedrive.com``) | ``https://<company>.pipedrive.com/deal/<id>`` |
| csv | — | no link: a file has no record page |

A source without the option it needs, or with one that is not an http(s)
address, gets no link rather than a wrong or unsafe one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit

from pipesync.config import Settings, SourceConfig

if TYPE_CHECKING:  # the metrics use this module: a run-time import would be circular
    from pipesync.metrics.results import Metrics

HUBSPOT_APP = "https://app.hubspot.com"


def record_url(source: SourceConfig | None, source_id: str) -> str | None:
    if source is None or not source_id:
        return None
    options = source.options
    record = quote(str(source_id), safe="")
    if source.type == "salesforce":
        base = _web_base(options.get("instance_url"))
        return base and f"{base}/lightning/r/Opportunity/{record}/view"
    if source.type == "hubspot":
        base, portal = _web_base(options.get("app_url") or HUBSPOT_APP), options.get("portal_id")
        return base and portal and f"{base}/contacts/{quote(str(portal), safe='')}/record/0-3/{record}"
    if source.type == "pipedrive":
        company = str(options.get("company_domain") or "").strip().lower().removesuffix(".pipedrive.com")
        if not company or not company.replace("-", "").isalnum():
            return None
        return f"https://{company}.pipedrive.com/deal/{record}"
    return None


def link_records(settings: Settings, metrics: Metrics) -> None:
    """Sets the URL of every CRM record behind the listed deals (None where there is no page)."""
    sources = {s.name: s for s in settings.sources}
    for listed in (metrics.stuck_deals, metrics.stale_deals, metrics.suspicious_amounts):
        for deal in listed.deals:
            for record in deal.records:
                record.url = record_url(sources.get(record.source), record.source_id)


def _web_base(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    parts = urlsplit(value.strip())
    if parts.scheme not in ("https", "http") or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"
