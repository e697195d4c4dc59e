"""Sending the outbox: the scheduler's "outbox" job and the kick after a booking.

`deliver_due` claims the due mails and hands each to the SMTP server; a failure is recorded
in plain words (daemon.mail's explanations) and the mail is tried again after a backoff.
With no SMTP server configured nothing is claimed: the mails wait, and go out once an admin
sets mail up. Logs say how many mails went and why one failed, never to whom or what.

`kick` starts a delivery in the background right after a booking, so the visitor's mail
does not wait for the next scheduler run and the web request does not wait for SMTP.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timezone
from email.message import EmailMessage

from daemon import mail
from daemon.config import Config
from daemon.store import Store
from daemon.store import outbox
from daemon.store.settings import effective_smtp

log = logging.getLogger("homecal.outbox")

Sender = Callable[[mail.SmtpSettings, EmailMessage], None]

BATCH = 20  # mails claimed at a time: what a crash mid-run leaves waiting for the lease
_unconfigured_logged = threading.Event()


def deliver_due(config: Config, store: Store, *, now: datetime | None = None, send: Sender = mail.send,
                should_stop: Callable[[], bool] = lambda: False) -> dict[str, int]:
    """Send every due mail once. Returns counts: sent, retry (failed, will be tried again),
    failed (gave up), waiting (left pending because mail is not set up)."""
    now = now or datetime.now(timezone.utc)
    counts = {"sent": 0, "retry": 0, "failed": 0, "waiting": 0}
    settings = effective_smtp(config, store)
    if not settings.configured:
        counts["waiting"] = outbox.pending_count(store)
        if counts["waiting"] and not _unconfigured_logged.is_set():
            _unconfigured_logged.set()  # once per process, not every 30 s
            log.warning("%d mail(s) wait in the outbox: no SMTP server is configured (Settings > Mail)",
                        counts["waiting"])
        return counts
    _unconfigured_logged.clear()
    # Batch after batch until nothing is due: a burst of bookings goes out in one run. A
    # mail claimed here is never due again in this run (sent, or retried minutes later).
    while claimed := outbox.claim_due(store, now, BATCH):
        for i, (entry_id, _recipient, message) in enumerate(claimed):
            if should_stop():
                outbox.release(store, [e[0] for e in claimed[i:]], now)
                _log_counts(counts)
                return counts
            _send_one(settings, store, entry_id, message, now, send, counts)
    _log_counts(counts)
    return counts


def _send_one(settings: mail.SmtpSettings, store: Store, entry_id: int, message: EmailMessage, now: datetime,
              send: Sender, counts: dict[str, int]) -> None:
    try:
        send(settings, message)
    except Exception as err:  # noqa: BLE001 - every failure is recorded on the row
        # mail.send raises MailError already explained and scrubbed; anything else (a
        # custom sender) is explained here, without the password either.
        text = str(err) if isinstance(err, mail.MailError) else mail.explain(err, settings)
        if settings.password:
            text = text.replace(settings.password, "********")
        status = outbox.mark_failed(store, entry_id, text, now)
        counts["failed" if status == "failed" else "retry"] += 1
        log.warning("outbox mail %d not sent (%s): %s", entry_id, "gave up" if status == "failed" else "will retry",
                    text)
    else:
        outbox.mark_sent(store, entry_id, now)
        counts["sent"] += 1


def _log_counts(counts: dict[str, int]) -> None:
    if counts["sent"] or counts["retry"] or counts["failed"]:
        log.info("outbox: %d sent, %d to retry, %d given up", counts["sent"], counts["retry"], counts["failed"])


class _Kicker:
    """At most one background delivery per process; a kick while one runs asks for one more
    round after it (the new mail may have been queued after that round claimed)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._running = False
        self._again = False

    def kick(self, config: Config, store: Store) -> None:
        with self._lock:
            if self._running:
                self._again = True
                return
            self._running = True
        threading.Thread(target=self._run, args=(config, store), name="homecal-outbox", daemon=True).start()

    def _run(self, config: Config, store: Store) -> None:
        while True:
            try:
                deliver_due(config, store)
            except Exception:  # noqa: BLE001 - the scheduler job tries again in 30 s
                log.exception("outbox delivery failed")
            with self._lock:
                if not self._again:
                    self._running = False
                    self._idle.notify_all()
                    break
                self._again = False
        store.release_thread()  # one thread per kick: its connection must not outlive it

    def wait_idle(self, timeout: float) -> bool:
        with self._idle:
            return self._idle.wait_for(lambda: not self._running, timeout)


_KICKER = _Kicker()


def kick(config: Config, store: Store) -> None:
    """Deliver due mail soon, in a background thread; returns at once."""
    _KICKER.kick(config, store)


def wait_idle(timeout: float = 30.0) -> bool:
    """Wait until no kicked delivery runs (tests; shutdown). False on timeout."""
    return _KICKER.wait_idle(timeout)


def outbox_job(config: Config, store: Store, stop: threading.Event) -> None:
    """The scheduler's job: deliver what is due, stopping between mails at shutdown."""
    if not stop.is_set():
        deliver_due(config, store, should_stop=stop.is_set)
