"""Sealing: confidentiality, binding to table/column/row, fresh randomness per value."""

from __future__ import annotations

import os

import pytest

from daemon.errors import SealError
from daemon.store.crypto import Sealer

KEY = os.urandom(32)


def test_round_trip_non_ascii():
    s = Sealer(KEY)
    blob = s.seal("Réunion 東京 🗓", table="events", column="details_sealed", row=7)
    assert s.open(blob, table="events", column="details_sealed", row=7) == "Réunion 東京 🗓"


def test_same_value_seals_differently_every_time():
    s = Sealer(KEY)
    a = s.seal("x", table="t", column="c", row=1)
    b = s.seal("x", table="t", column="c", row=1)
    assert a != b and a[1:17] != b[1:17]  # fresh salt (and nonce) per value


@pytest.mark.parametrize("where", [
    {"table": "t", "column": "c", "row": 2},
    {"table": "t", "column": "d", "row": 1},
    {"table": "u", "column": "c", "row": 1},
    {"table": "t", "column": "c", "row": "1 "},
])
def test_value_does_not_open_anywhere_else(where):
    s = Sealer(KEY)
    blob = s.seal("secret", table="t", column="c", row=1)
    with pytest.raises(SealError, match="does not open"):
        s.open(blob, **where)


def test_wrong_key_and_tampering_fail():
    blob = Sealer(KEY).seal("secret", table="t", column="c", row=1)
    with pytest.raises(SealError):
        Sealer(os.urandom(32)).open(blob, table="t", column="c", row=1)
    flipped = blob[:-1] + bytes([blob[-1] ^ 1])
    with pytest.raises(SealError):
        Sealer(KEY).open(flipped, table="t", column="c", row=1)
    with pytest.raises(SealError, match="not a sealed value"):
        Sealer(KEY).open(b"short", table="t", column="c", row=1)


def test_key_must_be_32_bytes():
    with pytest.raises(ValueError):
        Sealer(b"0" * 16)
