"""
What an operator finds in the admin shell: the live objects and the
helpers (C{who()}, C{room(name)}, C{stats()}, C{kick(name, reason)}, ...),
each printing a readable answer.
"""

import inspect
import pydoc
import time
from typing import Optional

from ..core import errors
from ..core.limits import MAX_LISTED
from ..core.text import clean_room_name, name_key


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


class AdminHelpers:
    """
    The helpers of one admin shell session, over the live chat.

    Each helper prints a readable answer and returns nothing (the live
    objects are there for anything more), or, for the ones that read the
    database, returns a Deferred the shell shows when it fires; each has a
    docstring, and C{helpers()} lists them.
    """

    #: The helpers, in the order C{helpers()} lists them.
    LISTED = ("who", "room", "stats", "kick", "announce", "close_room", "op", "ban", "modes",
              "transfer_room", "drop_room", "accounts", "history", "reset_password", "helpers", "help")

    def __init__(self, chat, reactor) -> None:
        self.chat = chat
        self.reactor = reactor

    def who(self) -> None:
        """Who is online: each user, their rooms (* marks the current one),
        where they connect from and for how long."""
        users = sorted(self.chat.users.values(), key=lambda u: u.key)
        now = self.chat.clock.seconds()
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

    def room(self, name: str) -> None:
        """One room: its registration, modes, topic and members (`rooms` holds them all)."""
        try:
            found = self.chat.find_room(name)
        except errors.ChatError as e:
            print(f"{e} Rooms: {', '.join(r.display for r in self.chat.rooms.values())}")
            return
        tags = []
        if found is self.chat.default_room:
            tags.append("default room")
        tags.append(f"{len(found.members)} member{'' if len(found.members) == 1 else 's'}")
        print(f"{found.display} ({', '.join(tags)})")
        registration = found.registration
        if registration is not None:
            kept = ", ".join(sorted(registration.operators)) or "none"
            print(f"  registered to {registration.founder} (account {registration.founder_key}) "
                  f"since {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(registration.registered_at))}; "
                  f"operators kept: {kept}")
        elif found is not self.chat.default_room:
            print("  not registered (closes when empty)")
        letters, values = found.moderation.modes()
        print(f"  modes {' '.join([letters, *values])}")
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

    def stats(self) -> None:
        """Counters: uptime, connections, users, rooms, lines relayed,
        bytes out (`chat.stats()` returns them as a dict)."""
        counters = dict(self.chat.stats())
        width = max(len(key) for key in counters) + 2
        for key, value in counters.items():
            if key == "uptime":
                shown = _duration(value)
            elif key.startswith("bytes"):
                shown = _size(value)
            else:
                shown = f"{value:g}" if isinstance(value, float) else str(value)
            print(f"  {key.replace('_', ' '):<{width}} {shown}")

    def kick(self, name: str, reason: str = "") -> None:
        """Disconnect the user `name`, who is first shown `reason`; their
        rooms see that they were kicked."""
        try:
            user = self.chat.kick(name, reason)
        except errors.ChatError as e:
            print(f"{e} (who() lists who is online)")
            return
        print(f"Kicked {user.name}.")

    def announce(self, text: str, room: Optional[str] = None) -> None:
        """Show `text` as an announcement to everyone online, or only to
        the members of `room`."""
        try:
            count = self.chat.announce(text, room)
        except errors.ChatError as e:
            print(e)
            return
        print(f"Announced to {count} user{'' if count == 1 else 's'}.")

    def close_room(self, name: str, reason: str = "") -> None:
        """Close the room `name`: its members are told (with `reason`) and
        removed; the default room is emptied but stays."""
        try:
            closed = self.chat.close_room(name, reason)
        except errors.ChatError as e:
            print(e)
            return
        print(f"Closed {closed.display}.")

    def op(self, room: str, name: str) -> None:
        """Make `name`, a member of `room`, one of its operators (the
        server's operator outranks every room operator)."""
        try:
            found = self.chat.find_room(room)
            changed = self.chat.moderation.op(found, None, name)
        except errors.ChatError as e:
            print(f"{e} (room(name) lists a room's members)")
            return
        user = self.chat.find_user(name)
        print(f"{user.name} is {'now' if changed else 'already'} an operator of {found.display}.")

    def ban(self, room: str, mask: str) -> None:
        """Ban `mask` (a name, or a pattern with *, such as spam*) from
        `room`: matching people cannot join it, nor speak there."""
        try:
            found = self.chat.find_room(room)
            changed = self.chat.moderation.ban(found, None, mask)
        except errors.ChatError as e:
            print(e)
            return
        print(f"{mask} is {'now' if changed else 'already'} banned from {found.display}.")

    def modes(self, room: str) -> None:
        """The modes of `room`, its operators, voiced members, bans and invites."""
        try:
            found = self.chat.find_room(room)
        except errors.ChatError as e:
            print(e)
            return
        state = found.moderation
        letters, values = state.modes()
        print(f"{found.display} modes {' '.join([letters, *values])}")
        for label, keys in (("operators", state.operators), ("voiced", state.voiced),
                            ("bans", list(state.bans.values())),
                            ("invited", state.invited)):
            print(f"  {label}: {', '.join(sorted(keys)) or 'none'}")

    def transfer_room(self, room: str, name: str) -> None:
        """Make the registered user `name` the founder of registered `room`
        (the server's operator outranks its founder)."""
        try:
            found = self.chat.find_room(room)
            new = self.chat.registry.transfer(found, None, name)
        except errors.ChatError as e:
            print(e)
            return
        print(f"{found.display} now belongs to {new}.")

    def drop_room(self, room: str) -> None:
        """Drop the registration of `room`: it is an ordinary room again,
        closed when empty (and at once if it is empty now)."""
        try:
            found = self.chat.find_room(room)
            self.chat.registry.drop(found, None)
        except errors.ChatError as e:
            print(e)
            return
        print(f"{found.display} is no longer registered.")

    def _no_store(self) -> bool:
        if self.chat.store is None:
            print("This server keeps nothing on disk (--no-database).")
            return True
        return False

    def accounts(self, pattern: Optional[str] = None):
        """Registered names containing `pattern` (50 at most), with when
        they were created and last seen. The answer arrives as
        "Deferred #n called back"."""
        if self._no_store():
            return None
        now = self.chat.clock.seconds()

        def show(found):
            lines = [f"{len(found)} account{'' if len(found) == 1 else 's'}"]
            for account in found:
                seen = (f"last seen {_duration(now - account.last_seen)} ago"
                        if account.last_seen else "never logged in since")
                online = " (online)" if account.key in self.chat.users else ""
                lines.append(f"  {account.name:<24} registered "
                             f"{_duration(now - account.created)} ago, {seen}{online}")
            return _Report("\n".join(lines))

        return self.chat.store.accounts(pattern).addCallback(show)

    def history(self, room: str, count: int = 20, text: Optional[str] = None,
                sender: Optional[str] = None):
        """The last `count` stored lines of `room`, optionally only those
        containing `text` or said by `sender`. The answer arrives as
        "Deferred #n called back"."""
        if self._no_store():
            return None
        key = name_key(clean_room_name(room))
        store = self.chat.store
        d = store.flush().addCallback(lambda _: store.search_history(
            text=text, room_key=key, sender=sender, limit=count))

        def show(found):
            lines = [f"{len(found)} line{'' if len(found) == 1 else 's'} from #{key}"]
            for line in found:
                stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(line.when))
                lines.append(f"  {stamp} {line.kind:<5} <{line.sender}> {line.text}")
            return _Report("\n".join(lines))

        return d.addCallback(show)

    def reset_password(self, name: str, new_password: str):
        """Set a new password for the registered name `name` (tell its
        owner, who can change it with /password). The answer arrives as
        "Deferred #n called back"."""
        if self._no_store():
            return None
        d = self.chat.accounts.reset_password(name_key(name), new_password)
        return d.addCallback(lambda _: _Report(f"Password of {name} reset."))

    def helpers(self) -> None:
        """List the helpers and the live objects of this shell."""
        print("Helpers:")
        for name in self.LISTED:
            helper = getattr(self, name)
            summary = " ".join((helper.__doc__ or "").split())
            print(f"  {name}{_signature(helper)}")
            print(f"      {summary}")
        print("Live objects: chat (the Chat; also called factory), users (name key -> User), "
              "rooms (name key -> Room), reactor.")
        print("Everything runs on the reactor thread: a blocking call freezes the chat.")

    def help(self, thing=None) -> None:
        """help() lists the helpers; help(obj) prints obj's documentation
        (without the pager, which would hang this shell)."""
        if thing is None:
            self.helpers()
        elif isinstance(thing, str):
            print("help(NAME) is not available here: pass the object itself, "
                  "for example help(kick) or help(chat).")
        else:
            print(pydoc.render_doc(thing, renderer=pydoc.plaintext))  # type: ignore[attr-defined]


def make_namespace(chat, reactor) -> dict:
    """
    Return a fresh shell namespace: the live objects (C{chat}, also
    called C{factory} as before the core had its own name, C{users},
    C{rooms}, C{reactor}) and the helpers of a new L{AdminHelpers}.  Python's C{help()} (whose pager hangs a manhole) is
    replaced by one that prints.
    """
    helpers = AdminHelpers(chat, reactor)
    namespace: dict = {name: getattr(helpers, name) for name in AdminHelpers.LISTED}
    namespace.update(
        __name__="__admin__",
        chat=chat,
        factory=chat,
        users=chat.users,
        rooms=chat.rooms,
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
