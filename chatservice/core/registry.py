"""
Registered rooms: rooms a registered user owns, whose operators, bans,
modes and topic are kept in the store, so that they survive a restart and
the room becoming empty.

A room's registration is a L{Registration} (C{room.registration}, L{None}
for an ordinary room); the L{RoomRegistry} of a chat (C{chat.registry})
registers, transfers and drops rooms, checking who may, restores the
founder's and the kept operators' status when they come back, and hands
the store a L{RoomRecord} of the room each time what is kept changes.

Status is by account: the founder is a name key that was registered when
the room was, and the operators kept are the name keys of registered users
who were made operators (a guest made an operator is one only until they
leave, as in an ordinary room).  The founder always gets in (past bans,
invite-only, the key and the limit) and is made an operator on entering;
a kept operator gets past invite-only, the key and the limit, not a ban.
Who acts is a L{User}, or L{None} for the server's operator (the admin
shell), who may transfer or drop any registration.
"""

from typing import (TYPE_CHECKING, Iterable, List, NamedTuple, Optional, Sequence, Set,
                    Tuple)

from twisted.logger import Logger

from . import errors, events
from .moderation import FLAG_MODES, ModeChange
from .text import name_key

if TYPE_CHECKING:
    from .chat import Chat
    from .room import Room
    from .user import User

#: Most operators a registered room keeps by account (beyond them, a new
#: operator is one only until they leave).
MAX_KEPT_OPERATORS = 100


class RoomRecord(NamedTuple):
    """
    What the store keeps of a registered room (its topic is kept with every
    room's, in the store's topics).

    @ivar key: the room's name key.
    @ivar name: its name, without C{#}.
    @ivar founder_key: the founder's name key (an account).
    @ivar founder: the founder's name as shown.
    @ivar registered_at: when it was registered (a Unix time).
    @ivar flags: the on/off modes that are on (letters of C{imst}).
    @ivar password: the room's key (mode C{+k}), or C{""}.
    @ivar limit: its member limit (mode C{+l}), or 0.
    @ivar operators: the name keys of the operators kept, founder aside.
    @ivar bans: C{(ban key, mask)} for each ban, oldest first.
    """

    key: str
    name: str
    founder_key: str
    founder: str
    registered_at: float
    flags: str = ""
    password: str = ""
    limit: int = 0
    operators: Tuple[str, ...] = ()
    bans: Tuple[Tuple[str, str], ...] = ()


class Registration:
    """
    A room's registration.

    @ivar founder_key: the founder's name key.
    @ivar founder: the founder's name as shown.
    @ivar registered_at: when the room was registered.
    @ivar operators: the name keys of the operators kept (founder aside).
    """

    def __init__(self, founder_key: str, founder: str, registered_at: float,
                 operators: Iterable[str] = ()) -> None:
        self.founder_key = founder_key
        self.founder = founder
        self.registered_at = registered_at
        self.operators: Set[str] = set(operators)


