"""The mirror: what homecal last read from each calendar, as sealed instances.

Times, flags and provenance are plain columns (indexed, used by planning and availability);
title, description, location and the original zone of the times are sealed per row.
Applying a ChangeSet is one transaction, so a crash leaves the previous mirror intact.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone, tzinfo
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
    """Keys of the copies homecal finds in a calendar: by the marker read back, or by a
    mapping whose written event is still listed there (Graph's change feed hides markers)."""
    return {r[0] for r in store.db.execute(
        "SELECT partner_key FROM instances WHERE calendar_id = ? AND partner_key IS NOT NULL "
        "UNION SELECT m.idem_key FROM mappings m WHERE m.target_calendar_id = ? AND m.target_id IS NOT NULL "
        "AND EXISTS (SELECT 1 FROM items i WHERE i.calendar_id = m.target_calendar_id AND i.item_id = m.target_id)",
        [calendar_id, calendar_id])}


def clear(store: Store, calendar_id: int) -> None:
    """Forget the mirror of a calendar (used when it is removed from homecal, never on a reset)."""
    with store.atomic() as db:
        db.execute("DELETE FROM instances WHERE calendar_id = ?", [calendar_id])
        db.execute("DELETE FROM items WHERE calendar_id = ?", [calendar_id])


# -- range reads for the calendar view and the free/busy feed ----------------------------
#
# A calendar view shows a few days of many calendars; a feed lists busy times only. Both
# select by time range on the plain columns, so only the rows they show are unsealed (the
# feed unseals nothing at all).

#: Is this row a copy homecal wrote? Its marker was read back (partner_key) or a rule's
#: mapping names its item as the written target (the loop guard's two sides).
_CLONE_SQL = ("(i.partner_key IS NOT NULL OR EXISTS (SELECT 1 FROM mappings m WHERE "
              "m.target_calendar_id = i.calendar_id AND m.target_id = i.item_id))")


@dataclass(frozen=True)
class MirrorEntry:
    """One mirrored instance with where it lives: its row id and calendar, and whether homecal wrote it."""

    id: int
    calendar_id: int
    clone: bool
    instance: Instance


@dataclass(frozen=True)
class BusyRow:
    """The plain columns of an instance that blocks time: no sealed detail is read."""

    calendar_id: int
    start_utc: datetime
    end_utc: datetime
    all_day: bool


def _range_sql(calendar_ids: list[int], start: datetime, end: datetime,
               all_day_margin: timedelta = timedelta(0)) -> tuple[str, list]:
    """WHERE clause for rows of `calendar_ids` overlapping [start, end).

    An instance that starts before the range and ends inside (or after) it overlaps too;
    one that ends exactly at `start` does not. Bounds are compared as the same UTC ISO text
    the rows were written with. All-day rows may be matched `all_day_margin` wider: their
    UTC times are the midnights of the zone they were synced in.
    """
    marks = ",".join("?" * len(calendar_ids))
    sql = f"i.calendar_id IN ({marks}) AND i.start_utc < ? AND i.end_utc > ?"
    args = [*calendar_ids, _utc_text(end), _utc_text(start)]
    if all_day_margin:
        sql = (f"i.calendar_id IN ({marks}) AND ((i.all_day = 0 AND i.start_utc < ? AND i.end_utc > ?) "
               "OR (i.all_day = 1 AND i.start_utc < ? AND i.end_utc > ?))")
        args += [_utc_text(end + all_day_margin), _utc_text(start - all_day_margin)]
    return sql, args


def _utc_text(value: datetime) -> str:
    return value.astimezone(timezone.utc).isoformat()


def instances_between(store: Store, calendar_ids: list[int], start: datetime, end: datetime, *,
                      clones: bool = True, all_day_margin: timedelta = timedelta(0)) -> list[MirrorEntry]:
    """The instances of `calendar_ids` overlapping [start, end), in start order.

    Only the selected rows are unsealed. `clones=False` leaves out copies homecal wrote
    without unsealing them. `all_day_margin` widens the range for all-day rows only (a
    view in another zone than the sync's still finds its all-day events).
    """
    if not calendar_ids:
        return []
    where, args = _range_sql(calendar_ids, start, end, all_day_margin)
    if not clones:
        where += f" AND NOT {_CLONE_SQL}"
    rows = store.db.execute(f"SELECT i.*, {_CLONE_SQL} AS is_clone FROM instances i WHERE {where} "
                            "ORDER BY i.start_utc, i.id", args)
    cols = [c[0] for c in rows.description]
    out = []
    for values in rows.fetchall():
        row = dict(zip(cols, values, strict=True))
        out.append(MirrorEntry(row["id"], row["calendar_id"], bool(row["is_clone"]), _row_to_instance(store, row)))
    return out


def count_clones_between(store: Store, calendar_ids: list[int], start: datetime, end: datetime) -> int:
    """How many copies homecal wrote overlap [start, end) (what a "show copies" toggle would add)."""
    if not calendar_ids:
        return 0
    where, args = _range_sql(calendar_ids, start, end)
    return store.db.execute(f"SELECT count(*) FROM instances i WHERE {where} AND {_CLONE_SQL}", args).fetchone()[0]


def entry(store: Store, entry_id: int, calendar_ids: list[int]) -> MirrorEntry | None:
    """One instance by row id, only if it belongs to one of `calendar_ids` (the caller's own)."""
    if not calendar_ids:
        return None
    marks = ",".join("?" * len(calendar_ids))
    rows = store.db.execute(f"SELECT i.*, {_CLONE_SQL} AS is_clone FROM instances i "
                            f"WHERE i.id = ? AND i.calendar_id IN ({marks})", [entry_id, *calendar_ids])
    cols = [c[0] for c in rows.description]
    values = rows.fetchone()
    if values is None:
        return None
    row = dict(zip(cols, values, strict=True))
    return MirrorEntry(row["id"], row["calendar_id"], bool(row["is_clone"]), _row_to_instance(store, row))


def busy_between(store: Store, calendar_ids: list[int], start: datetime, end: datetime, *,
                 exclude_item: tuple[int, str] | None = None) -> list[BusyRow]:
    """Time the owner of `calendar_ids` is busy in [start, end), from plain columns only.

    Left out: transparent (free), cancelled and declined instances, and copies homecal
    wrote (they would count the same meeting twice). `exclude_item` (calendar id, item id)
    leaves out one event too: a booking being moved must not block the times around itself.
    """
    if not calendar_ids:
        return []
    where, args = _range_sql(calendar_ids, start, end)
    if exclude_item is not None:
        where += " AND NOT (i.calendar_id = ? AND i.item_id = ?)"
        args += list(exclude_item)
    rows = store.db.execute(
        f"SELECT i.calendar_id, i.start_utc, i.end_utc, i.all_day FROM instances i WHERE {where} "
        "AND i.transparent = 0 AND coalesce(i.status, 'confirmed') != 'cancelled' AND i.declined = 0 "
        f"AND NOT {_CLONE_SQL} ORDER BY i.start_utc, i.end_utc", args)
    return [BusyRow(r[0], datetime.fromisoformat(r[1]), datetime.fromisoformat(r[2]), bool(r[3]))
            for r in rows.fetchall()]
