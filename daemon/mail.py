"""Sending mail over SMTP: one `send(settings, message)` for test mails, alerts and (later) the
booking outbox.

Plain smtplib with a timeout, STARTTLS or implicit TLS verified against the system's trust
store. Every failure becomes a `MailError` whose text is written for the person running
homecal ("the server refused the connection", "authentication failed", ...) and never
contains the SMTP password, even when a server echoes what it was sent.
"""

from __future__ import annotations

import logging
import re
import smtplib
import socket
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from typing import Literal

from daemon.errors import HomecalError, UsageError

log = logging.getLogger("homecal.mail")

Security = Literal["starttls", "tls", "none"]
SECURITY_CHOICES: tuple[Security, ...] = ("starttls", "tls", "none")
DEFAULT_TIMEOUT = 15.0

# The HTML living standard's definition of a valid e-mail address: what browsers accept in
# <input type="email">. Stricter than RFC 5322 on purpose: no spaces, commas, quotes or angle
# brackets, so an address can never smuggle a second recipient or a header into a message.
_ADDRESS_RE = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)
MAX_ADDRESS = 254


def validate_address(address: str) -> str:
    """The address stripped, or UsageError. Used for senders, recipients and users' e-mail."""
    address = (address or "").strip()
    if len(address) > MAX_ADDRESS or not _ADDRESS_RE.match(address):
        raise UsageError("e-mail address must look like name@example.org")
    return address


class MailError(HomecalError):
    """Mail could not be sent; the message says why in plain words, without secrets."""

    http_status = 502


@dataclass(frozen=True)
class SmtpSettings:
    """Everything needed to hand a message to an SMTP server."""

    host: str = ""
    port: int = 587
    security: Security = "starttls"
    username: str = ""
    password: str = field(default="", repr=False)
    from_address: str = ""
    timeout: float = DEFAULT_TIMEOUT

    @property
    def configured(self) -> bool:
        """False means mail is switched off (no server)."""
        return bool(self.host)


def _scrub(text: str, password: str) -> str:
    """Remove the password from a server's text: some servers echo what they were sent."""
    return text.replace(password, "********") if password else text


def _server_text(err: smtplib.SMTPResponseException) -> str:
    raw = err.smtp_error
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    return " ".join(text.split())  # servers answer in several lines


def explain(err: BaseException, settings: SmtpSettings) -> str:
    """One plain sentence (or two) about why sending failed. Order matters: the smtplib and
    ssl errors are OSErrors too, so the specific ones are tested first."""
    where = f"{settings.host}:{settings.port}"
    if isinstance(err, smtplib.SMTPAuthenticationError):
        return ("Authentication failed: the mail server rejected the user name or password "
                f"({err.smtp_code} {_server_text(err)}).")
    if isinstance(err, smtplib.SMTPNotSupportedError):
        if "STARTTLS" in str(err).upper():
            return (f"TLS problem: {where} does not offer STARTTLS. Port 465 usually needs "
                    "security \"TLS\"; a server without encryption needs \"none\".")
        return ("The mail server does not accept a log-in on this connection. Most servers "
                "only allow it after STARTTLS or over TLS.")
    if isinstance(err, smtplib.SMTPRecipientsRefused):
        refused = ", ".join(sorted(err.recipients))
        return f"The mail server refused the recipient address {refused}."
    if isinstance(err, smtplib.SMTPSenderRefused):
        return f"The mail server refused the sender address {err.sender} ({err.smtp_code} {_server_text(err)})."
    if isinstance(err, TimeoutError) or (
            # smtplib reports a read timeout as "Connection unexpectedly closed: timed out"
            isinstance(err, smtplib.SMTPServerDisconnected) and "timed out" in str(err)):
        hint = " A TLS port (like 465) stays silent until TLS starts: try security \"TLS\"." if (
            settings.security != "tls" and settings.port == 465) else ""
        return f"{where} did not answer within {settings.timeout:g} seconds.{hint}"
    if isinstance(err, smtplib.SMTPServerDisconnected):
        return (f"{where} closed the connection unexpectedly. Check that the security setting "
                "matches the port (STARTTLS usually on 587, TLS on 465).")
    if isinstance(err, smtplib.SMTPResponseException):
        return f"The mail server answered with an error: {err.smtp_code} {_server_text(err)}."
    if isinstance(err, ssl.SSLCertVerificationError):
        return (f"TLS problem: the certificate of {settings.host} could not be verified "
                f"({err.verify_message or err.reason}).")
    if isinstance(err, ssl.SSLError):
        return (f"TLS problem: the secure connection to {where} failed ({err.reason or err}). "
                "Check that the security setting matches the port (STARTTLS usually on 587, TLS on 465).")
    if isinstance(err, socket.gaierror):
        return f"The server name {settings.host!r} could not be found. Check its spelling."
    if isinstance(err, ConnectionRefusedError):
        return f"{where} refused the connection. Check the server name and port, and that the mail server is running."
    if isinstance(err, smtplib.SMTPException):
        return f"Sending failed: {err}."
    if isinstance(err, OSError):
        return f"Could not reach {where}: {err.strerror or err}."
    return f"Sending failed: {type(err).__name__}."


