"""
The admin SSH host key: generated once into the data directory (mode 0600,
directory 0700) and reused, so that its fingerprint stays the same.
"""

import errno
import os
import secrets
import stat

from twisted.conch.ssh import keys
from twisted.logger import Logger

log = Logger()

#: The host key's file name in the data directory.
HOST_KEY_FILE = "admin_host_ed25519_key"


class AdminSetupError(Exception):
    """The admin service cannot start (host key or data directory trouble)."""


def load_or_create_host_key(data_dir: str) -> keys.Key:
    """
    Return the admin SSH host key kept in C{data_dir}, generating an
    Ed25519 key there on first use.

    The directory is created with mode 0700 if missing.  The key file is
    written with mode 0600 under a temporary name and then linked into
    place, so a crash never leaves half a key and two servers starting at
    once agree on one key.  A key file readable by others is tightened back
    to 0600, with a warning.  Raise L{AdminSetupError} on failure.
    """
    path = os.path.join(data_dir, HOST_KEY_FILE)
    try:
        if not os.path.isdir(data_dir):
            os.makedirs(data_dir, mode=0o700, exist_ok=True)
            os.chmod(data_dir, 0o700)
        if not os.path.exists(path):
            _create_host_key(path)
        mode = stat.S_IMODE(os.stat(path).st_mode)
        if mode & 0o077:
            log.warn("admin host key {path} had mode {mode:o}; setting it to 600",
                     path=path, mode=mode)
            os.chmod(path, 0o600)
        key = keys.Key.fromFile(path)
    except OSError as e:
        raise AdminSetupError(
            f"admin host key {path}: {e.strerror or e}. Check --data-dir.") from None
    except (keys.BadKeyError, keys.EncryptedKeyError, ValueError) as e:
        raise AdminSetupError(
            f"admin host key {path} is not a usable private key ({e}); move it "
            "away to have a new one generated (clients will see a new "
            "fingerprint).") from None
    if not key.isPublic() and key.type() in ("Ed25519", "RSA", "EC"):
        return key
    raise AdminSetupError(f"admin host key {path} is not a private host key")


def _create_host_key(path: str) -> None:
    """Generate an Ed25519 key and write it to C{path} (0600) atomically."""
    from cryptography.hazmat.primitives.asymmetric import ed25519

    key = keys.Key(ed25519.Ed25519PrivateKey.generate())
    data = key.toString("openssh")
    directory = os.path.dirname(path)
    temporary = os.path.join(
        directory, f".{HOST_KEY_FILE}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o600)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(temporary, path)  # fails if another process got there first
        except FileExistsError:
            return
        except OSError as e:
            if e.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
                raise
            os.replace(temporary, path)  # no hard links on this file system
        with open(path + ".pub", "wb") as f:
            f.write(key.public().toString("openssh") + b" chatservice-admin\n")
        log.info("generated the admin SSH host key {path}", path=path)
    finally:
        try:
            os.unlink(temporary)
        except OSError:
            pass
