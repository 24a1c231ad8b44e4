"""
The admin options of C{twistd chat} (C{--admin-port}, C{--admin-keys},
C{--admin-passwd}, C{--admin-allow-remote}) and their checks: the port
binds to loopback unless an interface is named, and naming a non-loopback
one needs C{--admin-allow-remote}.
"""

import ipaddress
import os
import stat
from typing import List, Tuple

from twisted.internet import endpoints
from twisted.python import usage

from ..passwords import PasswordFileError, read_password_file
from .credentials import read_authorized_keys

#: Interfaces the admin port binds to when the description names none.
LOOPBACK = {"tcp": "127.0.0.1", "tcp6": "::1"}


def _split_description(description: str) -> List[str]:
    """Split an endpoint description at its unescaped colons, unescaping."""
    parts, current, escaped = [], [], False
    for char in description:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == ":":
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def is_loopback(interface: str) -> bool:
    """Return whether C{interface} (an address or C{localhost}) is loopback-only."""
    if interface.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(interface).is_loopback
    except ValueError:
        return False


def normalize_admin_endpoint(description: str, option: str = "--admin-port",
                             example: str = "tcp:2222") -> Tuple[str, bool]:
    """
    Return C{description} with the admin port's default interface filled in,
    and whether it is reachable from other hosts.  (The metrics port,
    C{--metrics-port}, binds the same way: C{option} and C{example} are
    the option named in the error.)

    A bare port number means C{tcp:PORT}.  A C{tcp} or C{tcp6} endpoint
    that names no interface binds to loopback (C{127.0.0.1} or C{::1}); one
    that names a non-loopback interface (C{0.0.0.0}, C{::}, a LAN address,
    a host name) is remote.  C{unix:} endpoints are local.  Other endpoint
    types are refused with L{usage.UsageError}.
    """
    description = description.strip()
    if description.isdigit():
        description = "tcp:" + description
    parts = _split_description(description)
    kind = parts[0].lower()
    if kind == "unix":
        return description, False
    if kind not in LOOPBACK:
        raise usage.UsageError(
            f"{option} {description!r}: use a tcp:, tcp6: or unix: endpoint, "
            f"for example {example} (which listens on 127.0.0.1 only)")
    options = dict(part.split("=", 1) for part in parts[1:] if "=" in part)
    interface = options.get("interface")
    if interface is None:
        escaped = LOOPBACK[kind].replace(":", "\\:")
        return f"{description}:interface={escaped}", False
    return description, not is_loopback(interface)


class AdminOptions(usage.Options):
    """
    The admin options, a base of L{chatservice.tap.Options} (whose
    C{postOptions} calls L{check_admin_options}).
    """

    optParameters = [
        ["admin-port", None, None,
         "Open an SSH server for operators on this endpoint: 'ssh -p PORT "
         "admin@HOST' gives a Python shell inside the live server. For "
         "example tcp:2222 (loopback only unless an interface is named) or "
         "unix:/run/chat-admin.sock. Off unless given; needs --admin-keys "
         "and/or --admin-passwd."],
        ["admin-keys", None, None,
         "OpenSSH authorized_keys file: its keys may log in to the admin "
         "shell as user 'admin' (re-read at each login)."],
        ["admin-passwd", None, None,
         "Password file of USER:HASH lines (salted scrypt; create entries "
         "with 'python -m chatservice.passwords add FILE USER'); re-read at "
         "each login."],
    ]
    optFlags = [
        ["admin-allow-remote", None,
         "Allow --admin-port to listen on a non-loopback interface "
         "(logged as a warning)."],
    ]

    def check_admin_options(self) -> None:
        """
        Check the admin options and resolve them: C{admin-port} gets its
        default interface, C{admin-remote} says whether other hosts can
        reach it, C{admin-keys}/C{admin-passwd} become absolute paths.
        Raise L{usage.UsageError} with what to do instead.
        """
        self["admin-remote"] = False
        for option in ("admin-keys", "admin-passwd"):
            if self[option]:
                self[option] = os.path.abspath(os.path.expanduser(self[option]))
        if self["admin-port"] is None:
            given = [f"--{o}" for o in ("admin-keys", "admin-passwd", "admin-allow-remote")
                     if self[o]]
            if given:
                raise usage.UsageError(
                    f"{' and '.join(given)} only make sense with --admin-port "
                    "(for example --admin-port tcp:2222)")
            return
        description, remote = normalize_admin_endpoint(self["admin-port"])
        try:
            endpoints.serverFromString(None, description)
        except Exception as e:
            raise usage.UsageError(
                f"--admin-port {self['admin-port']!r} is not a usable endpoint "
                f"({e}). Examples: tcp:2222, unix:/run/chat-admin.sock") from None
        if remote and not self["admin-allow-remote"]:
            raise usage.UsageError(
                f"--admin-port {self['admin-port']!r} would let other hosts reach "
                "the admin shell. Use a loopback interface (tcp:2222 listens on "
                "127.0.0.1), or add --admin-allow-remote if that is really meant.")
        self["admin-port"] = description
        self["admin-remote"] = remote
        if not self["admin-keys"] and not self["admin-passwd"]:
            raise usage.UsageError(
                "--admin-port needs credentials, and there is no default login: "
                "give --admin-keys FILE (an OpenSSH authorized_keys file, such as "
                "~/.ssh/authorized_keys; its keys log in as 'admin') and/or "
                "--admin-passwd FILE (create one with 'python -m "
                "chatservice.passwords add FILE admin').")
        usable = 0
        if self["admin-keys"]:
            _check_not_writable_by_others(self["admin-keys"], "--admin-keys")
            try:
                usable += len(read_authorized_keys(self["admin-keys"]))
            except OSError as e:
                raise usage.UsageError(
                    f"--admin-keys: cannot read {self['admin-keys']}: {e.strerror}") from None
        if self["admin-passwd"]:
            _check_not_writable_by_others(self["admin-passwd"], "--admin-passwd")
            try:
                usable += len(read_password_file(self["admin-passwd"]))
            except PasswordFileError as e:
                raise usage.UsageError(f"--admin-passwd: {e}") from None
        if not usable:
            raise usage.UsageError(
                "--admin-port: the credential files hold no usable key or "
                "password entry, so nobody could log in. Add a public key line "
                "to the --admin-keys file, or run 'python -m chatservice.passwords "
                "add FILE admin'.")


def _check_not_writable_by_others(path: str, option: str) -> None:
    """Refuse a credential file that someone else could add themselves to."""
    try:
        mode = os.stat(path).st_mode
    except OSError as e:
        raise usage.UsageError(f"{option}: cannot read {path}: {e.strerror}") from None
    if mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise usage.UsageError(
            f"{option}: {path} is writable by other users, who could give "
            f"themselves a shell in the server. Run: chmod go-w {path}")
