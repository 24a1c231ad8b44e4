"""
Who may open the admin shell: the keys of an OpenSSH authorized_keys file
(they log in as C{admin}) and the users of a password file of salted scrypt
hashes, both re-read at every login, as L{twisted.cred} checkers.
"""

from typing import Iterable, List, Optional, Tuple

from twisted.conch.checkers import IAuthorizedKeysDB
from twisted.conch.ssh import keys
from twisted.cred import credentials as cred_credentials
from twisted.cred.checkers import ICredentialsChecker
from twisted.cred.error import UnauthorizedLogin
from twisted.internet import defer, threads
from twisted.logger import Logger
from zope.interface import implementer

from ..passwords import (
    PasswordFileError,
    dummy_hash,
    read_password_file,
    verify_password,
)

log = Logger()

#: The only user name a key from C{--admin-keys} logs in as (an
#: authorized_keys file says which keys, not whose).
ADMIN_USER = "admin"
#: The key types an authorized_keys line may start with.
KEY_TYPES = (
    "ssh-ed25519", "ssh-rsa", "ssh-dss", "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com", "sk-ecdsa-sha2-nistp256@openssh.com",
)


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


@implementer(IAuthorizedKeysDB)
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
