"""
The database's files on disk: the lock that keeps a second server off a
database in use, and what to say when SQLite cannot write to them.
"""

import os
from typing import IO, Optional, Tuple

try:
    import fcntl
except ImportError:  # not POSIX: no lock (twistd servers run on POSIX)
    fcntl = None  # type: ignore[assignment]

from .records import StoreError

#: Free space below which a disk that SQLite cannot write to is called full,
#: in bytes.
LOW_DISK_BYTES = 1024 * 1024


def disk_trouble(directory: str, error: BaseException) -> Tuple[str, str]:
    """
    Say why SQLite could not write to the database in C{directory}, given
    its C{error}: a short cause (C{"the disk is full"}) and a long one that
    names the directory (C{"the disk holding /srv/chat is full"}).  When
    SQLite reports a full disk or an I/O error, the free space is checked
    with C{os.statvfs}: SQLite says "disk I/O error" for a full disk too.
    """
    message = str(error)
    lowered = message.lower()
    if "full" in lowered or "disk i/o" in lowered:
        try:
            stat = os.statvfs(directory)
        except OSError:
            stat = None
        if stat is not None:
            free = stat.f_bavail * stat.f_frsize
            if free < LOW_DISK_BYTES or (stat.f_files and not stat.f_favail):
                what = "full" if free < LOW_DISK_BYTES else "out of inodes"
                return (f"the disk is {what}",
                        f"the disk holding {directory} is {what} "
                        f"({free // 1024:,} KiB free)")
            free_text = f"{free / (1024 * 1024):,.0f} MiB free"
            if "full" in lowered:
                return ("the database is full",
                        f"the database is full, although the disk holding {directory} "
                        f"has {free_text} (a size limit or a quota?)")
            return ("the disk failed",
                    f"the disk holding {directory} failed to read or write, "
                    f"with {free_text}")
    if "readonly" in lowered or "read-only" in lowered:
        return "the database is read-only", f"the database in {directory} became read-only"
    return "SQLite failed", f"SQLite failed to write to {directory}"


def lock_path(path: str) -> str:
    """The lock file that marks the database C{path} as in use by a server."""
    return path + ".lock"


def lock_database(path: str) -> Optional[IO[bytes]]:
    """
    Take an exclusive lock on the lock file of the database C{path} and
    return the open file that holds it, or raise L{StoreError} if another
    process holds it: two servers writing one database would each keep a
    different picture of accounts and mailboxes.  The kernel drops the lock
    when the process ends, even by SIGKILL, so a crash leaves nothing stale.
    """
    if fcntl is None:
        return None
    name = lock_path(path)
    try:
        lock = open(os.open(name, os.O_RDWR | os.O_CREAT, 0o600), "r+b")
    except OSError as e:
        raise StoreError(f"cannot create the lock file {name}: {e.strerror or e}") from None
    try:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        holder = lock.read(32).decode("ascii", "replace").strip()
        lock.close()
        raise StoreError(
            f"the database {path} is in use by another chat server"
            + (f" (pid {holder})" if holder.isdigit() else "")
            + ": stop it, or give this one its own --data-dir or --database") from None
    lock.truncate(0)
    lock.write(str(os.getpid()).encode("ascii"))
    lock.flush()
    return lock
