"""Graph-shaped errors for the fake Graph API: one exception and the body Microsoft Graph sends.

Graph answers every error as {"error": {"code", "message", "innerError": {"date",
"request-id", "client-request-id"}}}. Clients read `error.code` (e.g. ErrorItemNotFound,
ErrorIrresolvableConflict, SyncStateNotFound) and the Retry-After / Location headers, so the
exception carries extra headers beside the status and code.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

Response = tuple[int, dict[str, str], bytes]

#: a default message per code, close to what Graph/Exchange say
MESSAGES: dict[str, str] = {
    "InvalidAuthenticationToken": "Access token is empty or invalid.",
    "ErrorAccessDenied": "Access is denied. Check credentials and try again.",
    "ErrorItemNotFound": "The specified object was not found in the store.",
    "ErrorIrresolvableConflict": "The send or update operation could not be performed because the change key "
                                 "passed in the request does not match the current change key for the item.",
    "ErrorInvalidRequest": "Your request can't be completed.",
    "ErrorInvalidParameter": "The request contains an invalid parameter.",
    "ErrorInvalidUrlQuery": "The query option is not supported.",
    "ErrorInvalidUrlQueryFilter": "The $filter query is not supported.",
    "ErrorTimeIntervalTooBig": "The requested time duration specified is too long.",
    "ErrorMailboxDataArrayTooBig": "The number of mailboxes requested is too large.",
    "SyncStateNotFound": "The sync state for this request was not found; start a full synchronization.",
    "ApplicationThrottled": "Application is over its MailboxConcurrency limit.",
    "TooManyRequests": "Too many requests.",
    "ServiceUnavailable": "The service is temporarily unavailable.",
    "InternalServerError": "An internal server error occurred.",
    "GatewayTimeout": "The gateway timed out.",
    "BadRequest": "Invalid request.",
    "TimeZoneNotSupportedException": "A valid TimeZone value must be specified.",
    "UnknownError": "",
}

#: the code Graph uses for a bare status (scripted and random faults)
DEFAULT_CODES = {400: "BadRequest", 401: "InvalidAuthenticationToken", 403: "ErrorAccessDenied",
                 404: "ErrorItemNotFound", 409: "ErrorIrresolvableConflict", 410: "SyncStateNotFound",
                 412: "ErrorIrresolvableConflict", 429: "TooManyRequests", 500: "InternalServerError",
                 502: "BadGateway", 503: "ServiceUnavailable", 504: "GatewayTimeout"}

REASON_PHRASES = {200: "OK", 201: "Created", 204: "No Content", 400: "Bad Request", 401: "Unauthorized",
                  403: "Forbidden", 404: "Not Found", 409: "Conflict", 410: "Gone", 412: "Precondition Failed",
                  429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway",
                  503: "Service Unavailable", 504: "Gateway Timeout"}


class GraphError(Exception):
    """An error answer of Graph; `response()` gives status, headers and the JSON body."""

    def __init__(self, status: int, code: str | None = None, message: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        code = code or DEFAULT_CODES.get(status, "UnknownError")
        super().__init__(f"{status} {code}")
        self.status = status
        self.code = code
        self.message = message if message is not None else MESSAGES.get(code, code)
        self.headers = dict(headers or {})

    def body(self) -> dict:
        return {"error": {"code": self.code, "message": self.message,
                          "innerError": {"date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
                                         "request-id": str(uuid.uuid4()),
                                         "client-request-id": str(uuid.uuid4())}}}

    def response(self) -> Response:
        headers = {"Content-Type": "application/json", **self.headers}
        if self.status == 401:
            headers.setdefault("WWW-Authenticate", 'Bearer realm="", error="invalid_token"')
        return self.status, headers, json.dumps(self.body()).encode()


def reason_phrase(status: int) -> str:
    return REASON_PHRASES.get(status, "Status")
