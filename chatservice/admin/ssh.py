"""
The SSH plumbing of the admin shell: the login step (logged, with fewer
attempts than Twisted's defaults), the transport and factory (fresh host key
dicts per factory), and the session that runs Twisted's colored manhole in
a pty, with a namespace built for each session.
"""

from typing import Callable, Optional, Set

from twisted.conch import error as conch_error
from twisted.conch.insults import insults
from twisted.conch.interfaces import IConchUser, ISession
from twisted.conch.manhole import ColoredManhole
from twisted.conch.manhole_ssh import ConchFactory, TerminalRealm, TerminalSession
from twisted.conch.ssh import keys, transport, userauth
from twisted.cred.portal import IRealm, Portal
from twisted.internet import defer
from twisted.internet.error import ProcessDone
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

log = Logger()

#: Seconds a client gets to log in, and failed attempts per connection.
LOGIN_TIMEOUT = 60
MAX_LOGIN_ATTEMPTS = 6


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

    factory: "AdminSSHFactory"

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
        # Twisted annotates privateKeys as bytes, but it holds Key objects.
        self.publicKeys = {host_key.sshType(): host_key.public()}
        self.privateKeys = {host_key.sshType(): host_key}  # type: ignore[dict-item]
        self.services = dict(ConchFactory.services)
        self.services[b"ssh-userauth"] = AdminUserAuthServer
        self.connections: Set[AdminSSHTransport] = set()


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
        assert self.transport is not None
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


@implementer(IRealm)
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
