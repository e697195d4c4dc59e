"""Google-shaped API errors for the fake: one exception, the body Google sends, the reason table.

googleapiclient reads `error.errors[0].reason` for `HttpError.error_details` and its retry
decision (403 is retried only for rateLimitExceeded / userRateLimitExceeded), so the domain,
reason and message of each case follow Google's error catalogue.
"""

from __future__ import annotations

import json

#: reason -> (domain, default message)
REASONS: dict[str, tuple[str, str]] = {
    "authError": ("global", "Request had invalid authentication credentials."),
    "insufficientPermissions": ("global", "Request had insufficient authentication scopes."),
    "requiredAccessLevel": ("calendar", "You need to have writer access to this calendar."),
    "forbidden": ("global", "Forbidden"),
    "forbiddenForNonOrganizer": ("calendar", "Shared properties can only be changed by the organizer of the event."),
    "notFound": ("global", "Not Found"),
    "duplicate": ("global", "The requested identifier already exists."),
    "deleted": ("global", "Resource has been deleted"),
    "fullSyncRequired": ("global", "Sync token is no longer valid, a full sync is required."),
    "syncTokenWithRequestRestrictions": ("global", "Sync token cannot be used with other request restrictions."),
    "conditionNotMet": ("global", "Precondition Failed"),
    "invalid": ("global", "Invalid Value"),
    "required": ("global", "Required"),
    "badRequest": ("global", "Bad Request"),
    "timeRangeEmpty": ("calendar", "The specified time range is empty."),
    "timeRangeTooLong": ("calendar", "The requested time range is too long."),
    "tooManyCalendarsRequested": ("calendar", "The number of calendars requested is too large."),
    "rateLimitExceeded": ("usageLimits", "Rate Limit Exceeded"),
    "userRateLimitExceeded": ("usageLimits", "User Rate Limit Exceeded"),
    "quotaExceeded": ("usageLimits", "Calendar usage limits exceeded."),
    "dailyLimitExceeded": ("usageLimits", "Daily Limit Exceeded"),
    "backendError": ("global", "Backend Error"),
    "internalError": ("global", "Internal Error"),
}

#: the google.rpc status Google puts beside the HTTP code
_STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
           409: "ALREADY_EXISTS", 412: "FAILED_PRECONDITION", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL",
           503: "UNAVAILABLE"}


class ApiError(Exception):
    """An error answer of the Calendar API; `response()` gives status, headers and body."""

    def __init__(self, status: int, reason: str, message: str | None = None) -> None:
        domain, default = REASONS.get(reason, ("global", reason))
        if status == 429 and message is None:
            message = "Too Many Requests"
        super().__init__(f"{status} {reason}")
        self.status = status
        self.reason = reason
        self.domain = domain
        self.message = message or default

    def body(self) -> dict:
        error: dict = {
            "code": self.status,
            "message": self.message,
            "errors": [{"domain": self.domain, "reason": self.reason, "message": self.message}],
        }
        if self.status in _STATUS:
            error["status"] = _STATUS[self.status]
        return {"error": error}

    def response(self) -> tuple[int, dict[str, str], bytes]:
        headers = {"Content-Type": "application/json; charset=UTF-8"}
        if self.status == 401:
            headers["WWW-Authenticate"] = 'Bearer realm="https://accounts.google.com/", error="invalid_token"'
        return self.status, headers, json.dumps(self.body()).encode()
