"""Batch requests for the Google fake: multipart/mixed in, multipart/mixed out.

The wire format is what googleapiclient's BatchHttpRequest writes and reads: each part is
`Content-Type: application/http` with a `Content-ID: <base + n>` holding a request line
(`POST /calendars/x/events?alt=json HTTP/1.1`), headers and a JSON body. The answer echoes
each id as `<response-base + n>` around `HTTP/1.1 <status>`, headers, a blank CRLF line and
the body (the library splits the body off at the first CRLF CRLF). Members run one by one
through `FakeCore.api_call`, each with its own faults; a member without an Authorization
header uses the envelope's.
"""

from __future__ import annotations

import email.parser
import email.policy
import secrets
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from tests.fakes.google_errors import ApiError

if TYPE_CHECKING:
    from tests.fakes.google_http import FakeCore, Response

MAX_MEMBERS = 1000


def _parse_member(payload: str) -> tuple[str, str, str, dict[str, str], bytes]:
    """(method, path, query, headers, body) of one application/http part."""
    text = payload.replace("\r\n", "\n")
    head, _, body = text.partition("\n\n")
    lines = head.split("\n")
    method, target, *_ = lines[0].split(" ")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip():
            headers[name.strip().lower()] = value.strip()
    parts = urlsplit(target)
    return method.upper(), parts.path, parts.query, headers, body.encode()


def handle(core: FakeCore, method: str, path: str, query: dict, headers: dict[str, str], body: bytes) -> Response:
    from tests.fakes.google_http import (
        RequestRecord,
        _flat,
        _json,
        parse_query,
        reason_phrase,
    )

    record = RequestRecord(method, path, _flat(query), False)
    core.requests.append(record)
    fault = core.take_scripted(method, path, envelope=True)
    if fault is not None:
        response = ApiError(fault.status, fault.reason).response()
        record.status = response[0]
        return response
    ctype = headers.get("content-type", "")
    if method != "POST" or not ctype.lower().startswith("multipart/mixed"):
        record.status = 400
        return ApiError(400, "badRequest", "Batch requests must be multipart/mixed POSTs.").response()
    message = email.parser.BytesParser(policy=email.policy.compat32).parsebytes(
        b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + body)
    parts = message.get_payload() if message.is_multipart() else []
    if not isinstance(parts, list) or not parts or len(parts) > MAX_MEMBERS:
        record.status = 400
        return _json(400, ApiError(400, "badRequest", f"A batch holds 1 to {MAX_MEMBERS} requests.").body())
    boundary = "batch_" + secrets.token_hex(12)
    chunks: list[str] = []
    for part in parts:
        content_id = (part.get("Content-ID") or "").strip()
        inner_id = content_id[1:-1] if content_id.startswith("<") and content_id.endswith(">") else content_id
        m_method, m_path, m_query, m_headers, m_body = _parse_member(part.get_payload())
        if "authorization" not in m_headers and "authorization" in headers:
            m_headers["authorization"] = headers["authorization"]
        status, out_headers, out = core.api_call(m_method, m_path, parse_query(m_query), m_headers, m_body,
                                                 batch_member=True)
        lines = [f"--{boundary}", "Content-Type: application/http", f"Content-ID: <response-{inner_id}>", "",
                 f"HTTP/1.1 {status} {reason_phrase(status)}"]
        lines += [f"{k}: {v}" for k, v in out_headers.items()]
        lines += [f"Content-Length: {len(out)}", "", out.decode()]
        chunks.append("\r\n".join(lines))
    text = "\r\n".join(chunks) + f"\r\n--{boundary}--\r\n"
    record.status = 200
    return 200, {"Content-Type": f"multipart/mixed; boundary={boundary}"}, text.encode()
