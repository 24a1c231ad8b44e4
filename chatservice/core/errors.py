"""
Why a chat request was refused.

Each error's message is a plain sentence any front end can show; front ends
may add their own hint (the line protocol adds which command to type).
"""


class ChatError(Exception):
    """A request the rules refuse; C{str(error)} says why, for the user."""


class InvalidName(ChatError):
    """The requested user name breaks the naming rules."""


class NameTaken(ChatError):
    """Someone else is already using that name."""


class InvalidRoomName(ChatError):
    """The requested room name breaks the naming rules."""


class NoSuchUser(ChatError):
    """Nobody of that name is online."""


class NoSuchRoom(ChatError):
    """There is no room of that name."""


class NotInRoom(ChatError):
    """The user is not in that room (or in no room at all)."""


class InvalidText(ChatError):
    """The text is empty after sanitising, or too long."""


class TooManyRooms(ChatError):
    """The user is already in as many rooms as the limit allows."""


class ServerRoomsFull(ChatError):
    """The server already has as many rooms as its limit allows."""


class TooManyRenames(ChatError):
    """The user changed their name too often lately."""


class RoomBusy(ChatError):
    """A busy room has relayed as many lines as its budget allows just now."""


class InvalidPassword(ChatError):
    """A new password is too short or otherwise unusable."""


class WrongPassword(ChatError):
    """The password given does not match the account's."""


class AlreadyRegistered(ChatError):
    """The name is registered already."""


class NotRegistered(ChatError):
    """The name has no account (or accounts are off on this server)."""


class Unavailable(ChatError):
    """The server runs without the feature asked for (no database)."""


class NeedsPassword(ChatError):
    """The name is registered: logging in with it needs its password."""


class MailboxFull(ChatError):
    """A private message for an offline user could not be kept."""


class Refused(ChatError):
    """
    A new connection is turned away.

    @cvar reason: why, as a fixed word for counters (L{chatservice.core.counters.REFUSALS}).
    """

    reason = "other"


class ServerFull(Refused):
    """The server has as many connections as it accepts."""

    reason = "server_full"


class TooManyFromAddress(Refused):
    """The connection's address has as many connections as one address may."""

    reason = "per_address"


class ShuttingDown(Refused):
    """The server is stopping."""

    reason = "shutting_down"


class Busy(ChatError):
    """The server has too much of that kind of work waiting; try again in a moment."""


class TooManyChecks(ChatError):
    """Too many passwords are being checked: try again in a few seconds."""


class NotOperator(ChatError):
    """Only the room's operators (or the server's) may do that."""


class Banned(ChatError):
    """A ban on the room matches the user."""


class InviteOnly(ChatError):
    """The room is invite-only and the user was not invited."""


class BadKey(ChatError):
    """The room has a key, and it was not given (or not the right one)."""


class RoomFull(ChatError):
    """The room has as many members as its limit allows."""


class CannotSpeak(ChatError):
    """The room is moderated (or the user banned) and the user has no voice."""


class TargetNotInRoom(ChatError):
    """The user named is not in the room."""


class AlreadyInRoom(ChatError):
    """The user invited is in the room already."""


class InvalidMode(ChatError):
    """An unknown mode, or a mode with a bad argument."""


class RegistrationRefused(ChatError):
    """A room cannot be registered, transferred or dropped (the message says why and what would work)."""
