"""
Registered names: claiming a name with a password, checking it at login,
changing and resetting it.

Password hashing (scrypt, in L{chatservice.passwords}) is deliberately slow,
so it runs in a thread; the database work runs on the store's own thread.
Nothing here blocks the reactor, and no password is ever logged.

The checks users ask for (login, C{/register}, C{/password}) wait their
turn in a L{CheckQueue}: a few run at once, the others wait in one queue
per address, the address served least recently first, with bounds per
connection, per address and overall.  So 200 connections guessing one
name cost a bounded amount of CPU and memory, and the name's owner, from
another address, is served as soon as a check ends.
"""

import collections
from typing import Callable, Dict, Hashable, Optional, Set

from twisted.internet import defer, threads
from twisted.logger import Logger
from twisted.python.failure import Failure

from ..core import errors
from ..core.limits import Limits
from ..passwords import dummy_hash, hash_password, verify_password
from .records import AccountExists

#: Shortest password /register and /password accept.
MIN_PASSWORD_LENGTH = 6


def _in_thread(function: Callable, *args) -> defer.Deferred:
    return threads.deferToThread(function, *args)


def _verify(password: str, stored) -> bool:
    # An unknown name costs as much as a known one: no timing oracle.
    return verify_password(password, stored if stored is not None else dummy_hash())


#: What a login (or /register, /password) past the bounds is told.
TOO_MANY_CHECKS = "Too many logins are being checked; try again in a few seconds."


class CheckQueue:
    """
    Password checks waiting for a thread: at most C{running} at once; the
    others wait in one first-in first-out queue per address, and the
    address served least recently goes next: addresses that keep asking
    take turns (round robin), and one that was not asking (the name's
    owner, while others guess) goes before them all.  A connection has one check at a
    time, an address C{per_address} (running or waiting), and C{waiting}
    wait in all (0: no bound); past a bound L{submit} fails at once with
    L{errors.TooManyChecks}, and nothing is queued.

    @ivar waiting: checks waiting now.
    @ivar most_waiting: the most that ever waited at once.
    @ivar most_running: the most that ever ran at once.
    """

    def __init__(self, running: int, per_address: int, waiting: int) -> None:
        self.running = max(1, running)
        self.per_address = per_address
        self.max_waiting = waiting
        self.waiting = 0
        self.most_waiting = 0
        self.most_running = 0
        self._running = 0
        self._queues: Dict[Optional[str], collections.deque] = {}  # in order of arrival
        self._per_address: Dict[Optional[str], int] = {}  # running or waiting
        # When each address with checks running or waiting was last served.
        self._served: Dict[Optional[str], int] = {}
        self._turn = 0
        self._owners: Set[Hashable] = set()

    def resize(self, running: int, per_address: int, waiting: int) -> None:
        """
        Change the bounds (a reload of the limits): checks already running
        or waiting keep their place, and more start now if C{running} grew.
        """
        self.running = max(1, running)
        self.per_address = per_address
        self.max_waiting = waiting
        self._pump()

    def submit(self, job: Callable[[], defer.Deferred], address: Optional[str] = None,
               owner: Optional[Hashable] = None) -> defer.Deferred:
        """
        Run C{job} (which returns a Deferred) when its turn comes; fire with
        its result.  C{address} is where the request comes from and
        C{owner} the connection that asks (L{None}: not bounded per
        connection).
        """
        if owner is not None and owner in self._owners:
            return defer.fail(errors.TooManyChecks(
                "Your password is still being checked; wait for the answer."))
        if self.per_address and self._per_address.get(address, 0) >= self.per_address:
            return defer.fail(errors.TooManyChecks(TOO_MANY_CHECKS))
        if (self._running >= self.running and self.max_waiting
                and self.waiting >= self.max_waiting):
            return defer.fail(errors.TooManyChecks(TOO_MANY_CHECKS))
        d: defer.Deferred = defer.Deferred()
        self._per_address[address] = self._per_address.get(address, 0) + 1
        if owner is not None:
            self._owners.add(owner)
        queue = self._queues.get(address)
        if queue is None:
            queue = self._queues[address] = collections.deque()
        queue.append((job, address, owner, d))
        self.waiting += 1
        self.most_waiting = max(self.most_waiting, self.waiting)
        self._pump()
        return d

    def _pump(self) -> None:
        queues, served = self._queues, self._served
        while self._running < self.running and queues:
            # At most max_waiting addresses wait: a scan is cheap.
            address = min(queues, key=lambda a: served.get(a, -1))
            queue = queues[address]
            entry = queue.popleft()
            if not queue:
                del queues[address]
            self._turn += 1
            served[address] = self._turn
            self.waiting -= 1
            self._running += 1
            self.most_running = max(self.most_running, self._running)
            defer.maybeDeferred(entry[0]).addBoth(self._done, entry)

    def _done(self, result, entry) -> None:
        _, address, owner, d = entry
        self._running -= 1
        left = self._per_address[address] - 1
        if left:
            self._per_address[address] = left
        else:
            del self._per_address[address]
            del self._served[address]  # back later, it is served first
        self._owners.discard(owner)
        self._pump()
        if isinstance(result, Failure):
            d.errback(result)
        else:
            d.callback(result)


