"""Rules in plain words: labels, options, states and sync results as people read them.

Pure functions over rules, reports and calendar labels, shared by the rules pages (and
usable by the dashboard), so every page says the same thing the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from daemon.models import Style
from daemon.store.rules import Rule
from daemon.sync.engine import RuleReport
from daemon.sync.options import RuleOptions
from daemon.sync.preview import plain_error

DAY_ABBR = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")

STATE_WORDS = {
    "active": "Active",
    "paused-deletions": "Paused: waiting for you to confirm deletions",
    "error": "Error",
}


@dataclass(frozen=True)
class Calendars:
    """The user's calendars: `labels` "account / calendar", `names` the calendar alone, and
    `writable` the ids a rule may write into (writable calendars of read-write accounts)."""

    labels: dict[int, str]
    names: dict[int, str]
    writable: list[int] = field(default_factory=list)

    def label(self, cal_id: int) -> str:
        return self.labels.get(cal_id, f"calendar {cal_id} (removed)")

    def name(self, cal_id: int) -> str:
        return self.names.get(cal_id, f"calendar {cal_id}")


def has_own_name(rule: Rule) -> bool:
    return bool(rule.name) and rule.name != f"rule {rule.id}"


def rule_label(rule: Rule, cals: Calendars) -> str:
    """ "Work → Home" (or the rule's own name): what flashes and headings call a rule."""
    if has_own_name(rule):
        return rule.name
    return f"{', '.join(cals.name(s) for s in rule.source_ids)} → {cals.name(rule.target_calendar_id)}"


def style_words(options: RuleOptions) -> str:
    return "Busy blocks" if options.style == Style.BUSY else "Clones"


def counts_words(counts: dict, *, empty: str = "nothing to change") -> str:
    """{"created": 3, "updated": 1, ...} -> "3 created, 1 updated"."""
    parts = [f"{counts[k]} {k}" for k in ("created", "updated", "deleted") if counts.get(k)]
    if counts.get("failed"):
        parts.append(f"{counts['failed']} failed")
    return ", ".join(parts) or empty


def options_words(options: RuleOptions) -> list[str]:
    """Every option of a rule as a short sentence, in the order the form asks for them."""
    clone = options.style == Style.CLONE
    if options.title_template:
        out = [f"{style_words(options)} titled “{options.title_template}”"]
    else:
        out = ["Clones keep the original title" if clone else "Busy blocks titled “Busy”, without details"]
    out.append("Declined events are left out" if options.skip_declined else "Declined events are copied too")
    out.append("Events shown as free are left out" if options.skip_free else "Events shown as free are copied too")
    out.append("Tentative events count as busy" if options.tentative == "busy" else "Tentative events are left out")
    out.append({"skip": "All-day events are left out", "busy-only": "All-day events only when shown as busy",
                "all": "All all-day events are copied"}.get(options.all_day, options.all_day))
    wh = options.working_hours
    if wh is None:
        out.append("At any time of day")
    else:
        out.append(f"Only events overlapping {', '.join(DAY_ABBR[d] for d in wh.days)} {wh.start}–{wh.end}")
    if options.title_include:
        out.append(f"Only titles matching “{options.title_include}”")
    if options.title_exclude:
        out.append(f"Titles matching “{options.title_exclude}” are left out")
    if clone:
        out.append("Descriptions are copied" if options.copy_description else "Descriptions are not copied")
        out.append("Locations are copied" if options.copy_location else "Locations are not copied")
    out.append("Copies are marked private" if options.private else "Copies are not marked private")
    return out


def last_error_words(rule: Rule, cals: Calendars) -> str:
    """The rule's last error in the words the dashboard uses, with the failing calendar named."""
    return plain_error(rule.last_error, cals.labels) if rule.last_error else ""


#: the mirror's EmptySource message: a source came back empty; only the user can say it was emptied
_EMPTIED = "returned no events at all"


def source_came_back_empty(rule: Rule) -> bool:
    """Is the rule stopped because a source listed no events at all? Confirming (like
    `homecal rule confirm-deletions`) lets the next sync accept the empty calendar."""
    return rule.state != "paused-deletions" and _EMPTIED in (rule.last_error or "")


def report_summary(report: RuleReport, label: str, cals: Calendars) -> tuple[str, str]:
    """One sync result as (flash category, sentence), e.g. ("success", "Work → Home: 3 created")."""
    if report.status == "ok":
        return "success", f"{label}: {counts_words(report.counts())}."
    if report.status == "unchanged":
        return "success", f"{label}: already up to date."
    if report.status == "paused":
        return "error", (f"{label} is paused: it would delete many events. "
                         "Review them on the rule's page and confirm.")
    if report.status == "error":
        done = counts_words(report.counts(), empty="")
        prefix = f"{label}: {done}; " if done else f"{label} was not synced: "
        return "error", prefix + plain_error(report.message or "an error", cals.labels).rstrip(".") + "."
    return "info", f"{label}: {report.message or report.status}."
