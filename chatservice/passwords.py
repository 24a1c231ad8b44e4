"""
Salted password hashes, and the password files that hold them.

A hash is made with the standard library's C{hashlib.scrypt} and a random
salt, and stored as one self-describing string::

    $scrypt$n=16384,r=8,p=1$<salt, base64>$<hash, base64>

so the cost can be raised later without breaking stored hashes.  Checking
a password compares in constant time.  Nothing here needs a dependency.

A password file holds one C{user:hash} line per user (C{#} starts a
comment).  Create or change an entry with::

    python -m chatservice.passwords add FILE USER           # asks twice
    echo "$PW" | python -m chatservice.passwords add --stdin FILE USER
    python -m chatservice.passwords remove FILE USER

The file is written atomically and with mode 0600.  The admin shell reads
it (C{--admin-passwd}); user accounts can reuse L{hash_password} and
L{verify_password}.
"""

import argparse
import base64
import getpass
import hashlib
import hmac
import os
import re
import secrets
import sys
from typing import Dict, List, Optional, Tuple

#: The scrypt cost parameters for new hashes (about 16 MiB and a few tens
#: of milliseconds per check: fine for logins, slow for guessing).
SCRYPT_N = 2 ** 14
SCRYPT_R = 8
SCRYPT_P = 1
#: Bytes of random salt and of derived key.
SALT_BYTES = 16
HASH_BYTES = 32
#: Largest costs accepted from a stored hash, so that a doctored file
#: cannot make one check take minutes or gigabytes.
MAX_N = 2 ** 20
MAX_R = 32
MAX_P = 16
MAX_MEMORY = 256 * 1024 * 1024

#: The prefix that marks a hash made here.
SCHEME = "scrypt"

#: User names a password file accepts.
USER_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")

_HASH = re.compile(
    r"^\$scrypt\$n=(\d+),r=(\d+),p=(\d+)\$([A-Za-z0-9+/]+=*)\$([A-Za-z0-9+/]+=*)$")


class PasswordFileError(ValueError):
    """A password file cannot be read or has a malformed line."""


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int, length: int) -> bytes:
    if hasattr(hashlib, "scrypt"):
        return hashlib.scrypt(
            password.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=length,
            maxmem=128 * r * (n + p + 2) + 1024 * 1024)
    # PyPy 3.9's hashlib has no scrypt; cryptography (a dependency of
    # Twisted's conch) computes the same function, so hashes are the same.
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

    return Scrypt(salt=salt, length=length, n=n, r=r, p=p).derive(
        password.encode("utf-8"))


def hash_password(password: str) -> str:
    """
    Return a salted scrypt hash of C{password}, as a string to store (it
    contains neither C{:} nor whitespace).  Each call uses a fresh random
    salt, so hashing the same password twice gives different strings.
    """
    salt = secrets.token_bytes(SALT_BYTES)
    derived = _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P, HASH_BYTES)
    return "${}$n={},r={},p={}${}${}".format(
        SCHEME, SCRYPT_N, SCRYPT_R, SCRYPT_P,
        base64.b64encode(salt).decode("ascii"),
        base64.b64encode(derived).decode("ascii"))


def parse_hash(stored: str) -> Tuple[int, int, int, bytes, bytes]:
    """
    Return the C{(n, r, p, salt, hash)} of a stored hash, or raise
    L{ValueError} if it is not one L{hash_password} could have made (or
    asks for an unreasonable cost).
    """
    match = _HASH.match(stored.strip())
    if match is None:
        raise ValueError("not a $scrypt$ password hash")
    n, r, p = (int(match.group(i)) for i in (1, 2, 3))
    if (n < 2 or n & (n - 1) or n > MAX_N or not 1 <= r <= MAX_R
            or not 1 <= p <= MAX_P or 128 * r * n > MAX_MEMORY):
        raise ValueError("unsupported scrypt parameters")
    try:
        salt = base64.b64decode(match.group(4), validate=True)
        derived = base64.b64decode(match.group(5), validate=True)
    except ValueError:
        raise ValueError("bad base64 in password hash") from None
    if not salt or not derived:
        raise ValueError("empty salt or hash")
    return n, r, p, salt, derived


def verify_password(password: str, stored: str) -> bool:
    """
    Return whether C{password} matches C{stored} (a L{hash_password}
    result).  The comparison takes constant time; a malformed C{stored}
    never matches.
    """
    try:
        n, r, p, salt, expected = parse_hash(stored)
    except ValueError:
        return False
    try:
        derived = _scrypt(password, salt, n, r, p, len(expected))
    except (ValueError, MemoryError):
        return False
    return hmac.compare_digest(derived, expected)


