"""
The moderation commands of IRC: channel and user C{MODE}, C{KICK} and
C{INVITE}, and the status prefixes (C{@}, C{+}) of NAMES, WHO and WHOIS.
The rules are the core's (L{chatservice.core.moderation}); this module
words them as numerics.
"""

from typing import TYPE_CHECKING, List

from twisted.words.protocols import irc

from ...core import errors
from ...core.moderation import ModeChange
from .base import ConnectionBase

if TYPE_CHECKING:
    from ...core.room import Room
    from ...core.user import User

#: Numerics IRC has for moderation that Twisted does not name.
RPL_CREATIONTIME = "329"
ERR_INVALIDMODEPARAM = "696"
#: INVITE without parameters: the channels you are invited to (modern IRC).
RPL_INVITELIST_OWN = "336"
RPL_ENDOFINVITELIST_OWN = "337"
#: The channel modes, as RPL_ISUPPORT's CHANMODES lists them (type A, B, C, D).
CHANMODES = "b,k,l,imnst"
#: The status modes and their prefixes, as RPL_ISUPPORT's PREFIX lists them.
PREFIX = "(ov)@+"
#: The mode letters of MODE #channel this server knows.
KNOWN_MODES = "ovbklimnst"
#: Most mode changes one MODE line makes (RPL_ISUPPORT MODES).
MAX_MODES = 6
#: RPL_MYINFO (004): the user modes (C{i}, invisible: WHO finds users by
#: channel or exact nick only, so every user is invisible already), the
#: channel modes, and those of them that take a parameter.
USER_MODES = "i"
CHANNEL_MODES = "biklmnostv"
CHANNEL_MODES_WITH_PARAM = "bklov"

#: Why JOIN refused, as its numeric and its mode letter.
JOIN_REFUSALS = {
    errors.Banned: (irc.ERR_BANNEDFROMCHAN, "+b"),
    errors.InviteOnly: (irc.ERR_INVITEONLYCHAN, "+i"),
    errors.BadKey: (irc.ERR_BADCHANNELKEY, "+k"),
    errors.RoomFull: (irc.ERR_CHANNELISFULL, "+l"),
}


def parse_channel_modes(flags: str, arguments: List[str]):
    """
    IRC's C{MODE #chan +ov-k bob carol key}: return the changes, and the
    letters this server does not know.  C{o}, C{v} and C{b} take an
    argument either way, C{k} too (its argument is ignored on C{-k}), and
    C{l} on C{+l}; C{b} without one asks for the ban list (C{None} then).
    """
    changes: List[ModeChange] = []
    unknown: List[str] = []
    adding = True
    arguments = list(arguments)
    for char in flags:
        if char in "+-":
            adding = char == "+"
        elif char not in KNOWN_MODES:
            unknown.append(char)
        elif char in "ovbk" or (char == "l" and adding):
            if not arguments:
                if char in "k" and not adding:
                    changes.append(ModeChange(False, "k"))
                elif char == "b":
                    changes.append(ModeChange(adding, "b", ""))
                else:
                    unknown.append("need:" + char)
                continue
            argument = arguments.pop(0)
            changes.append(ModeChange(adding, char, "" if char == "k" and not adding
                                      else argument))
        else:
            changes.append(ModeChange(adding, char))
    return changes, unknown


