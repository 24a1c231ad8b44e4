"""
The channel commands of IRC: JOIN, PART, TOPIC, NAMES and LIST, and
the history replayed on JOIN.  Channels are rooms: C{#games} is room
C{games}.
"""

from typing import TYPE_CHECKING

from twisted.words.protocols import irc

from ...core import errors
from ...core.limits import MAX_LISTED
from ...core.text import sanitize
from .moderation import JOIN_REFUSALS, ModerationCommands
from .wire import RPL_TOPICWHOTIME, message, split_params

if TYPE_CHECKING:
    from ...core.room import Room

#: Most targets one JOIN, PART, NAMES, LIST, PRIVMSG or WHOIS may name (TARGMAX).
MAX_TARGETS = 10


class ChannelCommands(ModerationCommands):
    """JOIN, PART, TOPIC, NAMES and LIST (mixed into the protocol, with MODE, KICK and INVITE)."""

    # -- channels -----------------------------------------------------------------

    def irc_JOIN(self, msg) -> None:
        """JOIN #a,#b [key,key]; JOIN 0 parts all."""
        if msg.params[0] == "0":
            for room in list(self.user.rooms.values()):
                self.chat.leave(self.user, room.name)
                self.send_line(message(self.me(), "PART", room.display))
            return
        keys = msg.params[1].split(",") if len(msg.params) > 1 else []
        for index, name in enumerate(msg.params[0].split(",")[:MAX_TARGETS]):
            key = keys[index] if index < len(keys) else None
            if not name.startswith("#"):
                self.reply(irc.ERR_NOSUCHCHANNEL, name, "Channel names start with #")
                continue
            try:
                room, entered = self.chat.join(self.user, name, key)
            except tuple(JOIN_REFUSALS) as e:
                numeric, mode = JOIN_REFUSALS[type(e)]
                self.reply(numeric, name, f"Cannot join channel ({mode}): {e}")
                continue
            except errors.InvalidRoomName as e:
                self.reply(irc.ERR_BADCHANMASK, name, f"Bad Channel Mask: {e}")
                continue
            except (errors.TooManyRooms, errors.ServerRoomsFull) as e:
                self.reply(irc.ERR_TOOMANYCHANNELS, name, str(e))
                continue
            if entered:
                self.send_line(self.renderer.join(self.user.name, room.display))
                if self.away:
                    self.notify_away()
                if room.topic:
                    self.send_topic(room)
                self.send_names(room)
                self.replay_history(room)

    def irc_PART(self, msg) -> None:
        """PART #a,#b [reason]."""
        reason = msg.params[1] if len(msg.params) > 1 else ""
        for name in msg.params[0].split(",")[:MAX_TARGETS]:
            room = self.find_channel(name)
            if room is None:
                self.reply(irc.ERR_NOSUCHCHANNEL, name, "No such channel")
            elif self.user not in room:
                self.reply(irc.ERR_NOTONCHANNEL, room.display, "You're not on that channel")
            else:
                self.chat.leave(self.user, room.name, sanitize(reason))
                params = (room.display, sanitize(reason)) if sanitize(reason) else (room.display,)
                self.send_line(message(self.me(), "PART", *params))

    def irc_TOPIC(self, msg) -> None:
        """TOPIC #room (show it) or TOPIC #room :text (set it; empty clears)."""
        room = self.find_channel(msg.params[0])
        if room is None:
            self.reply(irc.ERR_NOSUCHCHANNEL, msg.params[0], "No such channel")
            return
        if len(msg.params) == 1:
            if room.topic:
                self.send_topic(room)
            else:
                self.reply(irc.RPL_NOTOPIC, room.display, "No topic is set")
            return
        if self.user not in room:
            self.reply(irc.ERR_NOTONCHANNEL, room.display, "You're not on that channel")
            return
        try:
            self.chat.set_topic(self.user, msg.params[1], room=room)
        except errors.NotOperator as e:
            self.reply(irc.ERR_CHANOPRIVSNEEDED, room.display, f"You're not channel operator: {e}")
        except errors.CannotSpeak as e:
            self.reply(irc.ERR_CANNOTSENDTOCHAN, room.display, str(e))
        except (errors.InvalidText, errors.RoomBusy) as e:
            self.notice(f"The topic of {room.display} was not changed: {e}")

    def send_topic(self, room: "Room") -> None:
        """332 and (when known) 333 for C{room}."""
        self.reply(irc.RPL_TOPIC, room.display, room.topic)
        if room.topic_set_by:
            self.reply(RPL_TOPICWHOTIME, room.display, room.topic_set_by,
                       str(int(room.topic_set_at)))

    def send_names(self, room: "Room", end: bool = True) -> None:
        """353 (as many as the members need) for C{room}, and 366 if C{end}."""
        names = [self.status(room, member) + member.name for member in room.members.values()]
        symbol = "@" if "s" in room.moderation.flags else "="  # RFC 2812: @ for secret
        prefix = f":{self.server} 353 {self.user.name} {symbol} {room.display} :"
        for chunk in split_params(names, prefix):
            self.reply(irc.RPL_NAMREPLY, symbol, room.display, chunk)
        if end:
            self.reply(irc.RPL_ENDOFNAMES, room.display, "End of /NAMES list")

    def irc_NAMES(self, msg) -> None:
        """
        NAMES [#a,#b]: the members of each channel (none given: the
        client's own), then one 366 naming what was asked (a channel that
        does not exist, or is secret to a stranger, shows nothing).
        """
        if not msg.params or not msg.params[0]:
            for room in list(self.user.rooms.values()):
                self.send_names(room, end=False)
            self.reply(irc.RPL_ENDOFNAMES, "*", "End of /NAMES list")
            return
        visible = self.chat.moderation.visible
        for name in msg.params[0].split(",")[:MAX_TARGETS]:
            room = self.find_channel(name)
            if room is not None and visible(room, self.user):
                self.send_names(room, end=False)
        self.reply(irc.RPL_ENDOFNAMES, msg.params[0], "End of /NAMES list")

    def irc_LIST(self, msg) -> None:
        """LIST [#a,#b]: channels with their member counts and topics (the largest first)."""
        self.reply(irc.RPL_LISTSTART, "Channel", "Users  Name")
        if msg.params and msg.params[0]:
            rooms = [room for room in (self.find_channel(name) for name in
                                       msg.params[0].split(",")[:MAX_TARGETS])
                     if room is not None and self.chat.moderation.visible(room, self.user)]
        else:
            rooms = [room for room in self.chat.room_index.largest(MAX_LISTED)
                     if self.chat.moderation.visible(room, self.user)]
            more = len(self.chat.rooms) - len(rooms)
            if more > 0:
                self.notice(f"Only the {len(rooms)} largest channels are listed; "
                            f"{more:,} more exist. Ask for one with LIST #name.")
        for room in rooms:
            self.reply(irc.RPL_LIST, room.display, str(len(room)), room.topic)
        self.reply(irc.RPL_LISTEND, "End of /LIST")

    # -- history --------------------------------------------------------------------

    def replay_history(self, room: "Room") -> None:
        """
        The room's last C{--replay-lines} lines after a JOIN: with the
        C{batch} capability as a C{chathistory} batch of the lines as they
        were said (with their times under C{server-time}); without it, with
        C{--irc-history-notices}, as NOTICEs from the server to the channel,
        each marked with its time, so that no client takes them for lines
        said now (else not at all: such a client may ask with CHATHISTORY).
        """
        count = self.chat.replay_lines
        batched = "batch" in self.caps
        if not count or not (batched or self.factory.history_notices):
            return
        channel = room.display

        joined_at = self.clock.seconds()

        def show(lines) -> None:
            # Only what was said before the JOIN: lines said while the store
            # was read reached the client live.
            lines = [line for line in lines if line.when <= joined_at]
            if self.closing or not lines:
                return
            renderer = self.renderer
            if not batched:
                now = self.clock.seconds()
                self.send_line(b"".join(renderer.history_notice(line, channel, now)
                                        for line in lines))
                return
            self.batches += 1
            ref = f"h{self.batches}"
            out = [message(self.server, "BATCH", f"+{ref}", "chathistory", channel)]
            out += [renderer.history(line, channel, ref) for line in lines]
            out.append(message(self.server, "BATCH", f"-{ref}"))
            self.send_line(b"".join(out))

        d = self.chat.history(room, count)
        if d.called:
            d.addCallback(show).addErrback(self._check_failed)
            return
        # Read from the store: the client's later commands wait for it, so
        # that the replay comes right after the JOIN's replies.
        held = self.hold_input()
        d.addCallbacks(lambda lines: self.release_input(held, lambda: show(lines)),
                       lambda failure: self.release_input(
                           held, lambda: self._check_failed(failure)))
