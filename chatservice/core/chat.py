"""
The chat's shared state and its rules: who is online, which rooms exist, who
is in them, and what each request does to them.

Front ends (the line protocol in L{chatservice.frontends.line}) parse what a
person types and call the methods of L{Chat}; everything a user can change
goes through this one place.  A refusal is a L{chatservice.core.errors}
exception, and what happens is told as L{chatservice.core.events}: the
wording is the front ends'.
"""

from typing import Any, Dict, Iterable, List, Mapping, NamedTuple, Optional, Set, Tuple

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from . import counters, errors, events
from .connections import Connections
from .private import PrivateMessages
from .delivery import Outbox
from .index import RoomIndex, SortedKeys
from .limits import REPLAY_LINES, Limits
from .moderation import Moderation
from .presence import BusyRoomNotices
from .ratelimit import charge_busy_room, charge_rename
from .registry import RoomRecord, RoomRegistry
from .room import Room
from .text import (
    check_name,
    check_room_name,
    clean_room_name,
    name_key,
    normalize,
    sanitize,
)
from .user import User
from .whowas import NameHistory

#: Name of the room every user is placed in at login.
DEFAULT_ROOM = "lobby"
#: Name the server goes by in greetings.
DEFAULT_SERVER_NAME = "chatservice"


class _StoredTopic(NamedTuple):
    topic: str
    set_by: str
    set_at: float