#: A hash of a random password, checked against when a user is unknown so
#: that a refusal takes as long whether or not the name exists.
_DUMMY_HASH: Optional[str] = None


def dummy_hash() -> str:
    """Return a valid hash that no password matches (made once, lazily)."""
    global _DUMMY_HASH
    if _DUMMY_HASH is None:
        _DUMMY_HASH = hash_password(secrets.token_hex(16))
    return _DUMMY_HASH


# -- password files -----------------------------------------------------------


def parse_password_file(text: str, source: str = "password file") -> Dict[str, str]:
    """
    Return the C{{user: hash}} entries of a password file's text.  Blank
    lines and C{#} comments are skipped; any other malformed line raises
    L{PasswordFileError} naming C{source} and the line number (but never
    the line itself, which may be someone's mistyped password).
    """
    entries: Dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, stored = line.partition(":")
        if not sep or not USER_NAME.match(user):
            raise PasswordFileError(
                f"{source}, line {number}: expected USER:HASH")
        try:
            parse_hash(stored)
        except ValueError as e:
            raise PasswordFileError(f"{source}, line {number}: {e}") from None
        entries[user] = stored.strip()
    return entries


def read_password_file(path: str) -> Dict[str, str]:
    """
    Read the C{{user: hash}} entries of the password file at C{path}.
    Raise L{PasswordFileError} if it cannot be read or is malformed.
    """
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        reason = getattr(e, "strerror", None) or str(e)
        raise PasswordFileError(f"cannot read {path}: {reason}") from None
    return parse_password_file(text, path)


def _write_private(path: str, text: str) -> None:
    """Replace C{path} by C{text} atomically, readable by its owner only."""
    directory = os.path.dirname(os.path.abspath(path))
    temporary = os.path.join(
        directory, f".{os.path.basename(path)}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            os.fchmod(f.fileno(), 0o600)
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise


def set_password(path: str, user: str, password: str) -> bool:
    """
    Add C{user} with C{password} (hashed) to the password file at C{path},
    creating the file if needed, or replace that user's hash.  Comments and
    other entries are kept.  Return true if the user was new.
    """
    if not USER_NAME.match(user):
        raise PasswordFileError(
            f"{user!r} is not a valid user name (letters, digits, '_', '.', '-')")
    lines: List[str] = []
    if os.path.exists(path):
        read_password_file(path)  # refuse to rewrite a file we cannot parse
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    entry = f"{user}:{hash_password(password)}"
    new = True
    for i, line in enumerate(lines):
        if line.strip().partition(":")[0] == user:
            lines[i] = entry
            new = False
    if new:
        lines.append(entry)
    _write_private(path, "\n".join(lines) + "\n")
    return new


def remove_user(path: str, user: str) -> bool:
    """Remove C{user} from the password file at C{path}; return whether it was there."""
    read_password_file(path)
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    kept = [line for line in lines if line.strip().partition(":")[0] != user]
    if len(kept) == len(lines):
        return False
    _write_private(path, "\n".join(kept) + "\n" if kept else "")
    return True


def _read_new_password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass("New password: ")
        if getpass.getpass("Again: ") != password:
            raise PasswordFileError("the passwords do not match")
    if not password:
        raise PasswordFileError("empty password refused")
    return password


def main(argv: Optional[List[str]] = None) -> int:
    """
    The command line: C{python -m chatservice.passwords add|remove FILE USER}.
    Return the exit status.
    """
    parser = argparse.ArgumentParser(
        prog="python -m chatservice.passwords",
        description="Manage a password file of salted scrypt hashes "
                    "(as read by 'twistd chat --admin-passwd FILE').")
    commands = parser.add_subparsers(dest="command", required=True)
    add = commands.add_parser(
        "add", help="add a user or change their password (asks for it twice)")
    add.add_argument("file")
    add.add_argument("user")
    add.add_argument("--stdin", action="store_true",
                     help="read the password from the first line of standard "
                          "input instead of asking (for scripts)")
    remove = commands.add_parser("remove", help="remove a user")
    remove.add_argument("file")
    remove.add_argument("user")
    args = parser.parse_args(argv)
    try:
        if args.command == "add":
            password = _read_new_password(args.stdin)
            new = set_password(args.file, args.user, password)
            print(f"{'Added' if new else 'Changed the password of'} {args.user} "
                  f"in {args.file}.")
        else:
            if not remove_user(args.file, args.user):
                print(f"{args.user} is not in {args.file}.", file=sys.stderr)
                return 1
            print(f"Removed {args.user} from {args.file}.")
    except (PasswordFileError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, EOFError):
        print(file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
