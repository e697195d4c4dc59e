"""Removing a rule: its copies are deleted from the target first (unless kept), then the rule.

An explicit removal is the user's intent, so the deletion guard does not apply; the gate
still does (only events homecal made are deleted).
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from daemon.config import Config
from daemon.errors import HomecalError
from daemon.models import EventRef, Window
from daemon.providers import make_provider
from daemon.store import accounts as accounts_repo
from daemon.store import rules as rules_repo
from daemon.store import users
from daemon.store.db import Store
from daemon.sync.gate import Gate

log = logging.getLogger("homecal.sync")


def remove_rule(store: Store, config: Config, rule_id: int, *, delete_events: bool = True) -> int:
    """Delete the rule's copies (if asked) and the rule. Returns how many copies were deleted.

    If a copy cannot be deleted (server down), nothing is removed and the error says so:
    removing the rule first would orphan its copies forever.
    """
    rule = rules_repo.get(store, rule_id)
    deleted = 0
    if delete_events:
        target = accounts_repo.calendar(store, rule.target_calendar_id)
        account = accounts_repo.get(store, target.account_id)
        tz = ZoneInfo(users.get(store, rule.user_id).timezone or "UTC")
        now = datetime.now(timezone.utc)
        window = Window.around(now, config.sync.window_past_days, config.sync.window_future_days)
        provider = make_provider(store, config, account, tz)
        try:
            gate = Gate(store, provider, account, target)
            for m in rules_repo.mappings(store, rule_id):
                if m.state == "tombstone":
                    continue
                ref = EventRef(target.remote_id, m.target_id, m.target_etag) if m.target_id else \
                    provider.ref_for_key(target.remote_id, m.idem_key, window)
                if ref is None:
                    continue
                try:
                    gate.delete(ref)
                except HomecalError as err:
                    raise HomecalError(f"could not delete the copies of rule {rule_id} ({err}); the rule is kept, "
                                       "try again, or remove it with --keep-events") from err
                store.db.execute("DELETE FROM mappings WHERE id = ?", [m.id])
                deleted += 1
        finally:
            provider.close()
    rules_repo.remove(store, rule_id)
    log.info("removed rule %s (%d copies deleted)", rule_id, deleted)
    return deleted