class ModerationCommands(ConnectionBase):
    """MODE, KICK and INVITE, and channel status prefixes (mixed into the protocol)."""

    # -- prefixes ------------------------------------------------------------------

    def status(self, room: "Room", user: "User") -> str:
        """C{@}, C{+} or C{""} before C{user}'s nick in C{room}; all of them with multi-prefix."""
        state = room.moderation
        return state.prefixes(user.key) if "multi-prefix" in self.caps else state.prefix(user.key)

    # -- MODE ----------------------------------------------------------------------

    def irc_MODE(self, msg) -> None:
        """
        MODE #room (324 and 329), MODE #room b (the bans: 367, 368), MODE
        #room +o-v+b... args (operators only: 482); MODE nick (user modes:
        L{user_mode}).
        """
        target = msg.params[0]
        if not target.startswith("#"):
            self.user_mode(msg)
            return
        room = self.find_channel(target)
        if room is None:
            self.reply(irc.ERR_NOSUCHCHANNEL, target, "No such channel")
            return
        if len(msg.params) == 1:
            letters, values = room.moderation.modes(show_key=self.user in room)
            self.reply(irc.RPL_CHANNELMODEIS, room.display, letters, *values)
            self.reply(RPL_CREATIONTIME, room.display, str(int(room.created_at)))
            return
        if msg.params[1] in ("I", "+I") and len(msg.params) == 2:
            self.send_invites(room)
            return
        changes, unknown = parse_channel_modes(msg.params[1], msg.params[2:])
        for letter in unknown:
            if letter.startswith("need:"):
                self.reply(irc.ERR_NEEDMOREPARAMS, "MODE", "Not enough parameters")
            else:
                self.reply(irc.ERR_UNKNOWNMODE, letter, "is unknown mode char to me")
        if any(change.letter == "b" and not change.argument for change in changes):
            self.send_bans(room)
        wanted = [change for change in changes
                  if change.letter != "n" and (change.letter != "b" or change.argument)]
        if not wanted and not any(change.letter == "n" for change in changes):
            return
        if not self.chat.moderation.is_operator(room, self.user):
            self.reply(irc.ERR_CHANOPRIVSNEEDED, room.display,
                       f"You're not channel operator: {self._not_operator(room)}")
            return
        _, refused = self.chat.moderation.set_modes(room, self.user, wanted[:MAX_MODES])
        for change, problem in refused:
            self.mode_refused(room, change, problem)

    def _not_operator(self, room: "Room") -> str:
        return f"ask an operator of {room.display} (NAMES shows them with @)"

    def mode_refused(self, room: "Room", change: ModeChange, problem: errors.ChatError) -> None:
        """
        The numeric of one refused mode change: 696 names its letter and
        argument (C{*} for a key, which is not echoed).
        """
        if isinstance(problem, errors.NoSuchUser):
            self.reply(irc.ERR_NOSUCHNICK, "*", str(problem))
        elif isinstance(problem, errors.TargetNotInRoom):
            self.reply(irc.ERR_USERNOTINCHANNEL, "*", room.display, str(problem))
        else:
            shown = "*" if change.letter == "k" else change.argument or "*"
            self.reply(ERR_INVALIDMODEPARAM, room.display, change.letter, shown, str(problem))

    def send_bans(self, room: "Room") -> None:
        """367 for each ban of C{room}, then 368."""
        for mask in room.moderation.bans.values():
            self.reply(irc.RPL_BANLIST, room.display, mask)
        self.reply(irc.RPL_ENDOFBANLIST, room.display, "End of channel ban list")

    def user_mode(self, msg) -> None:
        """
        MODE nick: 221 for oneself (C{+i}, always on, and C{o} for an IRC
        operator); C{-o} stops being one; 501 for another letter or for
        C{+o} (OPER gives it), 502 for another user.
        """
        target = msg.params[0]
        try:
            user = self.chat.find_user(target)
        except errors.NoSuchUser:
            self.reply(irc.ERR_NOSUCHNICK, target, "No such nick/channel")
            return
        if user is not self.user:
            self.reply(irc.ERR_USERSDONTMATCH, "Cant change mode for other users")
        elif len(msg.params) == 1:
            self.reply(irc.RPL_UMODEIS, "+io" if self.oper is not None else "+i")
        elif msg.params[1] == "-o":
            self.drop_oper()
        elif msg.params[1].strip("+-") not in ("", "i"):
            self.reply(irc.ERR_UMODEUNKNOWNFLAG, "Unknown MODE flag (user modes: +i, always "
                       "on, and o, which OPER gives and -o takes away)")

    # -- KICK and INVITE ----------------------------------------------------------------

    def irc_KICK(self, msg) -> None:
        """KICK #room nick[,nick...] [:reason] (operators only)."""
        room = self.find_channel(msg.params[0])
        if room is None:
            self.reply(irc.ERR_NOSUCHCHANNEL, msg.params[0], "No such channel")
            return
        if self.user not in room:
            self.reply(irc.ERR_NOTONCHANNEL, room.display, "You're not on that channel")
            return
        reason = msg.params[2] if len(msg.params) > 2 else ""
        for nick in msg.params[1].split(",")[:MAX_MODES]:
            try:
                self.chat.moderation.kick(room, self.user, nick, reason)
            except errors.NotOperator:
                self.reply(irc.ERR_CHANOPRIVSNEEDED, room.display,
                           f"You're not channel operator: {self._not_operator(room)}")
                return
            except errors.NoSuchUser:
                self.reply(irc.ERR_NOSUCHNICK, nick, "No such nick/channel")
            except errors.TargetNotInRoom:
                self.reply(irc.ERR_USERNOTINCHANNEL, nick, room.display,
                           "They aren't on that channel")

    def send_invites(self, room: "Room") -> None:
        """MODE #room I: 346 for each invite waiting to be used (as C{nick!*@*}), then 347."""
        users = self.chat.users
        for key in sorted(room.moderation.invited):
            user = users.get(key)
            self.reply(irc.RPL_INVITELIST, room.display,
                       f"{user.name if user is not None else key}!*@*")
        self.reply(irc.RPL_ENDOFINVITELIST, room.display, "End of Channel Invite List")

    def irc_INVITE(self, msg) -> None:
        """
        INVITE nick #room: 341, and an INVITE to them (operators only in a
        +i channel).  INVITE alone lists the channels you are invited to
        (336, 337).
        """
        if not msg.params:
            for room in list(self.chat.rooms.values()):
                if self.user.key in room.moderation.invited:
                    self.reply(RPL_INVITELIST_OWN, room.display)
            self.reply(RPL_ENDOFINVITELIST_OWN, "End of /INVITE list")
            return
        if len(msg.params) < 2:
            self.reply(irc.ERR_NEEDMOREPARAMS, "INVITE", "Not enough parameters")
            return
        nick, channel = msg.params[0], msg.params[1]
        if self._key(nick) not in self.chat.users:
            self.reply(irc.ERR_NOSUCHNICK, nick, "No such nick/channel")
            return
        room = self.find_channel(channel)
        if room is None:
            self.reply(irc.ERR_NOSUCHCHANNEL, channel, "No such channel")
            return
        if self.user not in room:
            self.reply(irc.ERR_NOTONCHANNEL, room.display, "You're not on that channel")
            return
        try:
            target = self.chat.moderation.invite(room, self.user, nick)
        except errors.NotOperator:
            self.reply(irc.ERR_CHANOPRIVSNEEDED, room.display,
                       f"You're not channel operator: {room.display} is invite-only")
            return
        except errors.AlreadyInRoom:
            self.reply(irc.ERR_USERONCHANNEL, nick, room.display, "is already on channel")
            return
        except errors.InvalidMode as e:
            self.notice(str(e))
            return
        self.reply(irc.RPL_INVITING, target.name, room.display)
