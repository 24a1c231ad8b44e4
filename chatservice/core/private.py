"""
Private messages: from one user to another, delivered at once when the
recipient is online, kept in the store's offline mailbox when they are
registered and offline, and handed over at their next login.
L{PrivateMessages} is a base of L{chatservice.core.chat.Chat}.

The history of private conversations belongs to registered accounts: a
line (not a notice) is recorded for the account of each side that is
logged in to a registered name (the recipient of an offline message
counts, once it is kept), and for nobody else, so a guest's conversations
are never stored and a later holder of the same nick cannot read them.
Each account's rows are its own (deleted with the account), and it keeps
its last C{private_history_limit} lines (see the store).
"""

from typing import TYPE_CHECKING, Any, Callable, Dict, Optional

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime

from . import counters, errors, events
from .text import name_key, sanitize
from .user import User


class PrivateMessages:
    """C{/msg} and PRIVMSG to a nick, and the offline mailboxes."""

    if TYPE_CHECKING:  # what Chat, the class this is a base of, provides
        clock: IReactorTime
        store: Any
        accounts: Any
        users: Dict[str, User]
        lines_said: Dict[str, int]

        def is_registered(self, raw_name: str) -> bool: ...
        def bounded_read(self, user: User, read: Callable[[], defer.Deferred]
                         ) -> defer.Deferred: ...

    def account_of(self, user: User) -> Optional[str]:
        """The account (name key) C{user} is logged in to, or L{None} for a guest."""
        if self.store is not None and user.registered and self.is_registered(user.name):
            return user.key
        return None

    def keeps_private_history(self) -> bool:
        """Whether private conversations are stored at all (there is a store)."""
        return self.store is not None and self.accounts is not None

    def private_history(self, user: User, raw_peer: str, count: int) -> defer.Deferred:
        """
        Fire with the last C{count} lines of C{user}'s private conversation
        with C{raw_peer} (online or not, existing or not) as
        L{chatservice.persistence.records.PrivateLine}s, oldest first: none
        for a guest.  Raise L{errors.Busy} as L{Chat.history} does for a
        read of the database.
        """
        owner = self.account_of(user)
        if owner is None or count <= 0:
            return defer.succeed([])
        store, peer = self.store, name_key(sanitize(raw_peer))
        return self.bounded_read(user, lambda: store.private_history(owner, peer, count))

    def private_targets(self, user: User, start: float, end: float,
                        limit: int) -> defer.Deferred:
        """
        Fire with the people C{user}'s account exchanged private lines with
        between C{start} and C{end} (seconds, inclusive) as
        L{chatservice.persistence.records.PrivateTarget}s, earliest last line
        first: none for a guest.
        """
        owner = self.account_of(user)
        if owner is None or limit <= 0:
            return defer.succeed([])
        store = self.store
        return self.bounded_read(user, lambda: store.private_targets(owner, start, end, limit))

    def _keep_private(self, sender: User, recipient: str, recipient_account: Optional[str],
                      text: str, action: bool, when: float) -> None:
        """Record a private line for the sender's account and the recipient's, if any."""
        store = self.store
        if store is None:
            return
        kind = "act" if action else "say"
        own = self.account_of(sender)
        if own is not None:
            store.record_private(own, name_key(recipient), when, kind, sender.name, recipient,
                                 text, True)
        if recipient_account is not None and recipient_account != own:
            store.record_private(recipient_account, sender.key, when, kind, sender.name,
                                 recipient, text, False)

    def take_offline(self, user: User) -> defer.Deferred:
        """Fire with (and forget) the private messages kept for C{user}."""
        if self.store is None or not user.registered:
            return defer.succeed([])
        return self.store.take_offline(user.key)

    def whisper(self, user: User, raw_target: str, raw_text: str, action: bool = False,
                when: Optional[float] = None, notice: bool = False, tags: tuple = ()):
        """
        Send C{raw_text} privately from C{user} to the user C{raw_target}.
        Return the recipient if they are online.  If they are registered
        but offline, the message is kept and shown when they next log in:
        return a L{defer.Deferred} that fires once it is stored (so that the sender is told
        only then), or fails with L{errors.MailboxFull} saying why it was not kept (a full
        mailbox, or the database could not store it); C{when}, C{notice}, C{tags}: see L{say}.
        """
        text = sanitize(raw_text)
        if not text:
            raise errors.InvalidText("There is nothing to send.")
        now = self.clock.seconds() if when is None else when
        target_name = sanitize(raw_target)
        target = self.users.get(name_key(target_name))
        if target is None:
            if not self.is_registered(target_name):
                where = "online" if self.accounts is None else "online or registered"
                raise errors.NoSuchUser(f"No one called {target_name!r} is {where}.")
            key = name_key(target_name)
            store = self.store

            def kept(stored: bool) -> None:
                if stored:
                    if not notice:
                        self._keep_private(user, target_name, key, text, action, now)
                    return None
                waiting = store.offline_waiting.get(key, 0)
                if store.max_offline and waiting >= store.max_offline:
                    raise errors.MailboxFull(
                        f"{target_name} is offline and your message was not kept: "
                        f"{waiting} messages already wait for them. Try again after "
                        "they next log in.")
                raise errors.MailboxFull(
                    f"{target_name} is offline and your message was not kept: the "
                    "server could not store it just now. Try /msg again later.")

            self.lines_said[counters.PRIVATE] += 1
            return store.queue_offline(key, user.name, text, now,
                                       action).addCallback(kept)
        target.client.deliver(events.Private(user.name, target.name, text, action, now, notice,
                                             tags))
        if not notice:
            self._keep_private(user, target.name, self.account_of(target), text, action, now)
        self.lines_said[counters.PRIVATE] += 1
        return target

