"""
The fixed words the chat counts events by: why connections were refused or
closed, and what kind of line was said.  They label the counters of
L{chatservice.core.chat.Chat.stats} (and so the metrics): a small, fixed
set, never a user's or a room's name.
"""

#: Why a connection was refused at the door (L{chatservice.core.errors.Refused.reason}).
REFUSALS = ("server_full", "per_address", "shutting_down", "other")

#: The server closed a connection whose output passed C{--max-output} (a slow reader).
SENDQ = "sendq"
#: A flood went on past C{--flood-kick} dropped lines.
FLOOD = "flood"
#: More than C{--max-long-lines} over-long lines.
LONG_LINES = "long_lines"
#: A logged-in user sent nothing for C{--idle-timeout}.
IDLE = "idle"
#: A newcomer chose no name within C{--login-timeout} (an IRC client did not register).
LOGIN_TIMEOUT = "login_timeout"
#: An IRC client did not answer a PING within C{--irc-ping-timeout}.
PING_TIMEOUT = "ping_timeout"
#: Too many wrong passwords for a registered name.
PASSWORDS = "passwords"
#: An operator kicked the user.
KICKED = "kicked"
#: Why the server closed a connection (those the client closed are not counted here).
DISCONNECTS = (SENDQ, FLOOD, LONG_LINES, IDLE, LOGIN_TIMEOUT, PING_TIMEOUT, PASSWORDS,
               KICKED)

#: A line said to a room, an action (C{/me}), a private message (C{/msg}).
SAY, ACT, PRIVATE = "say", "act", "private"
#: The kinds of lines counted.
LINE_KINDS = (SAY, ACT, PRIVATE)
