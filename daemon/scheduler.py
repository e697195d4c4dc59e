"""The APScheduler side of the daemon: background jobs, rebuilt from the store at start.

Jobs run in a small thread pool. Each job is wrapped so that (1) the runtime knows how
many are running when it must stop, and (2) a job's failure is logged and never kills the
scheduler. Jobs take a `stop` event and should return soon after it is set; anything they
leave half done must be safe to abandon (sync writes are journaled for that reason).
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler

from daemon.booking.outbox_job import outbox_job
from daemon.config import Config
from daemon.store import Store
from daemon.store.db import utcnow

log = logging.getLogger("homecal.scheduler")

HEARTBEAT_SECONDS = 30
OUTBOX_SECONDS = 30  # the booking outbox; a booking also kicks a delivery at once


class JobTracker:
    """Counts running jobs so shutdown can wait for them, up to a limit."""

    def __init__(self) -> None:
        self._running = 0
        self._cond = threading.Condition()

    def wrap(self, fn: Callable[..., None], name: str) -> Callable[..., None]:
        @functools.wraps(fn)
        def run(*args, **kwargs) -> None:
            with self._cond:
                self._running += 1
            try:
                fn(*args, **kwargs)
            except Exception:  # noqa: BLE001 - one failing job must not stop the others
                log.exception("job %s failed", name)
            finally:
                with self._cond:
                    self._running -= 1
                    self._cond.notify_all()

        return run

    @property
    def running(self) -> int:
        with self._cond:
            return self._running

    def wait_idle(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._running:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True


def heartbeat(store: Store, stop: threading.Event) -> None:
    """Record that the daemon is alive, for `homecal status`."""
    if not stop.is_set():
        store.meta_set("daemon_heartbeat_at", utcnow())


def sync_job(config: Config, store: Store, stop: threading.Event) -> None:
    """One sync cycle over every active rule; per-account failures are handled inside."""
    from daemon.sync.cycle import run_sync

    if stop.is_set():
        return
    reports = run_sync(store, config, should_stop=stop.is_set, refresh=True)
    changed = [r for r in reports if r.status not in ("unchanged",)]
    for r in changed:
        log.info("rule %s: %s (created %d, updated %d, deleted %d)%s", r.rule_id, r.status, r.created, r.updated,
                 r.deleted, f": {r.message}" if r.message else "")


def build_scheduler(config: Config, store: Store, stop: threading.Event, tracker: JobTracker) -> BackgroundScheduler:
    """A scheduler with every job homecal runs. Later features register their jobs here."""
    scheduler = BackgroundScheduler(
        executors={"default": ThreadPoolExecutor(max_workers=4)},
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 60},
        timezone="UTC",
    )
    scheduler.add_job(
        tracker.wrap(heartbeat, "heartbeat"), "interval", seconds=HEARTBEAT_SECONDS,
        args=[store, stop], id="heartbeat", name="heartbeat", next_run_time=datetime.now(timezone.utc),
    )
    scheduler.add_job(
        tracker.wrap(sync_job, "sync"), "interval", seconds=config.sync.interval_seconds,
        args=[config, store, stop], id="sync", name="sync",
        # the first cycle shortly after start, once the web server is up
        next_run_time=datetime.now(timezone.utc) + timedelta(seconds=5),
    )
    scheduler.add_job(
        tracker.wrap(outbox_job, "outbox"), "interval", seconds=OUTBOX_SECONDS,
        args=[config, store, stop], id="outbox", name="outbox",
        # mail queued while the daemon was down goes out soon after start
        next_run_time=datetime.now(timezone.utc) + timedelta(seconds=3),
    )
    return scheduler
