#!/usr/bin/env python3
"""Benchmark: booking slots for a 60-day window over 10 calendars holding 20,000 busy intervals.

Issue #5 point 10 sets the goal: the slot computation for a 60-day window over 10 calendars
holding 20,000 busy intervals, median under 20 ms. What is timed is one whole call of
`daemon.booking.availability.slots(...)`, merging the unsorted busy list included, exactly as
the booking page will call it; building the input (reading the store) is not timed.

The data is generated deterministically (fixed seed, fixed `now`, Europe/Berlin, the window
crossing the 2026-10-25 DST change) in two shapes of the same size, 10 calendars x 2,000
intervals:

- `independent`: every calendar holds its own 2,000 events, placed at random over the 60
  days at any hour, 15 to 90 minutes long, 2% all-day (one to three days), some in
  America/New_York or Asia/Tokyo; at this density (333 events a day) almost nothing is free.
- `copies`: 2,200 distinct events, each calendar holding 2,000 of them, as when homecal's
  busy rules copy the same meetings into several calendars; here some slots stay free.

The link: Monday to Friday 09:00-12:00 and 13:00-18:00, 30 minutes every 15, buffers of 10
minutes before and after, 4 hours' notice, a rolling 60-day window, at most 8 bookings a day
(some days already have some). For scale it also times one `is_bookable` check (the booking
time re-check) over the same 20,000 intervals.

Nothing here asserts a time limit: it measures and reports.

Usage (from the repository root):
    python benchmarks/slots.py                                 # median of 50 runs
    python benchmarks/slots.py --runs 200 --write docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as a script: make `benchmarks` and `daemon` importable
    sys.path.insert(0, str(REPO))

from benchmarks import machine_info  # noqa: E402
from daemon.booking import availability  # noqa: E402
from daemon.booking.availability import BusyTime, is_bookable, slots  # noqa: E402
from daemon.booking.link_settings import LinkSettings  # noqa: E402

SEED = 20261005
ZONE = ZoneInfo("Europe/Berlin")
NOW = datetime(2026, 10, 5, 7, 30, tzinfo=ZONE)  # a Monday; the window crosses 2026-10-25
DAYS = 60
CALENDARS = 10
PER_CALENDAR = 2_000
POOL = 2_200  # distinct events of the `copies` shape
GOAL_MS = 20.0
BEGIN_MARK = "<!-- slots:start -->"
END_MARK = "<!-- slots:end -->"
SECTION_TITLE = "Booking slots: 60 days, 10 calendars, 20,000 busy intervals"
OTHER_ZONES = (ZoneInfo("America/New_York"), ZoneInfo("Asia/Tokyo"))

SETTINGS = LinkSettings(
    title="Benchmark",
    durations=(30, 60),
    weekly_hours={d: (("09:00", "12:00"), ("13:00", "18:00")) for d in ("mon", "tue", "wed", "thu", "fri")},
    conflict_calendar_ids=tuple(range(1, CALENDARS + 1)),
    buffer_before=10, buffer_after=10, min_notice=240,
    window_kind="rolling", rolling_days=DAYS, interval=15, daily_limit=8, all_day_blocks=True)


def _event(rng: random.Random) -> BusyTime:
    """One random busy interval inside the window, as a provider would hand it over."""
    first = NOW.date()
    day = first + timedelta(days=rng.randrange(DAYS))
    if rng.random() < 0.02:  # all-day: the host zone's midnights, one to three days
        start = datetime.combine(day, datetime.min.time(), tzinfo=ZONE)
        end = datetime.combine(day + timedelta(days=rng.randint(1, 3)), datetime.min.time(), tzinfo=ZONE)
        return BusyTime(start.astimezone(UTC), end.astimezone(UTC), all_day=True)
    start = datetime.combine(day, datetime.min.time(), tzinfo=ZONE) + timedelta(minutes=5 * rng.randrange(288))
    start = start.astimezone(UTC)
    end = start + timedelta(minutes=15 * rng.randint(1, 6))
    if rng.random() < 0.1:  # some arrive in the zone they were written in
        zone = rng.choice(OTHER_ZONES)
        start, end = start.astimezone(zone), end.astimezone(zone)
    return BusyTime(start, end)


def generate(shape: str, seed: int = SEED) -> list[BusyTime]:
    """10 calendars x 2,000 intervals, concatenated calendar by calendar (unsorted overall)."""
    rng = random.Random(seed)
    if shape == "independent":
        calendars = [[_event(rng) for _ in range(PER_CALENDAR)] for _ in range(CALENDARS)]
    else:
        pool = [_event(rng) for _ in range(POOL)]
        calendars = [rng.sample(pool, PER_CALENDAR) for _ in range(CALENDARS)]
    for cal in calendars:
        rng.shuffle(cal)
    return [b for cal in calendars for b in cal]


def booked_days(seed: int = SEED) -> dict[date, int]:
    rng = random.Random(seed + 1)
    return {NOW.date() + timedelta(days=d): rng.randint(1, 8) for d in rng.sample(range(DAYS), 12)}


@dataclass
class Measured:
    label: str
    times_ms: list[float]
    found: int  # slots returned (or 1/0 for is_bookable)
    distinct: int

    @property
    def median(self) -> float:
        return statistics.median(self.times_ms)

    @property
    def p95(self) -> float:
        ordered = sorted(self.times_ms)
        return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def measure(label: str, call, runs: int, distinct: int) -> Measured:
    result = call()  # warm-up, and the answer to report
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        call()
        times.append((time.perf_counter() - t0) * 1000)
    found = len(result) if isinstance(result, list) else int(result)
    return Measured(label, times, found, distinct)


def distinct_intervals(busy: list[BusyTime]) -> int:
    return len({(b.start.timestamp(), b.end.timestamp()) for b in busy})


def run(runs: int) -> tuple[list[Measured], int]:
    booked = booked_days()
    results = []
    # what the link offers with nothing busy and nothing booked
    candidates = len(slots(SETTINGS, duration=30, tz=ZONE, busy=[], booked_per_day={}, now=NOW))
    for shape in ("independent", "copies"):
        busy = generate(shape)
        distinct = distinct_intervals(busy)

        def call(busy=busy):
            return slots(SETTINGS, duration=30, tz=ZONE, busy=busy, booked_per_day=booked, now=NOW)

        results.append(measure(f"`slots`, 30 min, {shape}", call, runs, distinct))
    # Where the time goes: the busy list's share of the call above (a private helper, timed
    # with the same bounds `slots` gives it).
    lo = NOW.astimezone(UTC)

    def index():
        return availability._Busy(busy, all_day_blocks=True, lo=lo, hi=lo + timedelta(days=DAYS + 1)).starts

    results.append(measure("of which: indexing the busy list, copies", index, runs, distinct))
    busy = generate("copies")
    free = slots(SETTINGS, duration=30, tz=ZONE, busy=busy, booked_per_day=booked, now=NOW)
    at = free[len(free) // 2].start if free else NOW

    def check():
        return is_bookable(SETTINGS, duration=30, tz=ZONE, busy=busy, booked_per_day=booked, now=NOW, start=at)

    results.append(measure("`is_bookable`, one free start, copies", check, runs, distinct_intervals(busy)))
    return results, candidates


def machine() -> dict[str, str]:
    return {"nproc": str(os.cpu_count()), "cpu": machine_info.cpu_model(), "python": platform.python_version(),
            "os": f"{platform.system()} {platform.release()}", "commit": machine_info.commit(),
            "load": f"{os.getloadavg()[0]:.1f}"}


def verdict(m: Measured) -> str:
    return "met" if m.median < GOAL_MS else "**not met**"


def render_markdown(results: list[Measured], candidates: int, runs: int, started: datetime,
                    command: str) -> str:
    mach = machine()
    goal_rows = [m for m in results if m.label.startswith("`slots`")]
    worst = max(goal_rows, key=lambda m: m.median)
    lines = [
        BEGIN_MARK,
        f"## {SECTION_TITLE}",
        "",
        f"Produced by `{command}` on {started:%Y-%m-%d %H:%M} UTC.",
        "",
        (f"Machine: {mach['nproc']} cores ({mach['cpu']}), {mach['os']}, Python {mach['python']}, "
         f"commit {mach['commit']}; 1-minute load average at the end: {mach['load']} (the machine is shared, "
         "so single numbers are noisy)."),
        "",
        (f"Input (seed {SEED}, `now` = {NOW:%Y-%m-%d %H:%M} Europe/Berlin, a 60-day rolling window that crosses "
         "the 2026-10-25 DST change): 10 calendars x 2,000 busy intervals, unsorted, 2% all-day, 10% given in "
         "New York or Tokyo time. `independent`: each calendar its own events at any hour (333 a day, so "
         f"almost nothing is free). `copies`: {POOL:,} distinct events, each calendar holding 2,000 of them, "
         "as homecal's busy rules copy one meeting into several calendars. The link: Monday to Friday "
         "09:00-12:00 and 13:00-18:00, 30 minutes every 15, buffers 10/10, 4 h notice, at most 8 a day "
         f"(12 days already partly booked); {candidates:,} slots with nothing busy or booked. "
         f"Timed: the whole call, merging the busy list included, {runs} runs after one warm-up."),
        "",
        "| call | median | p95 | min | distinct intervals | result |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for m in results:
        if m.label.startswith("`slots`"):
            result = f"{m.found:,} slots"
        elif m.label.startswith("`is_bookable`"):
            result = "bookable" if m.found else "taken"
        else:
            result = f"{m.found:,} intervals kept"
        lines.append(f"| {m.label} | {m.median:.2f} ms | {m.p95:.2f} ms | {min(m.times_ms):.2f} ms | "
                     f"{m.distinct:,} | {result} |")
    copies = next(m for m in results if m.label == "`slots`, 30 min, copies")
    index = next(m for m in results if m.label.startswith("of which"))
    lines += [
        "",
        (f"Reading: most of the call is the busy list ({index.median:.1f} of {copies.median:.1f} ms for `copies`): "
         "each interval is read, put in UTC (those given in another zone are converted) and sorted by start "
         "once, with a running maximum of the ends, so each candidate start is then one bisect; walking the "
         "candidate starts of the 60 days is the rest. `is_bookable` reads the whole list too but keeps and "
         "sorts only the intervals near the one start, so it costs a pass over the list, not a sort."),
        "",
        (f"Goal (issue #5): median under {GOAL_MS:g} ms. Slowest shape: {worst.median:.2f} ms - "
         f"{verdict(worst)}."),
        "",
        END_MARK,
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=50, help="timed calls per measurement (default 50)")
    parser.add_argument("--write", type=Path, metavar="FILE", help="refresh this script's section of FILE")
    args = parser.parse_args(argv)
    started = datetime.now(UTC)
    results, candidates = run(args.runs)
    print(f"\n{'call':<44} {'median':>9} {'p95':>9} {'min':>9} {'result':>8}")
    for m in results:
        print(f"{m.label:<44} {m.median:>6.2f} ms {m.p95:>6.2f} ms {min(m.times_ms):>6.2f} ms {m.found:>8,}")
    worst = max((m for m in results if m.label.startswith("`slots`")), key=lambda m: m.median)
    print(f"\ngoal: median under {GOAL_MS:g} ms -> {verdict(worst).strip('*')} ({worst.median:.2f} ms)")
    if args.write:
        command = "python benchmarks/slots.py " + " ".join(argv if argv is not None else sys.argv[1:])
        section = render_markdown(results, candidates, args.runs, started, command.strip())
        machine_info.write_section(args.write, BEGIN_MARK, END_MARK, section)
        print(f"wrote its section of {args.write}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
