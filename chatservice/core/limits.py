"""
The limits an operator can set, with their defaults.

Every limit is a named constant here, a field of L{Limits}, and a
command-line option of C{twistd chat} (see L{chatservice.tap}); README.md's
"Limits and abuse handling" lists them all.  For the counts and sizes, 0
means "no limit".
"""

from dataclasses import dataclass

from .text import MAX_NAME_LENGTH, MAX_ROOM_NAME_LENGTH, MAX_TOPIC_LENGTH

#: Longest line a client may send, in bytes; longer lines are refused.
MAX_LINE_LENGTH = 2048
#: Over-long lines a connection may send before it is dropped.
MAX_LONG_LINES = 10
#: Flood control: lines a client may send in one burst...
FLOOD_BURST = 20
#: ...and lines per second after that (0 turns flood control off).
FLOOD_RATE = 5.0
#: Lines dropped in one flood before the flooder is disconnected.
FLOOD_KICK = 100
#: Lines of /history that count as one line against flood control:
#: /history N takes ceil(N / this) lines of the client's bucket.
HISTORY_LINES_PER_CHARGE = 50
#: /history reads of the database waiting or running at once (each user has
#: one at most); past it the user is told the server is busy.
MAX_HISTORY_READS = 32
#: Bytes waiting to be sent to a client before it is dropped as not reading.
MAX_OUTPUT = 1024 * 1024
#: Seconds a new connection has to choose a name.
LOGIN_TIMEOUT = 60.0
#: Seconds without a line before a logged-in user is disconnected (0: never).
IDLE_TIMEOUT = 0.0
#: Connections waiting in the kernel to be accepted, per listening port.
#: Twisted's default of 50 turns a reconnect storm into 1 s SYN retries;
#: Linux caps this at net.core.somaxconn (4096 since 5.4).
LISTEN_BACKLOG = 1024
#: Connections the server accepts at once.
MAX_CONNECTIONS = 10000
#: Connections at once from one remote address.
MAX_PER_ADDRESS = 20
#: Password checks (scrypt, about 16 MiB and a few tens of milliseconds
#: each) running at once, in threads.
MAX_PASSWORD_CHECKS = 2
#: Password checks from one address, running or waiting; past it, and past
#: MAX_CHECKS_WAITING waiting in all, a login is asked to try again.
MAX_CHECKS_PER_ADDRESS = 4
MAX_CHECKS_WAITING = 64
#: Rooms one user may be in at once.
MAX_ROOMS_PER_USER = 20
#: Rooms on the server at once, the default room included; /join of a new
#: room past it is refused.
MAX_ROOMS = 5000
#: Rooms one registered user may register (/room register) and be the founder of.
MAX_REGISTERED_ROOMS = 10
#: Rooms with more members than this get join/leave notices in batches...
BUSY_ROOM_SIZE = 50
#: ...at most one batch every this many seconds.
BUSY_ROOM_INTERVAL = 2.0
#: Lines times members a busy room relays per second, all senders together:
#: a room of 10,000 takes 2 lines a second, a room of 200 takes 100.
BUSY_ROOM_DELIVERIES = 20000
#: Renames a user may make at once...
NICK_BURST = 3
#: ...and then one every this many seconds.
NICK_INTERVAL = 10.0
#: Wrong passwords for a registered name before the connection is closed.
PASSWORD_TRIES = 3
#: Seconds between a wrong password and the next try.
PASSWORD_RETRY_DELAY = 2.0
#: Seconds connected users get to finish before a shutdown aborts them.
SHUTDOWN_GRACE = 2.0
#: Lines of history shown to someone entering a room.
REPLAY_LINES = 20
#: Most entries a listing (users, members, rooms) shows before "and N more".
MAX_LISTED = 100


@dataclass
class Limits:
    """The limits in force for one chat service (0 means unlimited/off)."""

    max_line_length: int = MAX_LINE_LENGTH
    max_long_lines: int = MAX_LONG_LINES
    flood_burst: int = FLOOD_BURST
    flood_rate: float = FLOOD_RATE
    flood_kick: int = FLOOD_KICK
    history_lines_per_charge: int = HISTORY_LINES_PER_CHARGE
    max_history_reads: int = MAX_HISTORY_READS
    max_output: int = MAX_OUTPUT
    login_timeout: float = LOGIN_TIMEOUT
    idle_timeout: float = IDLE_TIMEOUT
    max_connections: int = MAX_CONNECTIONS
    max_per_address: int = MAX_PER_ADDRESS
    max_password_checks: int = MAX_PASSWORD_CHECKS
    max_checks_per_address: int = MAX_CHECKS_PER_ADDRESS
    max_checks_waiting: int = MAX_CHECKS_WAITING
    max_rooms_per_user: int = MAX_ROOMS_PER_USER
    max_rooms: int = MAX_ROOMS
    max_registered_rooms: int = MAX_REGISTERED_ROOMS
    max_name_length: int = MAX_NAME_LENGTH
    max_room_name_length: int = MAX_ROOM_NAME_LENGTH
    max_topic_length: int = MAX_TOPIC_LENGTH
    busy_room_size: int = BUSY_ROOM_SIZE
    busy_room_interval: float = BUSY_ROOM_INTERVAL
    busy_room_deliveries: int = BUSY_ROOM_DELIVERIES
    nick_burst: int = NICK_BURST
    nick_interval: float = NICK_INTERVAL
    password_tries: int = PASSWORD_TRIES
    password_retry_delay: float = PASSWORD_RETRY_DELAY
    shutdown_grace: float = SHUTDOWN_GRACE