class RoomRegistry:
    """
    The registered rooms of one L{Chat}: registering, transferring and
    dropping them, and keeping what they keep in the store.
    """

    log = Logger()

    def __init__(self, chat: "Chat", store=None) -> None:
        """
        @param chat: the chat whose rooms these are.
        @param store: where registered rooms are kept (provides C{save_room}
            and C{drop_room}, fire-and-forget), or L{None}: then no room can
            be registered.
        """
        self.chat = chat
        self.store = store

    # -- start-up ---------------------------------------------------------------

    def load(self, records: Iterable[RoomRecord]) -> List["Room"]:
        """Create the registered rooms the store kept, empty, with their state; return them."""
        rooms = []
        for record in records:
            if record.key == self.chat.default_room.key or record.key in self.chat.rooms:
                continue
            room = self.chat._create_room(record.name, persistent=True)
            state = room.moderation
            state.flags = set(record.flags) & set(FLAG_MODES)
            state.key = record.password
            state.limit = record.limit
            state.bans = dict(record.bans)
            room.registration = Registration(record.founder_key, record.founder,
                                             record.registered_at, record.operators)
            rooms.append(room)
        if rooms:
            self.log.info("rooms: {count} registered rooms loaded", count=len(rooms))
        return rooms

    # -- who ----------------------------------------------------------------------

    def account(self, user: "User") -> Optional[str]:
        """The account (name key) C{user} is logged in to, or L{None} for a guest."""
        if user.registered and self.chat.is_registered(user.name):
            return user.key
        return None

    def is_founder(self, room: "Room", user: "Optional[User]") -> bool:
        """Whether C{user} is the founder of registered C{room}."""
        registration = room.registration
        return (registration is not None and user is not None
                and self.account(user) == registration.founder_key)

    def founded_by(self, key: str) -> List["Room"]:
        """The rooms whose founder is the account C{key}."""
        return [room for room in self.chat.rooms.values()
                if room.registration is not None and room.registration.founder_key == key]

    def forget_account(self, key: str) -> None:
        """
        The account C{key} is gone: the rooms that kept it as an operator
        forget it (whoever registers the name next gets nothing of it),
        and the rooms it founded lose their registration.
        """
        for room in list(self.chat.rooms.values()):
            registration = room.registration
            if registration is None:
                continue
            if registration.founder_key == key:
                self.drop(room, None)
            elif key in registration.operators:
                registration.operators.discard(key)
                self.save(room)

    # -- joining ------------------------------------------------------------------

    def check_join(self, room: "Room", user: "User", key: Optional[str]) -> None:
        """
        Raise why C{user} may not enter C{room} (see
        L{Moderation.check_join}); its founder always may, and its kept
        operators may unless banned.
        """
        registration = room.registration
        account = self.account(user) if registration is not None else None
        if registration is None or account is None:
            self.chat.moderation.check_join(room, user, key)
            return
        state = room.moderation
        if account == registration.founder_key:
            state.invited.discard(user.key)
            return
        if account in registration.operators and not state.is_banned(user.key):
            state.invited.discard(user.key)
            return
        self.chat.moderation.check_join(room, user, key)

    def arrived(self, room: "Room", user: "User") -> None:
        """
        C{user} entered registered C{room}: give back the founder's or a
        kept operator's status, telling the others.
        """
        registration = room.registration
        if registration is None or user.key in room.moderation.operators:
            return
        account = self.account(user)
        if account is None or (account != registration.founder_key
                               and account not in registration.operators):
            return
        room.moderation.operators.add(user.key)
        # Not to them: over IRC a MODE would come before their JOIN (NAMES shows their @).
        room.broadcast(events.ModeChanged(room.name, None, (("+o", user.name),),
                                          self.chat.clock.seconds()), exclude=user)
        self.log.info("rooms: {name} is an operator of {room} again ({why})",
                      name=user.name, room=room.display,
                      why="founder" if account == registration.founder_key
                      else "kept operator")

    # -- changes ------------------------------------------------------------------

    def modes_changed(self, room: "Room", applied: Sequence[ModeChange]) -> None:
        """Keep what C{applied} changed in registered C{room}: operators by account, bans, modes."""
        registration = room.registration
        if registration is None:
            return
        for change in applied:
            if change.letter != "o":
                continue
            key = name_key(change.argument)
            if not change.adding:
                registration.operators.discard(key)
                continue
            user = self.chat.users.get(key)
            if (user is not None and self.account(user) is not None
                    and key != registration.founder_key
                    and len(registration.operators) < MAX_KEPT_OPERATORS):
                registration.operators.add(key)
        self.save(room)

    def save(self, room: "Room") -> None:
        """Hand the store what registered C{room} keeps now (a fire-and-forget write)."""
        if self.store is not None and room.registration is not None:
            self.store.save_room(self.record(room))

    @staticmethod
    def record(room: "Room") -> RoomRecord:
        """A L{RoomRecord} of registered C{room} as it is now."""
        registration = room.registration
        assert registration is not None
        state = room.moderation
        return RoomRecord(room.key, room.name, registration.founder_key, registration.founder,
                          registration.registered_at, "".join(sorted(state.flags)),
                          state.key, state.limit, tuple(sorted(registration.operators)),
                          tuple(state.bans.items()))

    # -- registering, transferring, dropping ------------------------------------

    def register(self, room: "Room", user: "User") -> Registration:
        """
        Register C{room} to C{user}, who must be logged in to a registered
        name and be one of its operators; its operators who are registered
        users are kept with it.  Raise L{errors.RegistrationRefused} or
        L{errors.NotOperator} saying why not.
        """
        if self.store is None:
            raise errors.RegistrationRefused(
                "Rooms cannot be registered here: this server keeps nothing on disk.")
        self.chat.member_room(user, room)
        account = self.account(user)
        if account is None:
            raise errors.RegistrationRefused(
                f"Only registered users can register a room: type /register PASSWORD "
                f"to register your name first, then /room register in {room.display}.")
        if room is self.chat.default_room:
            raise errors.RegistrationRefused(
                f"{room.display} is the server's default room and cannot be registered: "
                "/join another room to register it.")
        registration = room.registration
        if registration is not None:
            raise errors.RegistrationRefused(
                f"{room.display} is already registered to {registration.founder}: "
                "type /room info to see its registration.")
        self.chat.moderation.require_operator(room, user)
        most = self.chat.limits.max_registered_rooms
        owned = self.founded_by(account)
        if most and len(owned) >= most:
            raise errors.RegistrationRefused(
                f"You have already registered {len(owned)} rooms, the most one user may "
                f"({', '.join(r.display for r in owned)}): /room drop one of them first.")
        kept = {key for key in room.moderation.operators
                if key != account and key in self.chat.users
                and self.account(self.chat.users[key]) is not None}
        registration = Registration(account, user.name, self.chat.clock.seconds(),
                                    sorted(kept)[:MAX_KEPT_OPERATORS])
        room.registration = registration
        room.persistent = True
        self.save(room)
        self.log.info("rooms: {name} registered {room}", name=user.name, room=room.display)
        return registration

    def transfer(self, room: "Room", by: "Optional[User]", raw_name: str) -> str:
        """
        Make the registered user C{raw_name} the founder of C{room} on
        behalf of C{by} (its founder, or L{None}: the server's operator);
        return the new founder's name.
        """
        registration = self._founder_only(room, by, "transfer")
        name = self.chat.validate_name(raw_name)
        key = name_key(name)
        online = self.chat.users.get(key)
        if online is not None:
            name = online.name
        if not self.chat.is_registered(name):
            raise errors.RegistrationRefused(
                f"{name} is not a registered name: a room can only be transferred to a "
                f"registered user (they type /register PASSWORD first).")
        if key == registration.founder_key:
            raise errors.RegistrationRefused(f"{name} is already the founder of {room.display}.")
        most = self.chat.limits.max_registered_rooms
        if most and len(self.founded_by(key)) >= most:
            raise errors.RegistrationRefused(
                f"{name} already founds {most} rooms, the most one user may: they "
                "must /room drop one first.")
        old = registration.founder
        registration.operators.add(registration.founder_key)
        registration.operators.discard(key)
        registration.founder_key, registration.founder = key, name
        self.save(room)
        self.log.info("rooms: {by} transferred {room} from {old} to {new}",
                      by=by.name if by is not None else "the server operator",
                      room=room.display, old=old, new=name)
        return name

    def drop(self, room: "Room", by: "Optional[User]") -> None:
        """
        Drop C{room}'s registration on behalf of C{by} (its founder, or
        L{None}: the server's operator): it is an ordinary room again, and
        closes when empty.  Its operators present stay operators.
        """
        registration = self._founder_only(room, by, "drop")
        room.registration = None
        room.persistent = room is self.chat.default_room
        if self.store is not None:
            self.store.drop_room(room.key)
        self.log.info("rooms: {by} dropped the registration of {room} (founder {founder})",
                      by=by.name if by is not None else "the server operator",
                      room=room.display, founder=registration.founder)
        if not room.members and not room.persistent:
            self.chat.close_room(room.name, "its registration was dropped")

    def _founder_only(self, room: "Room", by: "Optional[User]", what: str) -> Registration:
        registration = room.registration
        if registration is None:
            raise errors.RegistrationRefused(
                f"{room.display} is not registered, so there is nothing to {what}: its "
                "operators can type /room register to register it.")
        if by is not None and not self.is_founder(room, by):
            raise errors.RegistrationRefused(
                f"Only the founder of {room.display}, {registration.founder}, can {what} "
                "its registration: ask them, or the server's operator.")
        return registration
