"""
How the line protocol shows things: every chat event as one readable line
(or two, for a batched presence notice), ending in CRLF.

Server notices and errors are marked so that nobody can pass text off as
them: a user's own text always starts with C{<name>}, C{* name} or a room
tag, a notice with C{--} and an error with C{!!}.
"""

import time
from typing import List, Sequence, Tuple

from zope.interface import implementer

from ...core import events
from ...core.interfaces import IRenderer

#: What every line the server sends ends with: CRLF suits telnet and
#: terminals alike.
EOL = b"\r\n"
#: The marks of a server notice and of an error.
INFO = "-- "
ERROR = "!! "


def line(text: str) -> bytes:
    """C{text} as one line to send."""
    return text.encode("utf-8") + EOL


def some(names: Sequence[str], shown: int = 5) -> str:
    """C{alice, bob and 3 others}."""
    if len(names) <= shown:
        return ", ".join(names[:-1]) + " and " + names[-1] if len(names) > 1 else names[0]
    return f"{', '.join(names[:shown])} and {len(names) - shown} others"


#: Renames a busy room's batched notice spells out before "and N others".
RENAMES_SHOWN = 3


def renames(renamed: Sequence[Tuple[str, str]], room: str) -> str:
    """C{alice is now known as alicia, bob is now known as bobby and 3 others renamed in #lobby}."""
    said = [f"{old} is now known as {new}" for old, new in renamed[:RENAMES_SHOWN]]
    rest = len(renamed) - len(said)
    if rest:
        return (f"{', '.join(said)} and {rest} other{'' if rest == 1 else 's'} "
                f"renamed in #{room}")
    return some(said) + f" in #{room}"


def timestamp(when: float, now: float) -> str:
    """C{14:05} for a time today (server time), else C{2026-11-20 14:05}."""
    return day_stamp(when, time.localtime(now)[:3])


def day_stamp(when: float, today: tuple) -> str:
    """L{timestamp}, given today's C{(year, month, day)} in local time."""
    moment = time.localtime(when)
    if moment[:3] == today:
        return time.strftime("%H:%M", moment)
    return time.strftime("%Y-%m-%d %H:%M", moment)


def history_text(stored) -> str:
    """A stored room line (a L{HistoryLine}) as it is shown in a replay."""
    if stored.kind == "act":
        return f"* {stored.sender} {stored.text}"
    if stored.kind == "topic":
        return f"{INFO}{stored.sender} set the topic: {stored.text}" if stored.text else \
            f"{INFO}{stored.sender} cleared the topic"
    return f"<{stored.sender}> {stored.text}"


#: How each mode change reads: C{{who}} made it, C{{arg}} is its argument.
MODE_WORDS = {
    "+o": "made {arg} an operator",
    "-o": "took operator status from {arg}",
    "+v": "gave {arg} a voice",
    "-v": "took the voice of {arg}",
    "+b": "banned {arg}",
    "-b": "lifted the ban on {arg}",
    "+i": "made the room invite-only",
    "-i": "made the room open to all",
    "+m": "made the room moderated",
    "-m": "made the room unmoderated",
    "+t": "let only operators set the topic",
    "-t": "let every member set the topic",
    "+k": "set the key {arg}",
    "-k": "removed the key",
    "+l": "limited the room to {arg} members",
    "-l": "removed the member limit",
    "+s": "made the room secret",
    "-s": "made the room public",
}


def mode_text(event) -> str:
    """C{alice made bob an operator and made the room moderated in #games}."""
    who = event.user if event.user is not None else "The server operator"
    said = [MODE_WORDS.get(mode, mode + " {arg}").format(arg=arg).rstrip()
            for mode, arg in event.changes]
    done = ", ".join(said[:-1]) + " and " + said[-1] if len(said) > 1 else said[0]
    return f"{who} {done} in #{event.room}"


def kick_text(event) -> str:
    """C{bob was kicked out of #games by alice (spam)}."""
    who = event.user if event.user is not None else "the server operator"
    reason = f" ({event.reason})" if event.reason else ""
    return f"{event.target} was kicked out of #{event.room} by {who}{reason}"


def _room_tag(room: str, focused: bool) -> str:
    return "" if focused else f"[#{room}] "


@implementer(IRenderer)
class LineRenderer:
    """Room events as lines, tagged with the room when it is not the reader's current one."""

    distinguishes_focus = True
    echoes_own_lines = False

    @staticmethod
    def encode(event, focused: bool) -> bytes:
        """Return room event C{event} as a line for one room member."""
        kind = type(event)
        room = event.room
        if kind is events.Said:
            return line(f"{_room_tag(room, focused)}<{event.sender}> {event.text}")
        if kind is events.Acted:
            return line(f"{_room_tag(room, focused)}* {event.sender} {event.text}")
        if kind is events.Joined:
            return line(f"-> {event.user} joined #{room}")
        if kind is events.Left:
            reason = f" ({event.reason})" if event.reason else ""
            return line(f"<- {event.user} left #{room}{reason}")
        if kind is events.Presence:
            text = ""
            if event.joined:
                text += f"-> {some(event.joined)} joined #{room}\r\n"
            if event.renamed:
                text += f"{INFO}{renames(event.renamed, room)}\r\n"
            if event.left:
                text += f"<- {some(event.left)} left #{room}\r\n"
            return text.encode("utf-8")
        if kind is events.TopicChanged:
            who = event.user if event.user is not None else "The server"
            if event.topic:
                return line(f"{INFO}{who} set the topic of #{room}: {event.topic}")
            return line(f"{INFO}{who} cleared the topic of #{room}")
        if kind is events.RoomClosed:
            reason = f": {event.reason}" if event.reason else ""
            return line(f"{INFO}#{room} was closed by the server{reason}")
        if kind is events.Announcement:
            return line(f"{_room_tag(room, focused)}{INFO}Announcement: {event.text}")
        if kind is events.ModeChanged:
            return line(f"{INFO}{mode_text(event)}")
        if kind is events.Kicked:
            return line(f"<- {kick_text(event)}")
        if kind is events.Invited:  # delivered to the person invited alone
            return line(f"{INFO}{event.user} invites you to #{room}: type /join #{room} "
                        "to enter")
        raise TypeError(f"not a room event: {event!r}")

    @staticmethod
    def combine(payloads: List[bytes]) -> bytes:
        """Lines in a row are one write."""
        return b"".join(payloads)

    @staticmethod
    def personal(event) -> str:
        """The text of an event addressed to one user (without its end of line)."""
        kind = type(event)
        if kind is events.Private:
            if event.action:
                return f"[private] * {event.sender} {event.text}"
            return f"[private] <{event.sender}> {event.text}"
        if kind is events.Renamed:
            return f"{INFO}{event.old_name} is now known as {event.new_name}"
        if kind is events.Quit:
            reason = f" ({event.reason})" if event.reason else ""
            return f"<- {event.user} quit{reason}"
        if kind is events.Announcement and event.room is None:
            return f"{INFO}Announcement: {event.text}"
        raise TypeError(f"not a personal event: {event!r}")


#: The one renderer every line-protocol connection shares.
LINE_RENDERER = LineRenderer()
