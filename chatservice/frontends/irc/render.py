"""
How IRC clients see the chat: every event as IRC lines.

One L{IRCRenderer} serves every IRC client with the same capabilities that
change the bytes of a room event (today only C{server-time}): a broadcast
encodes each event once per renderer, not once per member.
"""

import time
from typing import Callable, Dict, List, Optional, Tuple

from zope.interface import implementer

from ...core import events
from ...core.interfaces import IRenderer
from .wire import escape_tag_value, format_time, mask, message, message_id, text_lines

#: C{lookup(name)}: the account (registered name, or L{None}) and the real
#: name of the user called C{name}.
Lookup = Callable[[str], Tuple[Optional[str], str]]


def _nobody(name: str) -> Tuple[Optional[str], str]:
    return None, name


#: C{usernames(name)}: the USER name of the IRC user called C{name}, or C{""}.
Usernames = Callable[[str], str]


def _no_username(name: str) -> str:
    return ""

#: What a CTCP ACTION (C{/me} in IRC clients) is wrapped in.
CTCP = "\x01"
#: C{ACTION_FORMAT % text} is C{text} as a CTCP ACTION.
ACTION_FORMAT = CTCP + "ACTION %s" + CTCP


def mode_params(changes) -> List[str]:
    """C{(("+o", "bob"), ("+m", ""), ("-v", "carol"))} as C{["+om-v", "bob", "carol"]}."""
    letters, sign = "", ""
    arguments: List[str] = []
    for mode, argument in changes:
        if mode[0] != sign:
            sign = mode[0]
            letters += sign
        letters += mode[1:]
        if argument:
            arguments.append(argument)
    return [letters, *arguments]


