"""The options of a sync rule: style, filters, copied fields, title template.

One dataclass, validated in one place, shared by the CLI, the web forms and the planner.
Stored as JSON in rules.options.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field, fields
from datetime import time

from daemon.errors import UsageError
from daemon.models import Style

ALL_DAY_CHOICES = ("skip", "busy-only", "all")
TENTATIVE_CHOICES = ("busy", "skip")
TEMPLATE_FIELDS = ("title", "calendar")


@dataclass(frozen=True)
class WorkingHours:
    """Only events overlapping these hours (in the owner's zone) are synced."""

    days: tuple[int, ...] = (0, 1, 2, 3, 4)  # Monday = 0
    start: str = "09:00"
    end: str = "17:00"

    def bounds(self) -> tuple[time, time]:
        return time.fromisoformat(self.start), time.fromisoformat(self.end)


@dataclass(frozen=True)
class RuleOptions:
    style: Style = Style.BUSY
    skip_declined: bool = True
    skip_free: bool = True  # transparent / "free" events
    tentative: str = "busy"  # busy: tentative events count; skip: they are left out
    all_day: str = "busy-only"  # skip | busy-only (opaque ones) | all
    working_hours: WorkingHours | None = None
    title_include: str = ""  # regular expression; empty = everything
    title_exclude: str = ""
    title_template: str = ""  # empty: "Busy" for busy blocks, "{title}" for clones
    copy_description: bool = True  # clones only
    copy_location: bool = True  # clones only
    private: bool = True

    @property
    def template(self) -> str:
        return self.title_template or ("{title}" if self.style == Style.CLONE else "Busy")

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | None) -> RuleOptions:
        return cls.from_dict(json.loads(text) if text else {})

    @classmethod
    def from_dict(cls, raw: dict) -> RuleOptions:
        """Build and validate; raises UsageError listing every problem."""
        problems: list[str] = []
        known = {f.name for f in fields(cls)}
        unknown = set(raw) - known
        if unknown:
            problems.append(f"unknown option(s): {', '.join(sorted(unknown))}")
        values = {k: v for k, v in raw.items() if k in known}
        try:
            values["style"] = Style(values.get("style", Style.BUSY))
        except ValueError:
            problems.append(f"style must be clone or busy, not {values.get('style')!r}")
            values["style"] = Style.BUSY
        if values.get("tentative", "busy") not in TENTATIVE_CHOICES:
            problems.append(f"tentative must be one of {', '.join(TENTATIVE_CHOICES)}")
        if values.get("all_day", "busy-only") not in ALL_DAY_CHOICES:
            problems.append(f"all_day must be one of {', '.join(ALL_DAY_CHOICES)}")
        for key in ("title_include", "title_exclude"):
            try:
                re.compile(values.get(key, "") or "")
            except re.error as err:
                problems.append(f"{key} is not a valid regular expression: {err}")
        template = values.get("title_template", "") or ""
        for name in re.findall(r"{(\w*)}", template):
            if name not in TEMPLATE_FIELDS:
                problems.append(f"title_template may use {{title}} and {{calendar}}, not {{{name}}}")
        if len(template) > 200:
            problems.append("title_template is longer than 200 characters")
        wh = values.get("working_hours")
        if wh is not None and not isinstance(wh, WorkingHours):
            try:
                wh = WorkingHours(days=tuple(int(d) for d in wh.get("days", (0, 1, 2, 3, 4))),
                                  start=str(wh.get("start", "09:00")), end=str(wh.get("end", "17:00")))
                start, end = wh.bounds()
                if start >= end:
                    problems.append("working hours must end after they start")
                if not wh.days or any(d < 0 or d > 6 for d in wh.days):
                    problems.append("working-hours days are 0 (Monday) to 6 (Sunday)")
            except (ValueError, TypeError, AttributeError):
                problems.append("working hours look like {'days': [0,1,2,3,4], 'start': '09:00', 'end': '17:00'}")
                wh = None
            values["working_hours"] = wh
        for f in fields(cls):
            if f.type == "bool" and f.name in values and not isinstance(values[f.name], bool):
                problems.append(f"{f.name} must be true or false")
        if problems:
            raise UsageError("; ".join(problems))
        return cls(**values)


def parse_working_hours(text: str) -> dict:
    """`mon-fri 09:00-17:00` (CLI form) -> the working_hours option."""
    names = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    m = re.fullmatch(r"\s*(\w{3})(?:-(\w{3}))?\s+(\d{1,2}:\d{2})-(\d{1,2}:\d{2})\s*", text.lower())
    if not m or m.group(1) not in names or (m.group(2) and m.group(2) not in names):
        raise UsageError(f"working hours {text!r} should look like 'mon-fri 09:00-17:00'")
    first = names.index(m.group(1))
    last = names.index(m.group(2)) if m.group(2) else first
    days = list(range(first, last + 1)) if first <= last else list(range(first, 7)) + list(range(0, last + 1))
    return {"days": days, "start": m.group(3).zfill(5), "end": m.group(4).zfill(5)}


__all__ = ["RuleOptions", "WorkingHours", "parse_working_hours", "field"]
