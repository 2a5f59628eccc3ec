"""pipesync's error hierarchy.

Every error carries a message written for the user: what went wrong, where
(file, row, record, field) and, where we know it, how to fix it. Secrets never
go into a message; adapters translate vendor errors at their boundary.
"""

from __future__ import annotations


class PipesyncError(Exception):
    """Base of every error pipesync raises on purpose."""

    exit_code = 1


class ConfigError(PipesyncError):
    """The configuration, a mapping or a rules file is wrong; fix the file."""

    exit_code = 2


class FileErrors(ConfigError):
    """Several problems in one file, all reported at once."""

    def __init__(self, path: str, problems: list[str]):
        self.path = path
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{path}: {len(problems)} problem(s)\n{lines}")


class UsageError(PipesyncError):
    """A command was asked for something it cannot do as asked (an argument it must refuse)."""

    exit_code = 2


class GuardrailError(PipesyncError):
    """A push-back guardrail refused a plan (a cap exceeded): nothing was planned or sent."""


class NotInstalled(UsageError):
    """A command comes with a part of pipesync that is not installed (the sandboxes and the demo)."""


class ManualStepsRequired(UsageError):
    """What was asked can only be done by a person in the CRM's own UI; the message lists the steps."""


class MappingError(ConfigError):
    """A source's stage mapping does not cover what the source holds."""


class NormalizationError(PipesyncError):
    """One record could not be turned into a canonical deal (it is quarantined)."""

    def __init__(self, field: str, reason: str, value: object = None):
        self.field = field
        self.reason = reason
        self.value = value
        shown = "" if value is None else f" (got {str(value)[:80]!r})"
        super().__init__(f"{field}: {reason}{shown}")


class SourceError(PipesyncError):
    """A source system refused or failed a request."""


class AuthError(SourceError):
    """Credentials are missing, wrong, expired beyond refresh, or revoked."""

    exit_code = 2


class CertificateError(SourceError):
    """The source's TLS certificate could not be verified: a setting (``ca_bundle``, the URL) or the server to fix."""

    exit_code = 2


class RateLimitError(SourceError):
    """The source's rate limit or quota stopped the run (it can be resumed)."""


class QuotaReserveReached(RateLimitError):
    """We stopped on purpose to leave the configured reserve of daily API calls."""


class WarehouseError(PipesyncError):
    """The warehouse database could not be read or written."""


class RunInProgress(PipesyncError):
    """Another run holds the lock of this warehouse and source: this one waited no longer than asked."""