@implementer(IRenderer)
class IRCRenderer:
    """
    Chat events as IRC lines from C{server_name}, tagged with their time
    when C{server_time} is true, with a C{msgid} on messages under
    C{message_tags}, the sender's C{account} under C{account_tag}, and
    JOINs carrying the account and real name under C{extended_join}.

    @ivar host: the host part of every user's C{nick!user@host}.
    @ivar lookup: see L{Lookup}: who is logged in to an account.
    @ivar usernames: see L{Usernames}: the user part of masks.
    """

    distinguishes_focus = False
    echoes_own_lines = False

    def __init__(self, server_name: str, server_time: bool = False,
                 message_tags: bool = False, account_tag: bool = False,
                 extended_join: bool = False, lookup: Lookup = _nobody,
                 usernames: Usernames = _no_username) -> None:
        self.server_name = server_name
        self.host = server_name
        self.server_time = server_time
        self.message_tags = message_tags
        self.account_tag = account_tag
        self.extended_join = extended_join
        self.lookup = lookup
        self.usernames = usernames

    def source(self, nick: str, now_called: Optional[str] = None) -> str:
        """
        The C{nick!user@host} of chat user C{nick} (who is now called
        C{now_called}, after a rename), with their USER name when they are
        an IRC user online.
        """
        return mask(nick, self.host, self.usernames(now_called or nick))

    def tags(self, when: float, extra: Optional[Dict[str, str]] = None,
             sender: Optional[str] = None, msgid: bool = False,
             client: tuple = ()) -> Optional[Dict[str, str]]:
        """
        The tags of a line that happened at C{when} (none without
        server-time), from C{sender} (its account under account-tag), with
        a C{msgid} when C{msgid} is true and the C{client}-only tags, under
        message-tags.
        """
        tags: Dict[str, str] = dict(extra or {})
        if client and self.message_tags:
            tags.update((key, escape_tag_value(value)) for key, value in client)
        if self.server_time and when:
            tags["time"] = format_time(when)
        if msgid and self.message_tags and sender is not None:
            tags["msgid"] = message_id(when, sender)
        if self.account_tag and sender is not None:
            account = self.lookup(sender)[0]
            if account is not None:
                tags["account"] = account
        return tags or None

    def join(self, nick: str, channel: str, when: float = 0.0) -> bytes:
        """C{nick} joined C{channel} (with account and real name under extended-join)."""
        tags = self.tags(when, sender=nick)
        if self.extended_join:
            account, realname = self.lookup(nick)
            return message(self.source(nick), "JOIN", channel, account or "*", realname,
                           tags=tags)
        return message(self.source(nick), "JOIN", channel, tags=tags)

    def encode(self, event, focused: bool) -> bytes:
        """Return room event C{event} as the IRC lines every IRC member gets."""
        kind = type(event)
        channel = "#" + event.room
        if kind is events.Said:
            return text_lines(self.source(event.sender),
                              "NOTICE" if event.notice else "PRIVMSG", channel, event.text,
                              tags=self.tags(event.when, sender=event.sender, msgid=True,
                                             client=event.tags))
        if kind is events.Acted:
            return text_lines(self.source(event.sender), "PRIVMSG", channel, event.text,
                              tags=self.tags(event.when, sender=event.sender, msgid=True),
                              wrap=ACTION_FORMAT)
        if kind is events.Joined:
            return self.join(event.user, channel, event.when)
        if kind is events.Left:
            params = (channel, event.reason) if event.reason else (channel,)
            return message(self.source(event.user), "PART", *params,
                           tags=self.tags(event.when))
        if kind is events.Presence:
            lines = [self.join(name, channel) for name in event.joined]
            lines += [message(self.source(old), "NICK", new) for old, new in event.renamed]
            lines += [message(self.source(name), "PART", channel) for name in event.left]
            return b"".join(lines)
        if kind is events.TopicChanged:
            who = self.source(event.user) if event.user is not None else self.server_name
            return message(who, "TOPIC", channel, event.topic, tags=self.tags(event.when))
        if kind is events.RoomClosed:
            reason = f": {event.reason}" if event.reason else ""
            return message(self.server_name, "NOTICE", channel,
                           f"{channel} was closed by the server{reason}; you are no "
                           f"longer in it (type /part {channel})")
        if kind is events.Announcement:
            return message(self.server_name, "NOTICE", channel,
                           f"Announcement: {event.text}")
        if kind is events.ModeChanged:
            who = self.source(event.user) if event.user is not None else self.server_name
            return message(who, "MODE", channel, *mode_params(event.changes),
                           tags=self.tags(event.when))
        if kind is events.Kicked:
            # With no comment, RFC 2812 (3.2.8) has the nick of the one who kicked.
            who = self.source(event.user) if event.user is not None else self.server_name
            default = event.user if event.user is not None else event.target
            return message(who, "KICK", channel, event.target, event.reason or default,
                           tags=self.tags(event.when))
        raise TypeError(f"not a room event: {event!r}")

    @staticmethod
    def combine(payloads: List[bytes]) -> bytes:
        """Lines in a row are one write."""
        return b"".join(payloads)

    def personal(self, event, nick: str) -> bytes:
        """An event addressed to the user called C{nick} alone, as IRC lines."""
        kind = type(event)
        if kind is events.Private:
            return text_lines(self.source(event.sender),
                              "NOTICE" if event.notice else "PRIVMSG", nick, event.text,
                              tags=self.tags(event.when, sender=event.sender, msgid=True,
                                             client=event.tags),
                              wrap=ACTION_FORMAT if event.action else "%s")
        if kind is events.Renamed:
            return message(self.source(event.old_name, event.new_name), "NICK", event.new_name,
                           tags=self.tags(event.when))
        if kind is events.Quit:
            return message(self.source(event.user), "QUIT",
                           f"Quit: {event.reason}" if event.reason else "Quit",
                           tags=self.tags(event.when))
        if kind is events.Kicked:
            return self.encode(event, True)
        if kind is events.Invited:
            return message(self.source(event.user), "INVITE", event.target, "#" + event.room,
                           tags=self.tags(event.when))
        if kind is events.Announcement:
            if event.room is not None:
                return self.encode(event, True)
            return message(self.server_name, "NOTICE", nick, f"Announcement: {event.text}")
        raise TypeError(f"not a personal event: {event!r}")

    def tagmsg(self, sender: str, target: str, client: tuple, when: float) -> Optional[bytes]:
        """A TAGMSG from C{sender} to C{target}: only clients with message-tags get one."""
        if not self.message_tags:
            return None
        return message(self.source(sender), "TAGMSG", target,
                       tags=self.tags(when, sender=sender, msgid=True, client=client))

    def history(self, stored, channel: str, batch: Optional[str]) -> bytes:
        """
        A stored room line (a L{HistoryLine}) replayed in C{channel}, inside
        the C{chathistory} batch C{batch} if one is open.
        """
        extra = {"batch": batch} if batch else None
        tags = self.tags(stored.when, extra, sender=stored.sender,
                         msgid=stored.kind != "topic")
        source = self.source(stored.sender)
        if stored.kind == "act":
            return text_lines(source, "PRIVMSG", channel, stored.text, tags=tags,
                              wrap=ACTION_FORMAT)
        if stored.kind == "topic":
            # A NOTICE, not a TOPIC: replaying an old topic would overwrite
            # the current one the client was just given (332).
            said = (f"{stored.sender} set the topic: {stored.text}" if stored.text
                    else f"{stored.sender} cleared the topic")
            return message(self.server_name, "NOTICE", channel, said, tags=tags)
        return text_lines(source, "PRIVMSG", channel, stored.text, tags=tags)

    def private_history(self, stored, batch: Optional[str]) -> bytes:
        """
        A stored line of a private conversation (a L{PrivateLine}) as the
        live PRIVMSG was: from the sender's mask to the recipient, with its
        time and msgid, inside the C{chathistory} batch C{batch} if one is open.
        """
        extra = {"batch": batch} if batch else None
        tags = self.tags(stored.when, extra, sender=stored.sender, msgid=True)
        return text_lines(self.source(stored.sender), "PRIVMSG", stored.recipient, stored.text,
                          tags=tags, wrap=ACTION_FORMAT if stored.kind == "act" else "%s")

    def history_notice(self, stored, channel: str, now: float) -> bytes:
        """
        A stored room line as a NOTICE from the server to C{channel},
        marked with its time (UTC), for clients without C{batch}.
        """
        moment = time.gmtime(stored.when)
        same_day = time.gmtime(now)[:3] == moment[:3]
        stamp = time.strftime("%H:%M" if same_day else "%Y-%m-%d %H:%M", moment)
        if stored.kind == "act":
            said = f"* {stored.sender} {stored.text}"
        elif stored.kind == "topic":
            said = (f"{stored.sender} set the topic: {stored.text}" if stored.text
                    else f"{stored.sender} cleared the topic")
        else:
            said = f"<{stored.sender}> {stored.text}"
        return text_lines(self.server_name, "NOTICE", channel, f"[{stamp} UTC] {said}",
                          tags=self.tags(stored.when))
