"""
The limits an operator can set, with their defaults.

Every limit is a named constant here, a field of L{Limits}, and a
command-line option of C{twistd chat} (see L{chatservice.tap}).
"""

from dataclasses import dataclass

from .text import MAX_NAME_LENGTH, MAX_ROOM_NAME_LENGTH, MAX_TOPIC_LENGTH

#: Seconds connected users get to finish before a shutdown aborts them.
SHUTDOWN_GRACE = 2.0


@dataclass
class Limits:
    """The limits in force for one chat service."""

    max_name_length: int = MAX_NAME_LENGTH
    max_room_name_length: int = MAX_ROOM_NAME_LENGTH
    max_topic_length: int = MAX_TOPIC_LENGTH
    shutdown_grace: float = SHUTDOWN_GRACE
