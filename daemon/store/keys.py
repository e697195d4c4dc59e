"""Where the master key comes from, and how a new one is made.

Order of precedence: $HOMECAL_KEY (base64), the systemd credential `homecal.key` in
$CREDENTIALS_DIRECTORY, then the key file. The key file is created with mode 0600 and is
refused if group or others can read it, as ssh does with private keys.
"""

from __future__ import annotations

import base64
import binascii
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from daemon.errors import MasterKeyError
from daemon.store.crypto import KEY_BYTES

ENV_KEY = "HOMECAL_KEY"
CREDENTIAL_NAME = "homecal.key"


@dataclass(frozen=True)
class MasterKey:
    key: bytes
    #: human description of where it came from, for messages ("$HOMECAL_KEY", a path, ...)
    source: str
    #: the file it was read from, if any (rotation rewrites only files)
    path: Path | None


def new_key() -> bytes:
    return os.urandom(KEY_BYTES)


def encode_key(key: bytes) -> str:
    return base64.urlsafe_b64encode(key).decode("ascii")


def decode_key(text: str, source: str) -> bytes:
    try:
        key = base64.urlsafe_b64decode(text.strip().encode("ascii"))
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raise MasterKeyError(f"master key from {source} is not valid base64") from None
    if len(key) != KEY_BYTES:
        raise MasterKeyError(f"master key from {source} must decode to {KEY_BYTES} bytes, not {len(key)}")
    return key


def write_key_file(path: Path, key: bytes) -> None:
    """Create `path` holding `key`, mode 0600 from the first byte on; never overwrite."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, (encode_key(key) + "\n").encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)


def read_key_file(path: Path) -> bytes:
    try:
        st = path.stat()
    except FileNotFoundError:
        raise MasterKeyError(
            f"key file {path} is missing. Restore it from your backup, or set $HOMECAL_KEY; "
            "without it the sealed data cannot be opened."
        ) from None
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise MasterKeyError(
            f"key file {path} is readable by other users (mode {stat.S_IMODE(st.st_mode):o}); "
            f"run: chmod 600 {path}"
        )
    try:
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as err:
        raise MasterKeyError(f"cannot read key file {path}: {err}") from None
    return decode_key(text, str(path))


def external_key(env: dict[str, str]) -> MasterKey | None:
    """The key from the environment or a systemd credential, if one is given."""
    if env.get(ENV_KEY):
        return MasterKey(decode_key(env[ENV_KEY], f"${ENV_KEY}"), f"${ENV_KEY}", None)
    cred_dir = env.get("CREDENTIALS_DIRECTORY")
    if cred_dir:
        cred = Path(cred_dir) / CREDENTIAL_NAME
        if cred.exists():
            try:
                text = cred.read_text(encoding="ascii")
            except (OSError, UnicodeDecodeError) as err:
                raise MasterKeyError(f"cannot read systemd credential {cred}: {err}") from None
            return MasterKey(decode_key(text, f"systemd credential {cred}"), f"systemd credential {cred}", None)
    return None


def pending_path(key_path: Path) -> Path:
    """Where rotate-key parks the new key until the database has been re-sealed with it."""
    return key_path.with_name(key_path.name + ".new")
