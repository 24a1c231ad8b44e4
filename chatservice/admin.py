"""
Admin access: an SSH manhole into the live server.

With C{--admin-port}, operators log in with OpenSSH's C{ssh} and get an
interactive Python shell (Twisted's colored manhole, with line editing and
history) inside the running chat server.  The shell's namespace holds the
live objects (C{factory}, C{users}, C{rooms}, C{reactor}) and a few helpers
(C{who()}, C{room(name)}, C{stats()}, C{kick(name, reason)},
C{announce(text, room=None)}, C{close_room(name)}; C{helpers()} lists them).

Safe by default:
  - admin access is off unless C{--admin-port} is given, and then needs
    credentials: C{--admin-keys} (an OpenSSH authorized_keys file; those
    keys log in as C{admin}) and/or C{--admin-passwd} (C{user:hash} lines
    of salted scrypt hashes, see L{chatservice.passwords}).  There is no
    default login;
  - the port binds to loopback unless an interface is named, and naming a
    non-loopback one needs C{--admin-allow-remote} (and is logged as a
    warning);
  - the SSH host key is generated on first start into the data directory
    (mode 0600, directory 0700) and reused, so its fingerprint is stable;
  - refused logins are logged with the user name and the peer, never the
    password.

Everything typed in the shell runs on the reactor thread, like the chat
itself: a blocking call (C{time.sleep}, a slow query, C{input()}) freezes
the chat for everyone until it returns.
"""

import errno
import inspect
import ipaddress
import os
import pydoc
import secrets
import stat
import time
from typing import Callable, Iterable, List, Optional, Tuple

from twisted.application.service import Service
from twisted.conch import error as conch_error
from twisted.conch.checkers import SSHPublicKeyChecker
from twisted.conch.insults import insults
from twisted.conch.interfaces import IConchUser, ISession
from twisted.conch.manhole import ColoredManhole
from twisted.conch.manhole_ssh import ConchFactory, TerminalRealm, TerminalSession
from twisted.conch.ssh import keys, transport, userauth
from twisted.cred import credentials as cred_credentials
from twisted.cred.checkers import ICredentialsChecker
from twisted.cred.error import UnauthorizedLogin
from twisted.cred.portal import Portal
from twisted.internet import defer, endpoints, threads
from twisted.internet.error import ProcessDone
from twisted.logger import Logger
from twisted.python import usage
from twisted.python.failure import Failure
from zope.interface import implementer

from . import errors
from .text import clean_room_name, name_key
from .passwords import PasswordFileError, dummy_hash, read_password_file, verify_password

log = Logger()

#: The only user name a key from C{--admin-keys} logs in as (an
#: authorized_keys file says which keys, not whose).
ADMIN_USER = "admin"
#: The host key's file name in the data directory.
HOST_KEY_FILE = "admin_host_ed25519_key"
#: Interfaces the admin port binds to when the description names none.
LOOPBACK = {"tcp": "127.0.0.1", "tcp6": "::1"}
#: Seconds a client gets to log in, and failed attempts per connection.
LOGIN_TIMEOUT = 60
MAX_LOGIN_ATTEMPTS = 6
#: Most users or members a helper lists before saying "and N more".
MAX_LISTED = 100
#: The key types an authorized_keys line may start with.
KEY_TYPES = (
    "ssh-ed25519", "ssh-rsa", "ssh-dss", "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com", "sk-ecdsa-sha2-nistp256@openssh.com",
)


class AdminSetupError(Exception):
    """The admin service cannot start (host key or data directory trouble)."""


# -- options ------------------------------------------------------------------


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


