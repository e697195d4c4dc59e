"""The free/busy feed token: shown again to its owner, found by digest, replaced and revoked."""

from __future__ import annotations

from daemon.store import feeds, users


def test_a_feed_token_opens_only_its_owners_feed_and_dies_when_replaced(store):
    alice = users.create(store, "alice", "correct horse battery")
    bob = users.create(store, "bob", "correct horse battery")
    assert feeds.token(store, alice.id) is None and feeds.user_for(store, "") is None
    first = feeds.regenerate(store, alice.id)
    bobs = feeds.regenerate(store, bob.id)
    assert len(first) >= 40 and first != bobs
    assert feeds.token(store, alice.id) == first
    assert (feeds.user_for(store, first), feeds.user_for(store, bobs)) == (alice.id, bob.id)
    assert feeds.user_for(store, first[:-1]) is None
    # the database holds neither token in the clear
    row = store.db.execute("SELECT feed_token_hash, feed_token_sealed FROM users WHERE id = ?", [alice.id]).fetchone()
    assert first not in row[0] and first.encode() not in row[1]

    second = feeds.regenerate(store, alice.id)
    assert feeds.user_for(store, first) is None and feeds.user_for(store, second) == alice.id
    feeds.revoke(store, alice.id)
    assert feeds.user_for(store, second) is None and feeds.token(store, alice.id) is None
    assert feeds.user_for(store, bobs) == bob.id