def _complete(settings: SmtpSettings, message: EmailMessage) -> EmailMessage:
    """Fill in From, Date and Message-ID when the caller left them out."""
    if not message["From"]:
        if not settings.from_address:
            raise MailError("No sender address is set: enter one in the mail settings first.")
        del message["From"]  # an empty header may be there; assigning would add a second one
        message["From"] = settings.from_address
    if not message["Date"]:
        message["Date"] = formatdate(usegmt=True)
    if not message["Message-ID"]:
        domain = parseaddr(str(message["From"]))[1].rpartition("@")[2] or None
        message["Message-ID"] = make_msgid(domain=domain)
    return message


def send(settings: SmtpSettings, message: EmailMessage, *, ssl_context: ssl.SSLContext | None = None) -> None:
    """Hand `message` to the SMTP server; recipients come from its To, Cc and Bcc headers.

    `ssl_context` defaults to the system's trust store with hostname checks; tests pass one
    that trusts their own certificate. Raises MailError (plain words, no password) on any
    failure, including a server that accepts some recipients and refuses others.
    """
    if not settings.configured:
        raise MailError("Mail is not set up: no SMTP server is configured.")
    message = _complete(settings, message)
    context = ssl_context or ssl.create_default_context()
    try:
        client: smtplib.SMTP
        if settings.security == "tls":
            client = smtplib.SMTP_SSL(settings.host, settings.port, timeout=settings.timeout, context=context)
        else:
            client = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
        with client:
            if settings.security == "starttls":
                client.starttls(context=context)
            if settings.username:
                client.login(settings.username, settings.password)
            refused = client.send_message(message)
    except MailError:
        raise
    except Exception as err:  # noqa: BLE001 - every failure becomes one plain message
        text = _scrub(explain(err, settings), settings.password)
        log.warning("mail via %s:%s failed: %s", settings.host, settings.port, text)
        raise MailError(text) from None  # `from None`: the original may carry the server's raw reply
    if refused:
        text = _scrub(f"The mail server refused the recipient address {', '.join(sorted(refused))}.",
                      settings.password)
        log.warning("mail via %s:%s partly refused: %s", settings.host, settings.port, text)
        raise MailError(text)
    log.info("mail sent via %s:%s", settings.host, settings.port)


def make_test_mail(recipient: str, *, sender: str, requested_by: str, base_url: str) -> EmailMessage:
    """The message behind the "Send test mail" button."""
    message = EmailMessage()
    if sender:  # else send() fills in the settings' sender, or says none is set
        message["From"] = sender
    message["To"] = recipient
    message["Subject"] = "homecal test mail"
    message.set_content(
        f"This is a test mail from homecal at {base_url}, sent by {requested_by}.\n\n"
        "If you can read it, homecal can send booking invites and alerts.\n"
    )
    return message
