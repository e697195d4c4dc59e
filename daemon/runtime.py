"""`homecal run`: the scheduler and the web server in one process, stopped cleanly by signals.

The main thread runs waitress's event loop. SIGTERM or SIGINT raises SystemExit inside that
loop, which waitress answers by finishing the requests in flight. Then the scheduler stops
taking new jobs, running jobs get a bounded time to finish (they are written to be safe to
abandon), the WAL is checkpointed and every database connection is closed.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from ipaddress import ip_address

import waitress

from daemon import __version__
from daemon.config import Config
from daemon.errors import HomecalError
from daemon.scheduler import JobTracker, build_scheduler
from daemon.store import Store
from daemon.store import users
from daemon.store.db import utcnow

log = logging.getLogger("homecal.runtime")

JOB_GRACE_SECONDS = 20


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


class Daemon:
    """One running homecal: owns the scheduler and the HTTP server for its lifetime."""

    def __init__(self, config: Config, store: Store):
        self.config = config
        self.store = store
        self.stop = threading.Event()
        self.tracker = JobTracker()
        self.server = None
        self.scheduler = None

    def _on_signal(self, signum: int, _frame) -> None:
        if self.stop.is_set():
            log.warning("already stopping; waiting for running jobs (send SIGKILL to abandon them)")
            return
        log.info("received %s, stopping", signal.Signals(signum).name)
        self.stop.set()
        raise SystemExit(0)

    def _listen(self):
        # Imported here: the web UI depends on the daemon package, never the reverse at import time.
        from webui import create_app

        app = create_app(self.config, self.store)
        host, port = self.config.server.host, self.config.server.port
        try:
            return waitress.create_server(app, host=host, port=port, threads=8, ident="homecal")
        except OSError as err:
            raise HomecalError(
                f"cannot listen on {host}:{port}: {err.strerror or err}. "
                "Stop the other program using it or set [server] port in the config."
            ) from None

    def run(self) -> int:
        """Serve until a signal arrives. Returns the process exit code."""
        self.server = self._listen()
        self.scheduler = build_scheduler(self.config, self.store, self.stop, self.tracker)
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            self.store.meta_set("daemon_pid", str(os.getpid()))
            self.store.meta_set("daemon_started_at", utcnow())
            self.store.meta_set("daemon_url", self.config.server.base_url)
            self.scheduler.start()
            host = self.config.server.host
            log.info("homecal %s serving http://%s:%s/ (data: %s)", __version__,
                     host if ":" not in host else f"[{host}]", self.server.effective_port,
                     self.config.storage.data_path)
            if not is_loopback(host):
                log.warning("the web UI listens on %s, not only on this machine: put it behind TLS", host)
            if users.count(self.store) == 0:
                if is_loopback(host):
                    log.info("no admin yet: open %s/setup in a browser on this machine, "
                             "or run `homecal init --admin-user NAME`", self.config.server.base_url)
                else:
                    log.info("no admin yet: run `homecal init --admin-user NAME` on this machine")
            self.server.run()  # returns after SystemExit from the signal handler
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self.shutdown()
        return 0

    def shutdown(self) -> None:
        self.stop.set()
        if self.scheduler is not None and self.scheduler.running:
            # Pause first: APScheduler's loop may be between waking up and processing jobs,
            # and a shutdown then would pull the jobs from under it. Paused, it submits
            # nothing new while the running jobs get their grace time.
            self.scheduler.pause()
            if not self.tracker.wait_idle(JOB_GRACE_SECONDS):
                log.warning("%d job(s) still running after %ss; abandoning them (their work is journaled)",
                            self.tracker.running, JOB_GRACE_SECONDS)
            self.scheduler.shutdown(wait=False)
        if self.server is not None:
            try:
                self.server.close()
            except Exception:  # noqa: BLE001 - already closed by waitress on SystemExit
                pass
        # A mail being sent right after a booking may finish; one cut off is sent again later.
        from daemon.booking.outbox_job import wait_idle

        wait_idle(5)
        try:
            self.store.meta_set("daemon_pid", None)
            self.store.meta_set("daemon_stopped_at", utcnow())
            self.store.checkpoint()
        except HomecalError:
            pass
        self.store.close()
        log.info("stopped")
