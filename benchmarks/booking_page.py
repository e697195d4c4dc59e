#!/usr/bin/env python3
"""Benchmark: the public booking page served by a real `homecal run` to 50 concurrent clients.

Issue #5 point 10 sets the goal: the booking page served by waitress to 50 concurrent clients
on loopback, p95 under 100 ms, no errors.

Set-up (not timed): a fresh data directory; a host in Europe/Berlin with 10 local calendars
holding 20,000 events between them (2,000 each, seeded, spread over the next 60 days, some
all-day), read into the mirror by the sync engine exactly as the daemon does; a booking
link over all 10 calendars (weekdays 09:00-12:00 and 13:00-18:00, 30 minutes every 15,
buffers, a 60-day window). Then `homecal --config ... run` starts in its own process (the
real daemon: waitress with its 8 threads, the scheduler running beside it), so the clients
and the server do not share an interpreter.

Timed: 50 client threads, each with its own keep-alive connection, each fetching the link's
page (the visitor's week of slots, in America/New_York) `--requests` times, paging through
the weeks of the window. Every response must be 200 with the slot list in it; anything
else counts as an error. Latency is from sending the request to the last byte.

Nothing here asserts a time limit: it measures and reports.

Usage (from the repository root):
    python benchmarks/booking_page.py                      # 50 clients x 40 requests
    python benchmarks/booking_page.py --write docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks import machine_info  # noqa: E402

SEED = 20261121
CALENDARS = 10
PER_CALENDAR = 2_000
DAYS = 60
GOAL_P95_MS = 100.0
BEGIN_MARK = "<!-- booking-page:start -->"
END_MARK = "<!-- booking-page:end -->"
SECTION_TITLE = "Booking page: 50 concurrent visitors against `homecal run`"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _event(uid: str, rng: random.Random, today: date) -> str:
    day = today + timedelta(days=rng.randrange(DAYS))
    if rng.random() < 0.02:
        return (f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//bench//EN\r\nBEGIN:VEVENT\r\nUID:{uid}\r\n"
                f"DTSTAMP:20260101T000000Z\r\nDTSTART;VALUE=DATE:{day:%Y%m%d}\r\n"
                f"DTEND;VALUE=DATE:{day + timedelta(days=1):%Y%m%d}\r\nSUMMARY:Away\r\nEND:VEVENT\r\n"
                "END:VCALENDAR\r\n")
    start = datetime(day.year, day.month, day.day, rng.randrange(6, 21), rng.choice((0, 15, 30, 45)), tzinfo=UTC)
    end = start + timedelta(minutes=rng.choice((15, 30, 45, 60, 90)))
    return (f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//bench//EN\r\nBEGIN:VEVENT\r\nUID:{uid}\r\n"
            f"DTSTAMP:20260101T000000Z\r\nDTSTART:{start:%Y%m%dT%H%M%SZ}\r\nDTEND:{end:%Y%m%dT%H%M%SZ}\r\n"
            f"SUMMARY:Meeting {uid}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")


def prepare(data_dir: Path, port: int) -> tuple[Path, str]:
    """The data directory with its store filled, and the config file; returns (config, link key)."""
    from daemon.booking.link_settings import LinkSettings
    from daemon.config import load_config
    from daemon.models import AccessMode, CalendarInfo
    from daemon.providers.local import LocalProvider
    from daemon.store import accounts, booking_links, open_store, users
    from daemon.sync.cycle import engine_for

    cfg = data_dir / "config.toml"
    # A long interval: the first cycle still runs at start, as in production.
    cfg.write_text(f'[server]\nport = {port}\n[storage]\ndata_dir = "{data_dir}"\n'
                   f'[sync]\nwindow_future_days = {DAYS + 5}\ninterval_seconds = 3600\n')
    config = load_config(cfg)
    store = open_store(config, env={}, create=True)
    try:
        host = users.create(store, "host", "correct horse battery", is_admin=True)
        users.set_timezone(store, host.id, "Europe/Berlin")
        rng = random.Random(SEED)
        today = datetime.now(UTC).date()
        cal_ids = []
        for n in range(CALENDARS):
            acc = accounts.add(store, host.id, "local", f"cal{n}", AccessMode.READ_WRITE, {})
            cal = accounts.save_calendars(store, acc.id, [CalendarInfo("local", f"cal{n}")])[0]
            provider = LocalProvider(store=store, account_id=acc.id, name=f"cal{n}", mode=AccessMode.READ_WRITE,
                                     tz=UTC)
            for i in range(PER_CALENDAR):
                uid = f"c{n}e{i}"
                provider.put_ics("local", uid, _event(uid, rng, today))
            cal_ids.append(cal.id)
        engine_for(store, config).refresh_calendars(host.id)
        rows = store.db.execute("SELECT count(*) FROM instances").fetchone()[0]
        print(f"store ready: {rows:,} instances in the mirror", file=sys.stderr)
        link = booking_links.create(store, host.id, LinkSettings(
            title="Benchmark call", durations=(30, 60), conflict_calendar_ids=tuple(cal_ids),
            weekly_hours={d: (("09:00", "12:00"), ("13:00", "18:00")) for d in ("mon", "tue", "wed", "thu", "fri")},
            buffer_before=10, buffer_after=10, min_notice=240, rolling_days=DAYS, interval=15), slug="bench")
        return cfg, link.url_key
    finally:
        store.close()


def start_daemon(cfg: Path, port: int) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-c", "from daemon.cli import main; raise SystemExit(main())",
                             "--config", str(cfg), "run"], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                conn.close()
                return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("homecal run did not answer /healthz within 30 s")


def hammer(port: int, key: str, clients: int, requests: int) -> tuple[list[float], list[str], float, int]:
    """Latencies (ms) of every request, the errors, the wall time, and bytes of one page."""
    weeks = [(datetime.now(UTC).date() + timedelta(days=7 * w)).isoformat() for w in range(DAYS // 7)]
    latencies: list[float] = []
    errors: list[str] = []
    size = [0]
    lock = threading.Lock()
    barrier = threading.Barrier(clients)

    def client(n: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine: list[float] = []
        barrier.wait()
        for i in range(requests):
            path = f"/book/{key}?tz=America/New_York&duration=30&from={weeks[(n + i) % len(weeks)]}"
            t0 = time.perf_counter()
            try:
                conn.request("GET", path)
                resp = conn.getresponse()
                body = resp.read()
                took = (time.perf_counter() - t0) * 1000
                if resp.status != 200 or b"/book/" not in body:
                    with lock:
                        errors.append(f"{resp.status} on {path}")
                else:
                    mine.append(took)
                    size[0] = len(body)
            except OSError as err:
                with lock:
                    errors.append(f"{type(err).__name__} on {path}")
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, errors, time.perf_counter() - t0, size[0]


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def render(args: argparse.Namespace, lat: list[float], errors: list[str], wall: float, size: int,
           command: str, started: datetime) -> str:
    p95 = pct(lat, 95) if lat else float("nan")
    met = not errors and p95 < GOAL_P95_MS
    return "\n".join([
        BEGIN_MARK,
        f"## {SECTION_TITLE}",
        "",
        f"Produced by `{command}` on {started:%Y-%m-%d %H:%M} UTC.",
        "",
        (f"Machine: {os.cpu_count()} cores ({machine_info.cpu_model()}), Python {sys.version.split()[0]}, "
         f"commit {machine_info.commit()}. The server is `homecal run` in its own process (waitress, 8 threads, "
         "the scheduler beside it); the clients are threads of the benchmark process on the same machine, so "
         "they compete with the server for the 2 cores."),
        "",
        (f"Data: {CALENDARS} local calendars x {PER_CALENDAR:,} events (seed {SEED}) read into the mirror by the "
         f"sync engine; one link over all of them (weekdays 09:00-12:00 and 13:00-18:00, 30 minutes every 15, "
         f"10-minute buffers, {DAYS}-day window). Each of {args.clients} clients keeps one connection and fetches "
         f"the page {args.requests} times, paging through the weeks of the window, times shown in "
         "America/New_York."),
        "",
        "| requests | errors | median | p95 | p99 | max | throughput | page size |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
        (f"| {len(lat) + len(errors):,} | {len(errors)} | {statistics.median(lat):.1f} ms | {p95:.1f} ms | "
         f"{pct(lat, 99):.1f} ms | {max(lat):.1f} ms | {len(lat) / wall:.0f} pages/s | {size / 1024:.1f} KiB |"),
        "",
        f"Goal: p95 under {GOAL_P95_MS:.0f} ms with no errors: **{'met' if met else 'not met'}**.",
        "",
        ("Where the time goes: building the page (the week's slots over the merged busy time, plus the "
         "first free day after an empty week, then the template with its time-zone list) costs about 4 ms "
         "in process; with 50 clients on one interpreter that made p95 816 ms at 135 pages/s. The page is "
         "now reused while its inputs are unchanged (webui/page_cache.py: the link, the host's zone, each "
         "calendar's read state and account health, the host's bookings and the current minute make the "
         "key), so a request costs a link lookup and three small queries, about 0.5 ms in process. The "
         "first request for each week after any change, and every minute, still builds the page. Before "
         "that, reading and merging the 20,000 busy rows on every request cost 143 ms a page; they are "
         "merged once per state of the calendars (daemon/booking/busy.py). Taking a slot never uses "
         "either cache: it re-reads the calendars live and the rows inside the slot transaction."),
        "",
        END_MARK,
    ]) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--requests", type=int, default=40, help="requests per client (default 40)")
    parser.add_argument("--write", type=Path, metavar="FILE", help="refresh this script's section of FILE")
    args = parser.parse_args(argv)
    started = datetime.now(UTC)
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="homecal-bench-") as tmp:
        cfg, key = prepare(Path(tmp), port)
        proc = start_daemon(cfg, port)
        try:
            hammer(port, key, 5, 4)  # warm-up: imports, templates, caches
            lat, errors, wall, size = hammer(port, key, args.clients, args.requests)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
    if not lat:
        print("no successful request:", errors[:5])
        return 1
    print(f"{len(lat)} ok, {len(errors)} errors; median {statistics.median(lat):.1f} ms, p95 {pct(lat, 95):.1f} ms, "
          f"p99 {pct(lat, 99):.1f} ms, max {max(lat):.1f} ms; {len(lat) / wall:.0f} pages/s")
    for e in errors[:5]:
        print("  error:", e)
    if args.write:
        command = "python benchmarks/booking_page.py" + "".join(
            f" --{k} {v}" for k, v in (("clients", args.clients), ("requests", args.requests))
            if v != parser.get_default(k)) + f" --write {args.write}"
        section = render(args, lat, errors, wall, size, command, started)
        machine_info.write_section(args.write, BEGIN_MARK, END_MARK, section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
