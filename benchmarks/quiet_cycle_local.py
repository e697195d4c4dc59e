"""homecal's own cost of a no-change sync cycle, without any server: a clone rule from a local
calendar of N events into another local calendar, timed in-process (median of --cycles runs of
`engine.run()` after two settling syncs), at each size given.

It isolates what the CalDAV measurement in sync_vs_vdirsyncer.py cannot: there, almost all of a
quiet cycle is Radicale answering the sync REPORT. With `--statements` it also prints each SQL
statement of one quiet cycle with SQLite's query plan, marking any full-table SCAN.

    python benchmarks/quiet_cycle_local.py --sizes 1000 10000 --statements
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from daemon.config import Config, with_overrides  # noqa: E402
from daemon.models import AccessMode, CalendarInfo, Style  # noqa: E402
from daemon.providers.local import LocalProvider  # noqa: E402
from daemon.store import accounts, open_store, users  # noqa: E402
from daemon.store import rules as rules_repo  # noqa: E402
from daemon.sync.cycle import engine_for  # noqa: E402
from daemon.sync.options import RuleOptions  # noqa: E402

FMT = "%Y%m%dT%H%M%SZ"


def build(n: int):
    data = Path(tempfile.mkdtemp(prefix="homecal-quiet-"))
    os.environ.pop("HOMECAL_KEY", None)
    config = with_overrides(Config(), storage={"data_dir": str(data)}, sync={"max_deletions": 10 * n})
    store = open_store(config, create=True)
    owner = users.create(store, "owner", "correct horse battery", is_admin=True)
    cals = {}
    for name in ("A", "B"):
        acc = accounts.add(store, owner.id, "local", name, AccessMode.READ_WRITE, {})
        cals[name] = accounts.save_calendars(store, acc.id, [CalendarInfo("local", name)])[0]
    source = LocalProvider(store=store, account_id=cals["A"].account_id, name="A", mode=AccessMode.READ_WRITE, tz=UTC)
    base = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    with store.atomic():
        for i in range(n):
            start = base + timedelta(days=i % 85, hours=i % 10)
            source.put_ics("local", f"u{i}", "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:bench\r\nBEGIN:VEVENT\r\n"
                           f"UID:u{i}\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:{start.strftime(FMT)}\r\n"
                           f"DTEND:{(start + timedelta(minutes=30)).strftime(FMT)}\r\nSUMMARY:event {i}\r\n"
                           "END:VEVENT\r\nEND:VCALENDAR\r\n")
    rules_repo.add(store, owner.id, [cals["A"].id], cals["B"].id, RuleOptions(style=Style.CLONE))
    engine = engine_for(store, config)
    engine.run()
    engine.run()
    return store, engine


def statements(store, engine) -> None:
    conn = store.db.conn
    seen: list[str] = []
    conn.set_trace_callback(seen.append)
    engine.run()
    conn.set_trace_callback(None)
    for sql in seen:
        if not sql.lstrip().upper().startswith(("SELECT", "UPDATE", "INSERT", "DELETE")):
            continue
        plan = [str(row) for row in conn.execute("EXPLAIN QUERY PLAN " + sql)]
        scan = any("SCAN" in p for p in plan)
        print(f"  {'SCAN' if scan else '    '} {' '.join(sql.split())[:140]}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--cycles", type=int, default=200)
    parser.add_argument("--statements", action="store_true", help="print the SQL of one quiet cycle")
    args = parser.parse_args()
    for n in args.sizes:
        store, engine = build(n)
        times = []
        for _ in range(args.cycles):
            began = time.perf_counter()
            [report] = engine.run()
            times.append(time.perf_counter() - began)
            assert report.status == "unchanged", report
        print(f"{n:>6} source events: quiet cycle median {statistics.median(times) * 1000:.3f} ms "
              f"(min {min(times) * 1000:.3f}, {args.cycles} cycles)")
        if args.statements:
            statements(store, engine)
        store.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
