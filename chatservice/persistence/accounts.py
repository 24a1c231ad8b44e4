"""
Registered names: claiming a name with a password, checking it at login,
changing and resetting it.

Password hashing (scrypt, in L{chatservice.passwords}) is deliberately slow,
so it runs in a thread; the database work runs on the store's own thread.
Nothing here blocks the reactor, and no password is ever logged.
"""

from typing import Callable

from twisted.internet import defer, threads
from twisted.logger import Logger

from ..core import errors
from ..passwords import dummy_hash, hash_password, verify_password
from .store import AccountExists

#: Shortest password /register and /password accept.
MIN_PASSWORD_LENGTH = 6


def _in_thread(function: Callable, *args) -> defer.Deferred:
    return threads.deferToThread(function, *args)


def _verify(password: str, stored) -> bool:
    # An unknown name costs as much as a known one: no timing oracle.
    return verify_password(password, stored if stored is not None else dummy_hash())


class Accounts:
    """
    The account rules, over a L{chatservice.persistence.store.ChatStore}.

    @ivar store: where accounts are kept.
    @ivar run_blocking: runs a CPU-heavy function off the reactor thread and
        returns a Deferred (a thread by default; tests may run it inline).
    """

    log = Logger()

    def __init__(self, store, clock, run_blocking: Callable = _in_thread) -> None:
        self.store = store
        self.clock = clock
        self.run_blocking = run_blocking

    def is_registered(self, key: str) -> bool:
        """Whether the name key C{key} is registered (no disk access)."""
        return self.store.is_registered(key)

    @defer.inlineCallbacks
    def authenticate(self, key: str, password: str):
        """
        Fire with the registered spelling of the name if C{password} is right
        for the account C{key}, else with L{None}.
        """
        account = yield self.store.get_account(key)
        stored = account.password_hash if account is not None else None
        ok = yield self.run_blocking(_verify, password, stored)
        if ok and account is not None:
            self.store.record_login(key, self.clock.seconds())
            return account.name
        return None

    @staticmethod
    def check_new_password(password: str) -> None:
        """Raise L{errors.InvalidPassword} if C{password} is too weak to use."""
        if len(password) < MIN_PASSWORD_LENGTH:
            raise errors.InvalidPassword(
                f"A password needs at least {MIN_PASSWORD_LENGTH} characters.")
        if " " in password:
            raise errors.InvalidPassword("A password cannot contain spaces.")

    @defer.inlineCallbacks
    def register(self, key: str, name: str, password: str):
        """Register C{name} with C{password}; fail with L{errors.ChatError}."""
        self.check_new_password(password)
        if self.is_registered(key):
            raise errors.AlreadyRegistered(f"The name {name} is already registered.")
        hashed = yield self.run_blocking(hash_password, password)
        try:
            yield self.store.create_account(key, name, hashed, self.clock.seconds())
        except AccountExists:
            raise errors.AlreadyRegistered(f"The name {name} is already registered.")
        self.log.info("registered {name}", name=name)

    @defer.inlineCallbacks
    def change_password(self, key: str, old: str, new: str):
        """Replace the password of C{key} if C{old} is right."""
        self.check_new_password(new)
        if not self.is_registered(key):
            raise errors.NotRegistered("Your name is not registered.")
        ok = yield self.authenticate(key, old)
        if ok is None:
            raise errors.WrongPassword("That is not your current password.")
        yield self.reset_password(key, new)

    @defer.inlineCallbacks
    def reset_password(self, key: str, new: str):
        """Set the password of C{key} without the old one (for operators)."""
        self.check_new_password(new)
        hashed = yield self.run_blocking(hash_password, new)
        exists = yield self.store.set_password(key, hashed)
        if not exists:
            raise errors.NotRegistered(f"{key!r} is not a registered name.")
        self.log.info("password changed for {key}", key=key)
