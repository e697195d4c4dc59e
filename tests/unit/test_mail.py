"""daemon.mail against a real SMTP server (aiosmtpd on loopback): plain, STARTTLS and TLS,
log-ins, and every failure explained in plain words without the password.

The SMTP server (`SmtpSink`) lives in tests/servers.py, shared with the settings pages' web
tests and the booking outbox tests.
"""

from __future__ import annotations

import logging
import socket
import ssl
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest

from daemon.errors import UsageError
from daemon.mail import MailError, SmtpSettings, make_test_mail, send, validate_address
from tests.conftest import free_port
from tests.servers import SmtpSink, self_signed_tls

SECRET = "s3cret-smtp-pa55word"


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with SmtpSink(login=("homecal", SECRET)) as server:
        yield server


@pytest.fixture
def tls(tmp_path: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server context, client context that trusts it)."""
    server_ctx, cert = self_signed_tls(tmp_path)
    return server_ctx, ssl.create_default_context(cafile=str(cert))


def _message(to: str = "alice@example.org") -> EmailMessage:
    return make_test_mail(to, sender="homecal@example.org", requested_by="admin", base_url="https://cal.example.org")


def test_a_plain_mail_arrives_with_sender_recipient_and_subject(sink: SmtpSink) -> None:
    send(sink.settings(), _message())
    [got] = sink.received
    assert got.mail_from == "homecal@example.org"
    assert got.rcpt_tos == ["alice@example.org"]
    assert got.message["Subject"] == "homecal test mail"
    assert got.message["Message-ID"] and got.message["Date"]
    assert "https://cal.example.org" in got.message.get_content()


def test_the_sender_comes_from_the_settings_when_the_message_has_none(sink: SmtpSink) -> None:
    send(sink.settings(from_address="alerts@example.org"), make_test_mail(
        "bob@example.org", sender="", requested_by="admin", base_url="x"))
    assert sink.received[0].mail_from == "alerts@example.org"
    assert sink.received[0].message.get_all("From") == ["alerts@example.org"]


def test_no_sender_at_all_is_explained(sink: SmtpSink) -> None:
    with pytest.raises(MailError, match="No sender address"):
        send(sink.settings(from_address=""), make_test_mail("bob@example.org", sender="", requested_by="a", base_url="x"))
    assert sink.received == []


def test_mail_switched_off_is_explained() -> None:
    with pytest.raises(MailError, match="not set up"):
        send(SmtpSettings(host=""), _message())


def test_login_with_the_right_password_sends(sink: SmtpSink) -> None:
    send(sink.settings(username="homecal", password=SECRET), _message())
    assert len(sink.received) == 1


def test_a_wrong_password_says_authentication_failed_and_never_echoes_it(caplog) -> None:
    caplog.set_level(logging.DEBUG)
    with SmtpSink(login=("homecal", "the-right-one-xyz"), echo_password=True) as server:
        with pytest.raises(MailError) as err:
            send(server.settings(username="homecal", password=SECRET), _message())
        assert server.received == []
    text = str(err.value)
    assert text.startswith("Authentication failed")
    assert SECRET not in text
    assert "wrong password ********" in text  # the server's echo, with the password blanked
    # homecal's own log lines (aiosmtpd, the test server, logs its whole dialogue at debug level)
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("homecal")]
    assert ours and not any(SECRET in line for line in ours)
    assert err.value.__cause__ is None and err.value.__suppress_context__  # no raw reply in a traceback


def test_a_refused_connection_is_explained() -> None:
    port = free_port()  # nothing listens there
    with pytest.raises(MailError, match=rf"127\.0\.0\.1:{port} refused the connection"):
        send(SmtpSettings(host="127.0.0.1", port=port, security="none", from_address="a@example.org"), _message())


def test_a_silent_server_times_out_with_a_clear_message() -> None:
    # A socket that accepts connections (the kernel's backlog) but never greets.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        port = silent.getsockname()[1]
        settings = SmtpSettings(host="127.0.0.1", port=port, security="none", from_address="a@example.org",
                                timeout=0.5)
        with pytest.raises(MailError, match=r"did not answer within 0\.5 seconds"):
            send(settings, _message())


def test_starttls_with_a_trusted_certificate_sends(tls) -> None:
    server_ctx, client_ctx = tls
    with SmtpSink(starttls=server_ctx, login=("homecal", SECRET), auth_require_tls=True) as server:
        send(server.settings(security="starttls", username="homecal", password=SECRET), _message(),
             ssl_context=client_ctx)
        assert len(server.received) == 1


def test_starttls_with_an_untrusted_certificate_is_a_tls_problem(tls) -> None:
    server_ctx, _ = tls
    with SmtpSink(starttls=server_ctx) as server:
        with pytest.raises(MailError, match="TLS problem: the certificate of 127.0.0.1 could not be verified"):
            send(server.settings(security="starttls"), _message())  # the system's trust store
        assert server.received == []


def test_starttls_on_a_server_without_it_is_a_tls_problem(sink: SmtpSink) -> None:
    with pytest.raises(MailError, match="TLS problem: .* does not offer STARTTLS"):
        send(sink.settings(security="starttls"), _message())
    assert sink.received == []


def test_implicit_tls_sends(tls) -> None:
    server_ctx, client_ctx = tls
    with SmtpSink(implicit_tls=server_ctx) as server:
        send(server.settings(security="tls"), _message(), ssl_context=client_ctx)
        assert len(server.received) == 1


def test_tls_against_a_plain_server_is_a_tls_problem(sink: SmtpSink) -> None:
    with pytest.raises(MailError, match="TLS problem: the secure connection"):
        send(sink.settings(security="tls"), _message())


def test_a_log_in_the_server_only_allows_after_tls_is_explained() -> None:
    with SmtpSink(login=("homecal", SECRET), auth_require_tls=True) as server:
        with pytest.raises(MailError, match="does not accept a log-in on this connection"):
            send(server.settings(username="homecal", password=SECRET), _message())


@pytest.mark.parametrize("address", ["a@example.org", "first.last+tag@sub.example.co", "root@localhost"])
def test_good_addresses_pass(address: str) -> None:
    assert validate_address(f"  {address} ") == address


@pytest.mark.parametrize("address", ["", "plain", "a@", "@b.org", "a b@c.org", "a@b.org, c@d.org",
                                     "a@b.org\r\nBcc: x@y.org", "<a@b.org>", "a@-b.org", "x" * 250 + "@b.org"])
def test_bad_addresses_are_refused(address: str) -> None:
    with pytest.raises(UsageError):
        validate_address(address)