def normalize_admin_endpoint(description: str) -> Tuple[str, bool]:
    """
    Return C{description} with the admin port's default interface filled in,
    and whether it is reachable from other hosts.

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
            f"--admin-port {description!r}: use a tcp:, tcp6: or unix: endpoint, "
            "for example tcp:2222 (which listens on 127.0.0.1 only)")
    options = dict(part.split("=", 1) for part in parts[1:] if "=" in part)
    interface = options.get("interface")
    if interface is None:
        escaped = LOOPBACK[kind].replace(":", "\\:")
        return f"{description}:interface={escaped}", False
    return description, not is_loopback(interface)


class AdminOptions:
    """
    The admin options, mixed into L{chatservice.tap.Options} (whose
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


# -- credentials --------------------------------------------------------------


def read_authorized_keys(path: str) -> List[keys.Key]:
    """
    Return the public keys of the OpenSSH authorized_keys file at C{path}.

    Blank lines and comments are skipped.  Lines with options before the key
    (C{from="..."}, C{command="..."}, C{restrict}...) cannot be honoured
    here, so they are ignored, with a warning in the log, rather than
    granting more than they say; so are lines that do not parse.  Raise
    L{OSError} if the file cannot be read.
    """
    found = []
    with open(path, "rb") as f:
        lines = f.read().splitlines()
    for number, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line.startswith(b"#"):
            continue
        fields = line.split()
        if fields[0].decode("ascii", "replace") not in KEY_TYPES:
            log.warn("{path}, line {number}: ignored (key options are not "
                     "supported, or not a key)", path=path, number=number)
            continue
        try:
            found.append(keys.Key.fromString(b" ".join(fields[:2])))
        except (keys.BadKeyError, ValueError, IndexError) as e:
            log.warn("{path}, line {number}: ignored ({error})", path=path,
                     number=number, error=e)
    return found


class AuthorizedKeysFile:
    """
    An L{twisted.conch.checkers.IAuthorizedKeysDB} reading an OpenSSH
    authorized_keys file at every login (so a key added to it works at
    once, and a key removed stops working at once), for one user name only.
    """

    def __init__(self, path: str, user: str = ADMIN_USER) -> None:
        self.path = path
        self.user = user.encode("utf-8")

    def getAuthorizedKeys(self, username: bytes) -> Iterable[keys.Key]:
        """Return the keys that may log in as C{username}."""
        if username != self.user:
            return []
        try:
            return read_authorized_keys(self.path)
        except OSError as e:
            log.error("cannot read admin keys {path}: {error}", path=self.path,
                      error=e.strerror)
            return []


@implementer(ICredentialsChecker)
class PasswordFileChecker:
    """
    Checks user names and passwords against a password file of salted
    scrypt hashes (see L{chatservice.passwords}), re-read at every login.

    The file is read and the hash computed in a thread: a check costs tens
    of milliseconds, which the chat on the reactor thread should not wait
    for.  Unknown users are checked against a dummy hash, so a refusal takes
    as long whether or not the name exists.
    """

    credentialInterfaces = (cred_credentials.IUsernamePassword,)

    def __init__(self, path: str, reactor) -> None:
        self.path = path
        self.reactor = reactor

    def _check(self, username: str, password: str) -> Tuple[bool, Optional[str]]:
        # Runs in a thread: returns (matched, problem with the file) and
        # leaves the logging to the reactor thread.
        problem = None
        try:
            stored = read_password_file(self.path).get(username)
        except PasswordFileError as e:
            problem, stored = str(e), None
        matched = verify_password(password, stored or dummy_hash())
        return matched and stored is not None, problem

    def requestAvatarId(self, credentials) -> defer.Deferred:
        """Fire with the user name if the password matches, else fail."""
        try:
            username = credentials.username.decode("utf-8")
            password = credentials.password.decode("utf-8")
        except UnicodeDecodeError:
            return defer.fail(UnauthorizedLogin("user name or password is not UTF-8"))
        d = threads.deferToThreadPool(
            self.reactor, self.reactor.getThreadPool(), self._check, username, password)

        def decide(outcome: Tuple[bool, Optional[str]]) -> bytes:
            matched, problem = outcome
            if problem is not None:
                log.error("cannot use the admin password file: {problem}", problem=problem)
            if not matched:
                raise UnauthorizedLogin("wrong user name or password")
            return credentials.username

        return d.addCallback(decide)


def _peer_of(ssh_transport) -> str:
    """C{host:port} of the client on the far end of an SSH transport."""
    try:
        peer = ssh_transport.transport.getPeer()
    except Exception:
        return "?"
    host = getattr(peer, "host", None)
    return f"{host}:{peer.port}" if host else (getattr(peer, "name", None) or "local")


class AdminUserAuthServer(userauth.SSHUserAuthServer):
    """
    The SSH login step, logging every refused and accepted login with the
    user name, the method and the peer (never a password), and allowing
    fewer attempts and less time than Twisted's defaults.
    """

    loginTimeout = LOGIN_TIMEOUT
    attemptsBeforeDisconnect = MAX_LOGIN_ATTEMPTS

    def tryAuth(self, kind: bytes, user: bytes, data: bytes) -> defer.Deferred:
        """Try a login method, logging its outcome."""
        d = super().tryAuth(kind, user, data)
        name = user.decode("utf-8", "replace")
        method = kind.decode("ascii", "replace")

        def accepted(result):
            log.info("admin login: {user} from {peer} by {method}", user=name,
                     peer=_peer_of(self.transport), method=method)
            return result

        def refused(reason: Failure) -> Failure:
            # "none" is every client's opening probe, and a public-key query
            # without signature is answered separately: neither is a refusal.
            if kind != b"none" and not reason.check(
                    conch_error.IgnoreAuthentication, conch_error.ValidPublicKey):
                log.warn("admin login refused: {user} from {peer} by {method} "
                         "({reason})", user=name, peer=_peer_of(self.transport),
                         method=method, reason=reason.getErrorMessage())
            return reason

        return d.addCallbacks(accepted, refused)


class AdminSSHTransport(transport.SSHServerTransport):
    """
    The server side of one admin SSH connection; its factory keeps track of
    it so that stopping the service closes it.
    """

    def connectionMade(self) -> None:
        """Register with the factory, then start the SSH handshake."""
        self.factory.connections.add(self)
        super().connectionMade()

    def connectionLost(self, reason=None) -> None:
        """Unregister from the factory."""
        self.factory.connections.discard(self)
        super().connectionLost(reason)

    def receiveError(self, reasonCode: int, description: bytes) -> None:
        """Log a client's disconnection: an error only if it says so."""
        if reasonCode == transport.DISCONNECT_BY_APPLICATION:
            log.debug("admin client disconnected: {description}", description=description)
        else:
            super().receiveError(reasonCode, description)

    def sendExtInfo(self, extensions) -> None:
        """
        Advertise every signature algorithm we verify for user keys, not
        only our host key's: OpenSSH reads C{server-sig-algs} to decide
        whether it may sign with an RSA user key (rsa-sha2-256/512).
        """
        algorithms = b",".join(transport.SSHServerTransport.supportedPublicKeys)
        extensions = [(name, algorithms if name == b"server-sig-algs" else value)
                      for name, value in extensions]
        super().sendExtInfo(extensions)


class AdminSSHFactory(ConchFactory):
    """
    The admin SSH server: one host key (in fresh per-instance dicts, never
    the class-level ones C{ConchFactory} shares between instances), the
    logging login step, and a record of open connections.
    """

    protocol = AdminSSHTransport

    def __init__(self, portal: Portal, host_key: keys.Key) -> None:
        super().__init__(portal)
        self.publicKeys = {host_key.sshType(): host_key.public()}
        self.privateKeys = {host_key.sshType(): host_key}
        self.services = dict(ConchFactory.services)
        self.services[b"ssh-userauth"] = AdminUserAuthServer
        self.connections = set()


# -- the shell ----------------------------------------------------------------


BANNER = (
    "chatservice admin shell: Python, running inside the live server.",
    "helpers() lists the helpers (who, room, stats, kick, announce, close_room).",
    "Everything here runs on the reactor thread: a blocking call freezes the chat.",
    "Ctrl-D or exit() leaves.",
)


class AdminManhole(ColoredManhole):
    """
    Twisted's colored manhole, with a banner, and where C{exit()} (or
    C{raise SystemExit}) ends the session instead of escaping into the
    reactor.
    """

    def initializeScreen(self) -> None:
        """Show the banner and the first prompt (without clearing the screen)."""
        for line in BANNER:
            self.terminal.write(line.encode("utf-8"))
            self.terminal.nextLine()
        self.terminal.write(self.ps[self.pn])
        self.setInsertMode()

    def terminalSize(self, width: int, height: int) -> None:
        """Record the window size, without Twisted's erasing of the screen."""
        self.width = width
        self.height = height

    def lineReceived(self, line: bytes) -> None:
        """Run a line of Python; C{exit()} closes the session."""
        try:
            super().lineReceived(line)
        except SystemExit:
            self.terminal.loseConnection()


class AdminTerminal(insults.ServerProtocol):
    """
    The terminal side of the shell.  Leaving it restores the mode the
    manhole changed (insert mode) instead of sending a full terminal reset,
    which would wipe the operator's screen.
    """

    def loseConnection(self) -> None:
        """Restore the terminal's modes and end the session."""
        self.resetModes([insults.modes.IRM])
        self.transport.loseConnection()


class _Endpoint:
    """One end of the pipe between the SSH channel and the terminal."""

    def __init__(self, write: Callable[[bytes], None], lose: Callable[[], None]) -> None:
        self.write = write
        self.loseConnection = lose

    def writeSequence(self, data) -> None:
        """Write several strings of bytes."""
        self.write(b"".join(data))


class AdminShellTransport:
    """
    Joins an SSH session channel to a terminal protocol (as Twisted's
    C{TerminalSessionTransport} does), except that leaving the shell sends
    exit status 0, so C{ssh} exits successfully.
    """

    def __init__(self, proto, chained, width: int, height: int) -> None:
        self.proto = proto
        self.chained = chained
        self.closed = False
        session = proto.session
        proto.makeConnection(_Endpoint(
            chained.dataReceived, lambda: session.conn.sendClose(session)))
        chained.makeConnection(_Endpoint(proto.write, self.loseConnection))
        chained.terminalProtocol.terminalSize(width, height)

    def loseConnection(self) -> None:
        """End the shell: report exit status 0 and close the channel."""
        if not self.closed:
            self.closed = True
            self.proto.processEnded(Failure(ProcessDone(0)))


@implementer(ISession)
class AdminSession(TerminalSession):
    """
    One SSH session: a pty and an interactive shell, with a namespace built
    for it alone.  Unlike Twisted's C{TerminalSession}, end of input closes
    the session and window changes are accepted (both raise there, which
    kills the connection).
    """

    width, height = 80, 24
    user = "?"
    namespace_factory: Callable[[], dict] = dict
    shell: Optional[AdminShellTransport] = None

    def getPty(self, term, windowSize, attrs) -> None:
        """Remember the client's window size."""
        self.height, self.width = windowSize[:2]

    def openShell(self, proto) -> None:
        """Start the manhole, with a fresh namespace, on the channel C{proto}."""
        namespace = self.namespace_factory()
        chained = AdminTerminal(AdminManhole, namespace)
        self.shell = AdminShellTransport(proto, chained, self.width, self.height)
        log.info("admin shell opened by {user} from {peer}", user=self.user,
                 peer=self._peer())

    def _peer(self) -> str:
        try:
            return _peer_of(IConchUser(self.original).conn.transport)
        except Exception:
            return "?"

    def execCommand(self, proto, command) -> None:
        """Refuse commands: this is an interactive shell (use C{ssh -t})."""
        raise conch_error.ConchError(
            "the admin shell is interactive only: log in without a command")

    def windowChanged(self, newWindowSize) -> None:
        """Tell the shell about the new window size."""
        self.height, self.width = newWindowSize[:2]
        shell = self.shell
        if shell is not None and shell.chained.terminalProtocol is not None:
            shell.chained.terminalProtocol.terminalSize(self.width, self.height)

    def eofReceived(self) -> None:
        """The client's input ended (for instance a script's): end the shell."""
        if self.shell is not None:
            self.shell.loseConnection()

    def closed(self) -> None:
        """The channel is closed: let the shell go."""
        if self.shell is not None:
            self.shell.closed = True
            self.shell.chained.connectionLost(Failure(conch_error.ConchError("closed")))
            self.shell = None
            log.info("admin shell closed for {user}", user=self.user)


class AdminRealm(TerminalRealm):
    """
    Gives each logged-in operator an L{AdminSession} whose shell namespace
    comes fresh from C{namespace_factory}.
    """

    sessionFactory = AdminSession

    def __init__(self, namespace_factory: Callable[[], dict]) -> None:
        super().__init__()
        self.namespace_factory = namespace_factory

    def requestAvatar(self, avatarId, mind, *interfaces):
        """Return the avatar for C{avatarId}, its session set up."""
        interface, avatar, _ = super().requestAvatar(avatarId, mind, *interfaces)
        session = ISession(avatar.original)
        session.user = avatarId.decode("utf-8", "replace")
        session.namespace_factory = self.namespace_factory
        user = session.user

        def logout() -> None:
            log.info("admin {user} logged out", user=user)

        return interface, avatar, logout


# -- the helpers --------------------------------------------------------------


def _duration(seconds: float) -> str:
    """C{3d 04h}, C{2h 05m}, C{4m 09s}, C{12s}."""
    seconds = int(max(seconds, 0))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours:02d}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def _size(count: float) -> str:
    """C{1.5 MiB (1572864)}."""
    value, unit = float(count), "B"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            break
        value /= 1024
    return f"{int(count)} B" if unit == "B" else f"{value:.1f} {unit} ({int(count)})"


