"""Shutdown waits for running jobs (bounded), then closes the store."""

from __future__ import annotations

import threading
import time

import pytest

from daemon import runtime
from daemon.errors import StoreError
from daemon.runtime import Daemon


def test_shutdown_lets_a_running_job_finish_then_closes_the_store(config, store):
    d = Daemon(config, store)
    started, finished = threading.Event(), threading.Event()

    def slow_job():
        started.set()
        time.sleep(0.5)
        store.meta_set("slow_job", "done")  # still allowed: the store closes only after
        finished.set()

    from daemon.scheduler import build_scheduler

    d.scheduler = build_scheduler(config, store, d.stop, d.tracker)
    d.scheduler.add_job(d.tracker.wrap(slow_job, "slow"), id="slow")
    d.scheduler.start()
    assert started.wait(5)
    d.shutdown()
    assert finished.is_set()
    with pytest.raises(StoreError):
        store.meta_get("slow_job")


def test_shutdown_abandons_a_job_that_overstays(config, store, monkeypatch):
    monkeypatch.setattr(runtime, "JOB_GRACE_SECONDS", 0.2)
    d = Daemon(config, store)
    release = threading.Event()
    from daemon.scheduler import build_scheduler

    d.scheduler = build_scheduler(config, store, d.stop, d.tracker)
    d.scheduler.add_job(d.tracker.wrap(lambda: release.wait(5), "stuck"), id="stuck")
    d.scheduler.start()
    time.sleep(0.2)
    t0 = time.monotonic()
    d.shutdown()
    assert time.monotonic() - t0 < 3  # did not wait the full 5 s
    release.set()


def test_a_failing_job_is_logged_and_does_not_stop_others(config, store, caplog):
    from daemon.scheduler import JobTracker

    tracker = JobTracker()

    def boom():
        raise RuntimeError("job exploded")

    tracker.wrap(boom, "boom")()
    assert tracker.running == 0
    assert "job boom failed" in caplog.text
