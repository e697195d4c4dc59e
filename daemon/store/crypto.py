"""AES-256-GCM sealing of single values, bound to the row they live in.

Every sealed value gets a fresh random salt, from which HKDF-SHA256 derives a one-off
subkey of the master key, and a fresh random nonce. The associated data names the table,
column and row, so a sealed value copied into another row (or column) fails to open.

Layout of a sealed blob: version (1 byte) | salt (16) | nonce (12) | ciphertext + tag.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from daemon.errors import SealError

KEY_BYTES = 32
_VERSION = b"\x01"
_SALT = 16
_NONCE = 12
_INFO = b"homecal seal v1"


def _aad(table: str, column: str, row: object) -> bytes:
    # NUL separators: no table/column/row combination can collide with another.
    return b"homecal\x00" + f"{table}\x00{column}\x00{row}".encode()


class Sealer:
    """Seals and opens values with one master key. Holds no other state."""

    def __init__(self, master_key: bytes):
        if len(master_key) != KEY_BYTES:
            raise ValueError(f"master key must be {KEY_BYTES} bytes, got {len(master_key)}")
        self._master = master_key

    def _subkey(self, salt: bytes) -> AESGCM:
        hkdf = HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=salt, info=_INFO)
        return AESGCM(hkdf.derive(self._master))

    def seal(self, value: str, *, table: str, column: str, row: object) -> bytes:
        """Encrypt `value` for exactly this table, column and row."""
        salt, nonce = os.urandom(_SALT), os.urandom(_NONCE)
        ct = self._subkey(salt).encrypt(nonce, value.encode("utf-8"), _aad(table, column, row))
        return _VERSION + salt + nonce + ct

    def open(self, blob: bytes, *, table: str, column: str, row: object) -> str:
        """Decrypt a value sealed for this table, column and row. Raises SealError otherwise."""
        if not isinstance(blob, (bytes, bytearray)) or len(blob) < 1 + _SALT + _NONCE + 16:
            raise SealError(f"{table}.{column} row {row}: not a sealed value")
        if blob[:1] != _VERSION:
            raise SealError(f"{table}.{column} row {row}: unknown seal version {blob[0]}")
        salt = bytes(blob[1 : 1 + _SALT])
        nonce = bytes(blob[1 + _SALT : 1 + _SALT + _NONCE])
        try:
            plain = self._subkey(salt).decrypt(nonce, bytes(blob[1 + _SALT + _NONCE :]), _aad(table, column, row))
        except InvalidTag:
            raise SealError(
                f"{table}.{column} row {row}: does not open (wrong key, tampered, or moved from another row)"
            ) from None
        return plain.decode("utf-8")