class Accounts:
    """
    The account rules, over a L{chatservice.persistence.store.ChatStore}.

    @ivar store: where accounts are kept.
    @ivar run_blocking: runs a CPU-heavy function off the reactor thread and
        returns a Deferred (a thread by default; tests may run it inline).
    @ivar checks: the L{CheckQueue} the checks users ask for wait in.
    """

    log = Logger()

    def __init__(self, store, clock, run_blocking: Callable = _in_thread,
                 limits: Optional[Limits] = None) -> None:
        self.store = store
        self.clock = clock
        self.run_blocking = run_blocking
        limits = limits if limits is not None else Limits()
        self.checks = CheckQueue(limits.max_password_checks, limits.max_checks_per_address,
                                 limits.max_checks_waiting)

    def is_registered(self, key: str) -> bool:
        """Whether the name key C{key} is registered (no disk access)."""
        return self.store.is_registered(key)

    def authenticate(self, key: str, password: str, address: Optional[str] = None,
                     owner: Optional[Hashable] = None) -> defer.Deferred:
        """
        Fire with the registered spelling of the name if C{password} is right
        for the account C{key}, else with L{None}; fail with
        L{errors.TooManyChecks} when too many checks wait (from C{address},
        from the connection C{owner}, or in all).
        """
        return self.checks.submit(lambda: self._authenticate(key, password), address, owner)

    @defer.inlineCallbacks
    def _authenticate(self, key: str, password: str):
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

    def register(self, key: str, name: str, password: str, address: Optional[str] = None,
                 owner: Optional[Hashable] = None) -> defer.Deferred:
        """
        Register C{name} with C{password}; fail with L{errors.ChatError}
        (L{errors.TooManyChecks} when too many checks wait).
        """
        try:
            self.check_new_password(password)
            if self.is_registered(key):
                raise errors.AlreadyRegistered(f"The name {name} is already registered.")
        except errors.ChatError:
            return defer.fail()
        return self.checks.submit(lambda: self._register(key, name, password), address, owner)

    @defer.inlineCallbacks
    def _register(self, key: str, name: str, password: str):
        hashed = yield self.run_blocking(hash_password, password)
        try:
            yield self.store.create_account(key, name, hashed, self.clock.seconds())
        except AccountExists:
            raise errors.AlreadyRegistered(f"The name {name} is already registered.")
        self.log.info("registered {name}", name=name)

    def change_password(self, key: str, old: str, new: str, address: Optional[str] = None,
                        owner: Optional[Hashable] = None) -> defer.Deferred:
        """Replace the password of C{key} if C{old} is right."""
        try:
            self.check_new_password(new)
            if not self.is_registered(key):
                raise errors.NotRegistered("Your name is not registered.")
        except errors.ChatError:
            return defer.fail()
        return self.checks.submit(lambda: self._change_password(key, old, new), address, owner)

    @defer.inlineCallbacks
    def _change_password(self, key: str, old: str, new: str):
        ok = yield self._authenticate(key, old)
        if ok is None:
            raise errors.WrongPassword("That is not your current password.")
        yield self.reset_password(key, new)

    def unregister(self, key: str, password: str, address: Optional[str] = None,
                   owner: Optional[Hashable] = None) -> defer.Deferred:
        """
        Delete the account C{key} (its offline messages and private
        history with it) if C{password} is right; fail with
        L{errors.WrongPassword} if it is not.
        """
        if not self.is_registered(key):
            return defer.fail(errors.NotRegistered("Your name is not registered."))
        return self.checks.submit(lambda: self._unregister(key, password), address, owner)

    @defer.inlineCallbacks
    def _unregister(self, key: str, password: str):
        ok = yield self._authenticate(key, password)
        if ok is None:
            raise errors.WrongPassword("That is not your password.")
        yield self.store.delete_account(key)
        self.log.info("unregistered {key}", key=key)

    @defer.inlineCallbacks
    def reset_password(self, key: str, new: str):
        """Set the password of C{key} without the old one (for operators)."""
        self.check_new_password(new)
        hashed = yield self.run_blocking(hash_password, new)
        exists = yield self.store.set_password(key, hashed)
        if not exists:
            raise errors.NotRegistered(f"{key!r} is not a registered name.")
        self.log.info("password changed for {key}", key=key)