class Chat(Connections, PrivateMessages):
    """
    Holds users and rooms and applies the rules of the chat, for every
    front end alike.

    @ivar users: logged-in users by name key.
    @ivar user_index: the same keys in order, for listings.
    @ivar rooms: existing rooms by name key.
    @ivar room_index: the same rooms by name and by size, for listings.
    @ivar clients: every connected front end (L{IChatClient}), logged in or not.
    @ivar clock: the time source (the reactor, or a L{task.Clock} in tests).
    @ivar store: the store (L{chatservice.persistence.store.ChatStore}), or
        L{None} when nothing is kept across restarts.
    @ivar accounts: the registered names (L{chatservice.persistence.accounts.Accounts}),
        or L{None} without a store.
    @ivar recent: each room's last lines (L{chatservice.persistence.recent.RecentHistory}),
        or L{None} without a store.
    @ivar registry: the registered rooms (L{chatservice.core.registry.RoomRegistry}).
    """

    log = Logger()

    def __init__(
        self,
        clock: IReactorTime,
        server_name: str = DEFAULT_SERVER_NAME,
        default_room: str = DEFAULT_ROOM,
        motd: str = "",
        limits: Optional[Limits] = None,
        store=None,
        stored_topics: Optional[Mapping[str, Any]] = None,
        replay_lines: int = REPLAY_LINES,
        accounts=None,
        recent=None,
        stored_rooms: Iterable[RoomRecord] = (),
    ) -> None:
        self.clock = clock
        self.server_name = server_name
        self.motd = motd
        self.limits = limits if limits is not None else Limits()
        self.users: Dict[str, User] = {}
        self.user_index = SortedKeys()
        self.rooms: Dict[str, Room] = {}
        self.room_index = RoomIndex()
        self.started_at = clock.seconds()
        self.start_connections()
        #: lines said, by L{counters.LINE_KINDS} kind
        self.lines_said: Dict[str, int] = dict.fromkeys(counters.LINE_KINDS, 0)
        self.logins_total = 0
        self.outbox = Outbox()
        self.notices = BusyRoomNotices(clock, self.limits, self.rooms)
        #: the names people quit or renamed from, latest last (IRC's WHOWAS)
        self.departures = NameHistory()
        # Persistence (None: guests only, nothing kept across restarts).
        self.store = store
        self.accounts = accounts
        self.recent = recent
        self.replay_lines = replay_lines
        # room key -> (topic, set_by, set_at) as the store keeps it
        self._stored_topics: Dict[str, Any] = dict(stored_topics or {})
        self._reading_history: Set[User] = set()  # users whose /history reads the database
        self.moderation = Moderation(self)
        self.default_room = self._create_room(default_room, persistent=True)
        self.registry = RoomRegistry(self, store)
        self.registry.load(stored_rooms)

    def start(self) -> None:
        """
        Start what needs the store running (called from C{startService}):
        read the default room's last lines, since everyone lands there, now
        rather than at the first login.
        """
        if self.recent is not None and self.recent.size:
            self.recent.lines(self.default_room.key, self.recent.size).addErrback(
                lambda failure: self.log.failure("reading the history of {room}", failure,
                                                 room=self.default_room.display))

    # -- users --------------------------------------------------------------

    def validate_name(self, raw: str) -> str:
        """
        Return C{raw} as a valid user name (sanitised and normalised), or
        raise L{errors.InvalidName}.
        """
        name = normalize(sanitize(raw))
        problem = check_name(name, self.limits.max_name_length)
        if problem:
            raise errors.InvalidName(problem)
        return name

    def login(self, client, raw_name: str, authenticated: bool = False,
              enter_default_room: bool = True) -> User:
        """
        Log C{client} in as C{raw_name} and place the user in the default
        room (unless C{enter_default_room} is false: IRC clients choose
        their channels).  Raise L{errors.InvalidName}, L{errors.NameTaken},
        or L{errors.NeedsPassword} for a registered name unless the caller
        has checked its password (C{authenticated}).
        """
        name = self.validate_name(raw_name)
        key = name_key(name)
        if key in self.users:
            raise errors.NameTaken(f"The name {name!r} is taken.")
        if not authenticated and self.is_registered(name):
            raise errors.NeedsPassword(f"The name {name} is registered.")
        user = User(name, client, self.clock.seconds())
        user.registered = authenticated
        self.users[key] = user
        self.user_index.add(key)
        if enter_default_room:
            try:
                self.join(user, self.default_room.name)
            except BaseException:
                self.logout(user, "login failed")
                raise
        self.logins_total += 1
        self.log.info("login {name} from {peer}", name=name, peer=client.peer)
        return user

    def logout(self, user: User, reason: str = "") -> None:
        """
        Remove C{user} from every room and from the user list, telling the
        people who shared a room with them.  Safe to call twice.
        """
        if self.users.get(user.key) is not user:
            return
        # One notice per neighbour in ordinary rooms; busy rooms get a
        # batched notice instead (and are not walked member by member).
        neighbours: Set[User] = set()
        for room in list(user.rooms.values()):
            if not self.shutting_down and not self.notices.arrived_or_left(room, user.name, joined=False):
                neighbours.update(room.members.values())
            self.remove_member(room, user)
        neighbours.discard(user)
        user.current = None
        del self.users[user.key]
        self.user_index.discard(user.key)
        if not self.shutting_down:  # at shutdown, N quits to N users is N squared
            self.departures.record(user.name, user.client, self.clock.seconds(), "quit")
            event = events.Quit(user.name, sanitize(reason), self.clock.seconds())
            for other in neighbours:
                other.client.deliver(event)
        self.log.info("quit {name} ({reason})", name=user.name,
                      reason=reason or "no message")

    def is_registered(self, raw_name: str) -> bool:
        """Whether C{raw_name} is a registered name (no disk access)."""
        return self.accounts is not None and self.accounts.is_registered(
            name_key(sanitize(raw_name)))

    def find_user(self, raw_name: str) -> User:
        """Return the online user called C{raw_name}, or raise L{errors.NoSuchUser}."""
        user = self.users.get(name_key(sanitize(raw_name)))
        if user is None:
            raise errors.NoSuchUser(f"No one called {sanitize(raw_name)!r} is online.")
        return user

    def neighbours(self, user: User) -> Set[User]:
        """Return everyone else who shares at least one room with C{user}."""
        found: Set[User] = set()
        for room in user.rooms.values():
            found.update(room.members.values())
        found.discard(user)
        return found

    def rename(self, user: User, raw_name: str) -> str:
        """
        Give C{user} a new name and tell everyone who shares a room with
        them; return the old name.  Busy rooms hear of it in their batched
        notice, like joins and leaves; a user renames at most
        C{nick_burst} times at once, then once every C{nick_interval}
        seconds (else L{errors.TooManyRenames}).
        """
        name = self.validate_name(raw_name)
        key = name_key(name)
        if name == user.name:
            raise errors.InvalidName(f"You are already called {name}.")
        if key != user.key and key in self.users:
            raise errors.NameTaken(f"The name {name!r} is taken.")
        if key != user.key and self.is_registered(name):
            raise errors.NameTaken(f"The name {name} is registered to someone else.")
        charge_rename(user, self.limits, self.clock)
        old_name, old_key = user.name, user.key
        self.departures.record(old_name, user.client, self.clock.seconds(), "renamed")
        del self.users[old_key]
        self.user_index.discard(old_key)
        user.name, user.key = name, key
        self.users[key] = user
        self.user_index.add(key)
        # Telling each of N members of a busy room about renames one by one
        # is as costly as joins: they get the room's batched notice.  The
        # members of ordinary rooms are told at once, once each, except
        # those who also share a busy room with the user and hear it there.
        # A busy room's member list is not rebuilt in order of arrival
        # either (a millisecond per 10,000 members): the user moves to its end.
        busy: List[Room] = []
        neighbours: Set[User] = set()
        for room in user.rooms.values():
            pending = self.notices.batch(room)
            room.rekey(user, old_key, keep_order=pending is None)
            room.moderation.renamed(old_key, key)
            if pending is None:
                neighbours.update(room.members.values())
            else:
                pending.renamed.append((old_name, name))
                busy.append(room)
        neighbours.discard(user)
        event = events.Renamed(old_name, name, self.clock.seconds())
        for other in neighbours:
            if not any(other in room for room in busy):
                other.client.deliver(event)
        self.log.info("rename {old} to {new}", old=old_name, new=name)
        return old_name

    # -- rooms ----------------------------------------------------------------

    def _create_room(self, name: str, persistent: bool = False) -> Room:
        room = Room(name, persistent=persistent, created_at=self.clock.seconds(),
                    outbox=self.outbox, index=self.room_index)
        stored = self._stored_topics.get(room.key)
        if stored is not None:
            room.topic, room.topic_set_by = stored.topic, stored.set_by
            room.topic_set_at = getattr(stored, "set_at", 0.0)
        self.rooms[room.key] = room
        self.room_index.add(room)
        return room

    def find_room(self, raw_name: str) -> Room:
        """Return the room called C{raw_name}, or raise L{errors.NoSuchRoom}."""
        name = clean_room_name(raw_name)
        room = self.rooms.get(name_key(name))
        if room is None:
            raise errors.NoSuchRoom(f"There is no room called #{name}.")
        return room

    def join(self, user: User, raw_room: str, key: Optional[str] = None) -> Tuple[Room, bool]:
        """
        Put C{user} in the room called C{raw_room}, creating it if needed
        (they become its operator), and make it their current room.  Return
        the room and whether the user newly entered it (false if they were
        in it already).  An existing room's bans, invite-only mode, C{key}
        and member limit may refuse them (see L{Moderation.check_join}).
        """
        name = clean_room_name(raw_room)
        problem = check_room_name(name, self.limits.max_room_name_length)
        if problem:
            raise errors.InvalidRoomName(problem)
        room = self.rooms.get(name_key(name))
        if room is not None and user in room:
            user.focus(room)
            return room, False
        limit = self.limits.max_rooms_per_user
        if limit and len(user.rooms) >= limit:
            raise errors.TooManyRooms(
                f"You are already in {len(user.rooms)} rooms, the most allowed.")
        if room is None:
            most = self.limits.max_rooms
            if most and len(self.rooms) >= most:
                raise errors.ServerRoomsFull(
                    f"#{name} cannot be created: the server already has "
                    f"{len(self.rooms):,} rooms, the most it allows.")
            room = self._create_room(name)
            self.moderation.founded(room, user)
            self.log.info("room {room} created by {name}", room=room.display,
                          name=user.name)
        else:
            self.registry.check_join(room, user, key)
        user.rooms[room.key] = room
        room.add(user)
        user.focus(room)
        self.log.info("join {name} {room}", name=user.name, room=room.display)
        if not self.notices.arrived_or_left(room, user.name, joined=True):
            room.broadcast(events.Joined(room.name, user.name, self.clock.seconds()),
                           exclude=user)
        self.registry.arrived(room, user)
        return room, True

    def leave(self, user: User, raw_room: Optional[str] = None,
              reason: str = "") -> Room:
        """
        Take C{user} out of the room called C{raw_room} (default: their
        current room), telling its members.  If it was the current room,
        the most recently joined remaining room becomes current.
        """
        if raw_room is None:
            room = user.current
            if room is None:
                raise errors.NotInRoom("You are not in any room.")
        else:
            room = self.find_room(raw_room)
            if user not in room:
                raise errors.NotInRoom(f"You are not in {room.display}.")
        if self.notices.arrived_or_left(room, user.name, joined=False):
            self.remove_member(room, user)
        else:
            self.remove_member(room, user)
            room.broadcast(events.Left(room.name, user.name, sanitize(reason),
                                       self.clock.seconds()))
        self.log.info("leave {name} {room}", name=user.name, room=room.display)
        return room

    def remove_member(self, room: Room, user: User) -> None:
        """
        Take C{user} out of C{room} without telling anyone (the caller
        does), dropping their status there; the room closes if it empties.
        """
        was_current = user.current is room
        room.remove(user)
        room.moderation.forget(user.key)
        del user.rooms[room.key]
        if was_current:
            remaining = list(user.rooms.values())
            user.current = None
            user.focus(remaining[-1] if remaining else None)
        if not room.members and not room.persistent:
            del self.rooms[room.key]
            self.room_index.discard(room)
            if self.recent is not None:
                self.recent.forget(room.key)
            self.log.info("room {room} closed: empty", room=room.display)

    def set_topic(self, user: User, raw_topic: str, room: Optional[Room] = None) -> Room:
        """
        Set the topic of C{room} (default: C{user}'s current room), which
        C{user} must be in, and tell its members (only operators may in a +t
        room, and nobody who may not speak there).
        """
        room = self.current_room(user) if room is None else self.member_room(user, room)
        self.moderation.check_topic(room, user)
        topic = sanitize(raw_topic)
        if len(topic) > self.limits.max_topic_length:
            raise errors.InvalidText(
                f"That topic is {len(topic)} characters long; the limit is "
                f"{self.limits.max_topic_length}.")
        charge_busy_room(room, self.limits, self.clock)
        room.topic = topic
        room.topic_set_by = user.name
        room.topic_set_at = self.clock.seconds()
        room.broadcast(events.TopicChanged(room.name, user.name, topic, self.clock.seconds()))
        if self.store is not None:
            now = self.clock.seconds()
            self.store.set_topic(room.key, topic, user.name, now)
            self.recent.record(room.key, now, "topic", user.name, topic)
            self._stored_topics[room.key] = _StoredTopic(topic, user.name, now)
        return room

    def current_room(self, user: User) -> Room:
        """Return C{user}'s current room, or raise L{errors.NotInRoom}."""
        room = user.current
        if room is None:
            raise errors.NotInRoom("You are not in any room.")
        return room

    def member_room(self, user: User, room: Room) -> Room:
        """Return C{room} if C{user} is in it, or raise L{errors.NotInRoom}."""
        if user not in room:
            raise errors.NotInRoom(f"You are not in {room.display}.")
        return room

    def close_room(self, raw_room: str, reason: str = "") -> Room:
        """
        Remove everyone from the room called C{raw_room} and delete it (the
        default room and registered rooms are emptied but stay).
        """
        room = self.find_room(raw_room)
        room.broadcast(events.RoomClosed(room.name, sanitize(reason)))
        for member in list(room.members.values()):
            self.remove_member(room, member)
        if not room.persistent:
            self.rooms.pop(room.key, None)
            self.room_index.discard(room)
            if self.recent is not None:
                self.recent.forget(room.key)
        self.log.info("room {room} closed by the operator", room=room.display)
        return room

    # -- talking --------------------------------------------------------------

    def say(self, user: User, raw_text: str, action: bool = False, room: Optional[Room] = None,
            when: Optional[float] = None, notice: bool = False, tags: tuple = ()) -> Room:
        """
        Relay C{raw_text} from C{user} to the other members of C{room} (default: their
        current room; IRC names the channel of every message), as an action when
        C{action} is true; a moderated room refuses members without a voice, and banned
        members.  C{when} (default: now), C{notice} and client-only C{tags} go into the event.
        """
        if room is None:
            room = user.current
            if room is None:
                raise errors.NotInRoom("You are not in any room.")
        else:
            self.member_room(user, room)
        self.moderation.check_speak(room, user)
        text = sanitize(raw_text)
        if not text:
            raise errors.InvalidText("There is nothing to say.")
        charge_busy_room(room, self.limits, self.clock)
        now = self.clock.seconds() if when is None else when
        event = events.Acted(room.name, user.name, text, now) if action else events.Said(
            room.name, user.name, text, now, notice, tags)
        self.lines_said[counters.ACT if action else counters.SAY] += 1
        room.broadcast(event, exclude=user, own_line=True)
        recent = self.recent
        if recent is not None:
            recent.record(room.key, now,
                          "act" if action else "say", user.name, text)
        return room

    def history(self, room: Room, count: int, user: Optional[User] = None) -> defer.Deferred:
        """
        Fire with the last C{count} stored lines of C{room} (messages,
        actions, topic changes), oldest first; none without a store.

        For a C{user}'s C{/history} that must read the database (more lines
        than are kept in memory), raise L{errors.Busy} if that user's
        previous one has not been answered yet, or if
        C{limits.max_history_reads} are already waiting: a crowd asking for
        500 lines each is answered a few at a time instead of queueing
        without end.
        """
        if self.recent is None or count <= 0:
            return defer.succeed([])
        if user is None or self.recent.in_memory(count):
            return self.recent.lines(room.key, count)
        recent = self.recent
        return self.bounded_read(user, lambda: recent.lines(room.key, count))

    def bounded_read(self, user: User, read) -> defer.Deferred:
        """
        Return C{read()}, a L{defer.Deferred} reading the database for
        C{user}, unless that user's previous read has not been answered
        yet or C{limits.max_history_reads} are already waiting: then raise
        L{errors.Busy}.
        """
        reading = self._reading_history
        if user in reading:
            raise errors.Busy("Your previous /history is still on its way; wait for it, "
                              "then try /history again.")
        limit = self.limits.max_history_reads
        if limit and len(reading) >= limit:
            raise errors.Busy("The server is busy; try /history again in a moment.")
        reading.add(user)

        def done(result):
            reading.discard(user)
            return result

        try:
            d = read()
        except BaseException:
            reading.discard(user)
            raise
        return d.addBoth(done)

    def announce(self, raw_text: str, raw_room: Optional[str] = None) -> int:
        """
        Show an announcement from the server to everyone online, or to the
        members of one room; return how many users it reached.
        """
        text = sanitize(raw_text)
        if raw_room is not None:
            room = self.find_room(raw_room)
            event = events.Announcement(text, room.name)
            targets: Iterable[User] = list(room.members.values())
        else:
            event = events.Announcement(text)
            targets = list(self.users.values())
        count = 0
        for user in targets:
            user.client.deliver(event)
            count += 1
        self.log.info("announcement to {where}: {text}",
                      where=raw_room or "everyone", text=text)
        return count

    def kick(self, raw_name: str, reason: str = "") -> User:
        """Disconnect the user C{raw_name}, who is first shown C{reason}."""
        user = self.find_user(raw_name)
        reason = sanitize(reason) or "no reason given"
        self.log.info("kick {name}: {reason}", name=user.name, reason=reason)
        self.count_disconnect(counters.KICKED)
        self.logout(user, f"kicked: {reason}")
        user.client.disconnect(f"You have been kicked: {reason}")
        return user

    # -- statistics -----------------------------------------------------------

    @property
    def lines_relayed(self) -> int:
        """Lines said, acted and sent privately so far (all of L{lines_said})."""
        return sum(self.lines_said.values())

    def stats(self) -> Dict[str, float]:
        """
        Return live counters: uptime, connections, users, rooms, traffic
        (C{lines_KIND} for each of L{counters.LINE_KINDS}, C{deliveries}:
        writes to room members, one per member per batch), refusals
        (C{refused_REASON}) and the connections the server closed
        (C{disconnects_REASON}).  The C{stats:} log line, the admin shell's
        C{stats()} and the metrics all read these.
        """
        found: Dict[str, float] = {
            "uptime": self.clock.seconds() - self.started_at,
            "connections": len(self.clients),
            "connections_total": self.connections_total,
            "connections_refused": self.connections_refused,
            "users": len(self.users),
            "logins_total": self.logins_total,
            "rooms": len(self.rooms),
            "lines_relayed": self.lines_relayed,
            "bytes_relayed": self.outbox.bytes_relayed,
            "deliveries": self.outbox.deliveries,
        }
        for kind, count in self.lines_said.items():
            found[f"lines_{kind}"] = count
        for reason, count in self.refused.items():
            found[f"refused_{reason}"] = count
        for reason, count in self.disconnects.items():
            found[f"disconnects_{reason}"] = count
        return found
