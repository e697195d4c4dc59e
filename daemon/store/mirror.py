"""The mirror: what homecal last read from each calendar, as sealed instances.

Times, flags and provenance are plain columns (indexed, used by planning and availability);
title, description, location and the original zone of the times are sealed per row.
Applying a ChangeSet is one transaction, so a crash leaves the previous mirror intact.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from daemon.errors import HomecalError
from daemon.models import ChangeSet, Instance, Window
from daemon.store.db import Store


class EmptySource(HomecalError):
    """A full listing came back empty for a calendar that had events: a fault, not a wipe."""


def _enc_time(value: datetime | date) -> dict:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return {"dt": value.isoformat(), "floating": True}
        key = getattr(value.tzinfo, "key", None)
        if key:
            return {"dt": value.replace(tzinfo=None).isoformat(), "tz": key}
        return {"dt": value.isoformat()}  # fixed offset / UTC keep their offset
    return {"date": value.isoformat()}


def _dec_time(d: dict) -> datetime | date:
    if "date" in d:
        return date.fromisoformat(d["date"])
    dt = datetime.fromisoformat(d["dt"])
    if d.get("tz"):
        try:
            return dt.replace(tzinfo=ZoneInfo(d["tz"]))
        except ZoneInfoNotFoundError:
            return dt.replace(tzinfo=timezone.utc)
    return dt


def _seal_payload(inst: Instance) -> str:
    return json.dumps({
        "uid": inst.uid, "rid": inst.recurrence_id, "start": _enc_time(inst.start), "end": _enc_time(inst.end),
        "summary": inst.summary, "description": inst.description, "location": inst.location,
    })


def _row_to_instance(store: Store, row: dict) -> Instance:
    data = json.loads(store.unseal("instances", "data_sealed", row["id"], row["data_sealed"]))
    return Instance(
        key=row["key"], item_id=row["item_id"], uid=data["uid"], recurrence_id=data["rid"],
        start=_dec_time(data["start"]), end=_dec_time(data["end"]), all_day=bool(row["all_day"]),
        transparent=bool(row["transparent"]), status=row["status"], declined=bool(row["declined"]),
        summary=data["summary"], description=data["description"], location=data["location"],
        partner_key=row["partner_key"],
    )


def known_etags(store: Store, calendar_id: int) -> dict[str, str | None]:
    return {r[0]: r[1] for r in store.db.execute("SELECT item_id, etag FROM items WHERE calendar_id = ?", [calendar_id])}


def item_count(store: Store, calendar_id: int) -> int:
    return store.db.execute("SELECT count(*) FROM items WHERE calendar_id = ?", [calendar_id]).fetchone()[0]


def _insert_instances(store: Store, calendar_id: int, instances: list[Instance], tz: tzinfo) -> None:
    db = store.db
    for inst in instances:
        start, end = inst.utc_bounds(tz)
        cur = db.execute(
            "INSERT INTO instances (calendar_id, item_id, key, start_utc, end_utc, all_day, transparent, status, "
            "declined, partner_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(calendar_id, key) DO UPDATE SET item_id=excluded.item_id, start_utc=excluded.start_utc, "
            "end_utc=excluded.end_utc, all_day=excluded.all_day, transparent=excluded.transparent, "
            "status=excluded.status, declined=excluded.declined, partner_key=excluded.partner_key "
            "RETURNING id",
            [calendar_id, inst.item_id, inst.key, start.isoformat(), end.isoformat(), int(inst.all_day),
             int(inst.transparent), inst.status, int(inst.declined), inst.partner_key],
        )
        row_id = cur.fetchone()[0]
        db.execute("UPDATE instances SET data_sealed = ? WHERE id = ?",
                   [store.seal("instances", "data_sealed", row_id, _seal_payload(inst)), row_id])


def apply_changes(store: Store, calendar_id: int, changes: ChangeSet, tz: tzinfo, *,
                  allow_empty: bool = False, details: bool = True) -> dict[str, int]:
    """Fold a ChangeSet into the mirror in one transaction. Returns counts.

    Raises EmptySource (changing nothing) when a full listing has no objects at all but the
    mirror had some, unless `allow_empty` (the user confirmed). `details=False` (free-busy
    accounts) drops titles and descriptions before they are stored: the second line of the
    access gate, after the provider's own reading.
    """
    present = {i.id for i in changes.items} | set(changes.unchanged) | set(changes.skipped)
    db = store.db
    # Counted only for an empty full listing: a quiet refresh must not pay a scan of items.
    before = item_count(store, calendar_id) if changes.full and not present else 0
    if changes.full and not present and before and not allow_empty:
        raise EmptySource(
            f"the calendar returned no events at all although homecal knew {before}; treated as a fault, "
            "nothing deleted (confirm with `homecal rule confirm-deletions` if it really was emptied)"
        )
    removed = set(changes.removed)
    if changes.full:
        removed |= set(known_etags(store, calendar_id)) - present
    counts = {"upserted": 0, "removed": 0}
    with store.atomic():
        for item_id in removed:
            db.execute("DELETE FROM instances WHERE calendar_id = ? AND item_id = ?", [calendar_id, item_id])
            db.execute("DELETE FROM items WHERE calendar_id = ? AND item_id = ?", [calendar_id, item_id])
            counts["removed"] += 1
        for item in changes.items:
            db.execute("DELETE FROM instances WHERE calendar_id = ? AND item_id = ?", [calendar_id, item.id])
            db.execute("INSERT INTO items (calendar_id, item_id, etag) VALUES (?, ?, ?) "
                       "ON CONFLICT(calendar_id, item_id) DO UPDATE SET etag = excluded.etag",
                       [calendar_id, item.id, item.etag])
            instances = item.instances if details else [i.without_details() for i in item.instances]
            _insert_instances(store, calendar_id, instances, tz)
            counts["upserted"] += 1
    return counts


def instances(store: Store, calendar_id: int, window: Window | None = None) -> list[Instance]:
    """The mirror's instances of one calendar (inside `window` if given), in start order."""
    sql = "SELECT * FROM instances WHERE calendar_id = ?"
    args: list = [calendar_id]
    if window is not None:
        sql += " AND start_utc < ? AND end_utc >= ?"
        args += [window.end.isoformat(), window.start.isoformat()]
    rows = store.db.execute(sql + " ORDER BY start_utc", args)
    cols = [c[0] for c in rows.description]
    return [_row_to_instance(store, dict(zip(cols, r, strict=True))) for r in rows.fetchall()]


def partner_keys(store: Store, calendar_id: int) -> set[str]:
    return {r[0] for r in store.db.execute(
        "SELECT partner_key FROM instances WHERE calendar_id = ? AND partner_key IS NOT NULL", [calendar_id])}


def clear(store: Store, calendar_id: int) -> None:
    """Forget the mirror of a calendar (used when it is removed from homecal, never on a reset)."""
    with store.atomic() as db:
        db.execute("DELETE FROM instances WHERE calendar_id = ?", [calendar_id])
        db.execute("DELETE FROM items WHERE calendar_id = ?", [calendar_id])
