"""
Private messages: from one user to another, delivered at once when the
recipient is online, kept in the store's offline mailbox when they are
registered and offline, and handed over at their next login.
L{PrivateMessages} is a base of L{chatservice.core.chat.Chat}.
"""

from typing import TYPE_CHECKING, Any, Dict, Optional

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
        self.lines_said[counters.PRIVATE] += 1
        return target

