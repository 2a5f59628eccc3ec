"""Secrets out of every message: token-looking values, credentials in URLs, and known secret values.

Every text that leaves pipesync (stderr, logs, ``sync_runs.error``, quarantine reasons,
plans) passes through :func:`scrub` where it can hold something a user did not write.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

# query parameters and keys that carry a credential, in URLs, forms, JSON and libpq strings
_CREDENTIAL_NAME = (r"[a-z_\-]*(?:password|passwd|pwd|secret|token|api_?key|apikey|session_?id|sid)|assertion|"
                    r"x-api-token")
_TOKEN_PATTERNS = [
    re.compile(r"(?i)(bearer\s+)[^\s\"',;]+"),
    re.compile(rf"(?i)((?<![a-z_])(?:{_CREDENTIAL_NAME})[\"']?\s*[=:]\s*[\"']?)[^\s\"'&,;}}]+"),
    re.compile(r"(?i)(\b[a-z][a-z0-9+.\-]*://[^\s/@:]*:)[^\s/@]+(?=@)"),  # scheme://user:PASSWORD@host
    re.compile(r"\b00D[A-Za-z0-9]{12,15}![A-Za-z0-9._\-]+"),  # Salesforce session ids
    re.compile(r"\bpat-[a-z0-9]{2,4}-[A-Za-z0-9\-]+"),  # HubSpot private-app tokens
]
_CREDENTIAL_KEY = re.compile(rf"(?i)^(?:{_CREDENTIAL_NAME})$")


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every known secret and every token-looking value replaced by ``***``."""
    for s in secrets:
        if s and len(s) >= 4:
            text = text.replace(s, "***")
    for pattern in _TOKEN_PATTERNS:
        text = pattern.sub(lambda m: (m.group(1) if m.groups() else "") + "***", text)
    return text


def safe_url(url: str) -> str:
    """``url`` with the password and every credential-bearing query parameter hidden, for messages."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return scrub(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:***@{host}" if ":" in userinfo else f"{user}@{host}"
    query = urlencode([(k, "***" if _CREDENTIAL_KEY.match(k) else v) for k, v in parse_qsl(parts.query, keep_blank_values=True)],
                      safe="*")
    return scrub(urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment)))


def url_secrets(url: str) -> list[str]:
    """The credential values ``url`` holds (its password, credential query parameters), to scrub from messages."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return []
    found = [v for k, v in parse_qsl(parts.query) if _CREDENTIAL_KEY.match(k)]
    if parts.password:
        found.append(parts.password)
    return found