def make_namespace(factory, reactor) -> dict:
    """
    Return a fresh shell namespace: the live objects and the helpers.

    Each helper prints a readable answer and returns nothing (the live
    objects are there for anything more); each has a docstring, and
    C{helpers()} lists them.  Python's C{help()} (whose pager hangs a
    manhole) is replaced by one that prints.
    """

    def who() -> None:
        """Who is online: each user, their rooms (* marks the current one),
        where they connect from and for how long."""
        users = sorted(factory.users.values(), key=lambda u: u.key)
        now = factory.clock.seconds()
        print(f"{len(users)} user{'' if len(users) == 1 else 's'} online")
        for user in users[:MAX_LISTED]:
            rooms = ", ".join(
                room.display + ("*" if room is user.current else "")
                for room in user.rooms.values()) or "no room"
            peer = getattr(user.client, "peer", "?")
            print(f"  {user.name:<24} {rooms}  from {peer}, "
                  f"online {_duration(now - user.connected_at)}")
        if len(users) > MAX_LISTED:
            print(f"  ... and {len(users) - MAX_LISTED} more (all in `users`)")

    def room(name: str) -> None:
        """One room: its topic and members (`rooms` holds them all)."""
        try:
            found = factory.find_room(name)
        except errors.ChatError as e:
            print(f"{e} Rooms: {', '.join(r.display for r in factory.rooms.values())}")
            return
        tags = []
        if found is factory.default_room:
            tags.append("default room")
        tags.append(f"{len(found.members)} member{'' if len(found.members) == 1 else 's'}")
        print(f"{found.display} ({', '.join(tags)})")
        if found.topic:
            setter = f" (set by {found.topic_set_by})" if found.topic_set_by else ""
            print(f"  topic: {found.topic}{setter}")
        else:
            print("  no topic")
        names = [member.name for member in found.members.values()]
        if names:
            shown = ", ".join(names[:MAX_LISTED])
            more = f" and {len(names) - MAX_LISTED} more" if len(names) > MAX_LISTED else ""
            print(f"  members: {shown}{more}")

    def stats() -> None:
        """Counters: uptime, connections, users, rooms, lines relayed,
        bytes out (`factory.stats()` returns them as a dict)."""
        counters = dict(factory.stats())
        width = max(len(key) for key in counters) + 2
        for key, value in counters.items():
            if key == "uptime":
                shown = _duration(value)
            elif key.startswith("bytes"):
                shown = _size(value)
            else:
                shown = f"{value:g}" if isinstance(value, float) else str(value)
            print(f"  {key.replace('_', ' '):<{width}} {shown}")

    def kick(name: str, reason: str = "") -> None:
        """Disconnect the user `name`, who is first shown `reason`; their
        rooms see that they were kicked."""
        try:
            user = factory.kick(name, reason)
        except errors.ChatError as e:
            print(f"{e} (who() lists who is online)")
            return
        print(f"Kicked {user.name}.")

    def announce(text: str, room: Optional[str] = None) -> None:
        """Show `text` as an announcement to everyone online, or only to
        the members of `room`."""
        try:
            count = factory.announce(text, room)
        except errors.ChatError as e:
            print(e)
            return
        print(f"Announced to {count} user{'' if count == 1 else 's'}.")

    def close_room(name: str, reason: str = "") -> None:
        """Close the room `name`: its members are told (with `reason`) and
        removed; the default room is emptied but stays."""
        try:
            closed = factory.close_room(name, reason)
        except errors.ChatError as e:
            print(e)
            return
        print(f"Closed {closed.display}.")

    def _no_store() -> bool:
        if factory.store is None:
            print("This server keeps nothing on disk (--no-database).")
            return True
        return False

    def accounts(pattern: Optional[str] = None):
        """Registered names containing `pattern` (50 at most), with when
        they were created and last seen. The answer arrives as
        "Deferred #n called back"."""
        if _no_store():
            return None
        now = factory.clock.seconds()

        def show(found):
            lines = [f"{len(found)} account{'' if len(found) == 1 else 's'}"]
            for account in found:
                seen = (f"last seen {_duration(now - account.last_seen)} ago"
                        if account.last_seen else "never logged in since")
                online = " (online)" if account.key in factory.users else ""
                lines.append(f"  {account.name:<24} registered "
                             f"{_duration(now - account.created)} ago, {seen}{online}")
            return _Report("\n".join(lines))

        return factory.store.accounts(pattern).addCallback(show)

    def history(room: str, count: int = 20, text: Optional[str] = None,
                sender: Optional[str] = None):
        """The last `count` stored lines of `room`, optionally only those
        containing `text` or said by `sender`. The answer arrives as
        "Deferred #n called back"."""
        if _no_store():
            return None
        key = name_key(clean_room_name(room))
        store = factory.store
        d = store.flush().addCallback(lambda _: store.search_history(
            text=text, room_key=key, sender=sender, limit=count))

        def show(found):
            lines = [f"{len(found)} line{'' if len(found) == 1 else 's'} from #{key}"]
            for line in found:
                stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(line.when))
                lines.append(f"  {stamp} {line.kind:<5} <{line.sender}> {line.text}")
            return _Report("\n".join(lines))

        return d.addCallback(show)

    def reset_password(name: str, new_password: str):
        """Set a new password for the registered name `name` (tell its
        owner, who can change it with /password). The answer arrives as
        "Deferred #n called back"."""
        if _no_store():
            return None
        d = factory.accounts.reset_password(name_key(name), new_password)
        return d.addCallback(lambda _: _Report(f"Password of {name} reset."))

    listed = [who, room, stats, kick, announce, close_room,
              accounts, history, reset_password]

    def helpers() -> None:
        """List the helpers and the live objects of this shell."""
        print("Helpers:")
        for helper in listed + [helpers, help]:
            summary = " ".join((helper.__doc__ or "").split())
            print(f"  {helper.__name__}{_signature(helper)}")
            print(f"      {summary}")
        print("Live objects: factory (the ChatFactory), users (name key -> User), "
              "rooms (name key -> Room), reactor.")
        print("Everything runs on the reactor thread: a blocking call freezes the chat.")

    def help(thing=None) -> None:  # noqa: A001 - replaces the builtin on purpose
        """help() lists the helpers; help(obj) prints obj's documentation
        (without the pager, which would hang this shell)."""
        if thing is None:
            helpers()
        elif isinstance(thing, str):
            print("help(NAME) is not available here: pass the object itself, "
                  "for example help(kick) or help(factory).")
        else:
            print(pydoc.render_doc(thing, renderer=pydoc.plaintext))

    namespace = {helper.__name__: helper for helper in listed}
    namespace.update(
        __name__="__admin__",
        helpers=helpers,
        help=help,
        factory=factory,
        users=factory.users,
        rooms=factory.rooms,
        reactor=reactor,
    )
    return namespace


