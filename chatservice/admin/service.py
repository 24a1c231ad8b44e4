"""
The admin service: listens for operators' SSH connections while it runs,
built from the checked options by L{make_admin_service}.
"""

from typing import List, Optional

from twisted.application.service import Service
from twisted.conch.checkers import SSHPublicKeyChecker
from twisted.conch.ssh import keys
from twisted.cred.checkers import ICredentialsChecker
from twisted.cred.portal import Portal
from twisted.internet import defer, endpoints
from twisted.logger import Logger
from twisted.python.failure import Failure

from ..service import listen_now
from .credentials import AuthorizedKeysFile, PasswordFileChecker
from .hostkey import AdminSetupError, load_or_create_host_key
from .namespace import make_namespace
from .ssh import AdminRealm, AdminSSHFactory

log = Logger()


class AdminService(Service):
    """
    Listens for admin SSH connections while running; stopping it stops
    listening and closes the open admin sessions.

    @ivar port: the listening port once listening (L{None} before).
    @ivar listening: a Deferred that fires with C{port} (or fails) after
        L{startService}.
    """

    name = "admin"  # type: ignore[assignment]  # Service declares it None

    def __init__(self, endpoint, factory: AdminSSHFactory, description: str,
                 remote: bool) -> None:
        self.endpoint = endpoint
        self.factory = factory
        self.description = description
        self.remote = remote
        self.port = None
        self.listening: Optional[defer.Deferred] = None

    def privilegedStartService(self) -> None:
        """
        Start listening (before C{twistd} sheds privileges, like the chat's
        ports); a port that cannot be listened on raises a one-line
        L{chatservice.service.StartupFailure} instead of a traceback.
        """
        super().privilegedStartService()
        self._listen()

    def startService(self) -> None:
        """Start listening unless L{privilegedStartService} did (the result is in L{listening})."""
        super().startService()
        if self.listening is None:
            self._listen()

    def _listen(self) -> None:
        if self.remote:
            log.warn("the admin SSH shell on {endpoint} is reachable from other "
                     "hosts (--admin-allow-remote)", endpoint=self.description)
        self.listening = listen_now(self.endpoint, self.factory, "--admin-port",
                                    self.description)
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


def make_admin_service(options, chat, reactor,
                       host_key: Optional[keys.Key] = None) -> Optional[AdminService]:
    """
    Build the admin SSH service from the checked options (see
    L{AdminOptions}), or return L{None} when C{--admin-port} is not given.
    C{host_key} is the one L{load_or_create_host_key} returned, if the
    caller loaded it already.
    """
    if not options.get("admin-port"):
        return None
    checkers: List[ICredentialsChecker] = []
    if options.get("admin-keys"):
        checkers.append(SSHPublicKeyChecker(AuthorizedKeysFile(options["admin-keys"])))
    if options.get("admin-passwd"):
        checkers.append(PasswordFileChecker(options["admin-passwd"], reactor))
    if not checkers:
        raise AdminSetupError("--admin-port needs --admin-keys and/or --admin-passwd")
    if host_key is None:
        host_key = load_or_create_host_key(options["data-dir"])
    realm = AdminRealm(lambda: make_namespace(chat, reactor))
    ssh_factory = AdminSSHFactory(Portal(realm, checkers), host_key)
    endpoint = endpoints.serverFromString(reactor, options["admin-port"])
    return AdminService(endpoint, ssh_factory, options["admin-port"],
                        bool(options.get("admin-remote")))
