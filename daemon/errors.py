"""The one error tree of homecal.

Every failure homecal expects is a subclass of `HomecalError`. The CLI turns each into one
actionable line (no traceback), the web UI into a page with an HTTP status, and the
scheduler into a per-account status. Provider code translates HTTP errors into this tree at
its boundary with `raise ... from err`.
"""

from __future__ import annotations

from dataclasses import dataclass


class HomecalError(Exception):
    """Root of every error homecal raises on purpose."""

    #: process exit code the CLI uses for this kind of error
    exit_code = 1
    #: HTTP status the web UI answers with when this error reaches the error handler
    http_status = 500


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the configuration: where it is and why it is wrong."""

    source: str  # a file path, or "$ENV_VAR"
    key: str  # "[section] key", or "" for the whole source
    message: str

    def __str__(self) -> str:
        where = f"{self.source}: {self.key}" if self.key else self.source
        return f"{where}: {self.message}"


class ConfigError(HomecalError):
    """The configuration cannot be used. Lists every problem found, not just the first."""

    exit_code = 2

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"configuration has {len(self.problems)} problem(s):\n{lines}")


class MasterKeyError(HomecalError):
    """The master key is missing, unreadable, malformed or does not open this database."""

    exit_code = 3


class StoreError(HomecalError):
    """The database cannot be opened, migrated or is damaged."""

    exit_code = 4


class SealError(HomecalError):
    """A sealed value failed to open: wrong key, tampered data, or moved to another row."""


class UsageError(HomecalError):
    """The user asked for something that cannot be done as asked (bad argument, missing input)."""

    exit_code = 2
    http_status = 400


class NotFound(HomecalError):
    """A named object (user, account, rule, ...) does not exist or is not visible to the user."""

    http_status = 404


class AccessDenied(HomecalError):
    """The access gate refused an action (write outside read-write, edit of an external event)."""

    http_status = 403


class DeletionGuard(HomecalError):
    """A sync plan would delete more than allowed; the rule is paused until confirmed."""


class ProviderError(HomecalError):
    """A calendar provider failed. Subclasses say how the caller should react."""

    http_status = 502


class AuthError(ProviderError):
    """Credentials were refused (invalid_grant, 401 after refresh): the account needs re-linking."""


class RateLimited(ProviderError):
    """The provider asked us to slow down; retry after `retry_after` seconds if known."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class InvalidCursor(ProviderError):
    """A sync token / delta link was rejected (Google 410, Graph 410, CalDAV 403 valid-sync-token)."""


class PreconditionFailed(ProviderError):
    """The object changed since we read it (ETag mismatch, 412)."""