class _Report(str):
    """Text whose repr is itself, so the shell shows a Deferred's answer
    as readable lines rather than a quoted string."""

    def __repr__(self) -> str:
        return str(self)


def _signature(function) -> str:
    """C{(name, reason='')}: the parameters, without annotations."""
    parameters = []
    for parameter in inspect.signature(function).parameters.values():
        if parameter.default is inspect.Parameter.empty:
            parameters.append(parameter.name)
        else:
            parameters.append(f"{parameter.name}={parameter.default!r}")
    return f"({', '.join(parameters)})"


# -- the host key ---------------------------------------------------------------


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


# -- the service ------------------------------------------------------------------


class AdminService(Service):
    """
    Listens for admin SSH connections while running; stopping it stops
    listening and closes the open admin sessions.

    @ivar port: the listening port once listening (L{None} before).
    @ivar listening: a Deferred that fires with C{port} (or fails) after
        L{startService}.
    """

    name = "admin"

    def __init__(self, endpoint, factory: AdminSSHFactory, description: str,
                 remote: bool) -> None:
        self.endpoint = endpoint
        self.factory = factory
        self.description = description
        self.remote = remote
        self.port = None
        self.listening: Optional[defer.Deferred] = None

    def startService(self) -> None:
        """Start listening (the result is in L{listening})."""
        super().startService()
        if self.remote:
            log.warn("the admin SSH shell on {endpoint} is reachable from other "
                     "hosts (--admin-allow-remote)", endpoint=self.description)
        self.listening = self.endpoint.listen(self.factory)
        self.listening.addCallbacks(self._listening, self._failed)

    def _listening(self, port):
        self.port = port
        key = next(iter(self.factory.privateKeys.values()))
        log.info("admin SSH shell listening on {address}; host key "
                 "SHA256:{fingerprint}", address=port.getHost(),
                 fingerprint=key.fingerprint(keys.FingerprintFormats.SHA256_BASE64)
                 .rstrip("="))
        return port

    def _failed(self, reason: Failure) -> Failure:
        log.failure("the admin SSH shell cannot listen on {endpoint}", reason,
                    endpoint=self.description)
        return reason

    def stopService(self) -> defer.Deferred:
        """Stop listening and close every admin connection."""
        super().stopService()
        for connection in list(self.factory.connections):
            connection.loseConnection()
        if self.port is None:
            if self.listening is not None:
                self.listening.addErrback(lambda _: None)
            return defer.succeed(None)
        port, self.port = self.port, None
        return defer.maybeDeferred(port.stopListening)


def make_admin_service(options, factory, reactor) -> Optional[AdminService]:
    """
    Build the admin SSH service from the checked options (see
    L{AdminOptions}), or return L{None} when C{--admin-port} is not given.
    """
    if not options.get("admin-port"):
        return None
    checkers = []
    if options.get("admin-keys"):
        checkers.append(SSHPublicKeyChecker(AuthorizedKeysFile(options["admin-keys"])))
    if options.get("admin-passwd"):
        checkers.append(PasswordFileChecker(options["admin-passwd"], reactor))
    if not checkers:
        raise AdminSetupError("--admin-port needs --admin-keys and/or --admin-passwd")
    host_key = load_or_create_host_key(options["data-dir"])
    realm = AdminRealm(lambda: make_namespace(factory, reactor))
    ssh_factory = AdminSSHFactory(Portal(realm, checkers), host_key)
    endpoint = endpoints.serverFromString(reactor, options["admin-port"])
    return AdminService(endpoint, ssh_factory, options["admin-port"],
                        bool(options.get("admin-remote")))
