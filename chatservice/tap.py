"""
C{twistd chat}: the command-line options and the service they build.
"""

import contextlib
import os
import sys
from typing import Iterator, Optional, Sequence, Tuple
from urllib.parse import urlsplit

from twisted.internet import endpoints
from twisted.python import usage

from .core.chat import DEFAULT_ROOM, DEFAULT_SERVER_NAME, Chat
from .core.limits import REPLAY_LINES
from .frontends.irc.factory import PING_INTERVAL, PING_TIMEOUT, IRCFactory
from .frontends.line.factory import ChatFactory
from .frontends.web.factory import MAX_FRAME
from .persistence import remember
from .core import limits as L
from .admin import AdminOptions, make_admin_service
from .admin.credentials import PasswordFileChecker
from .passwords import PasswordFileError, read_password_file
from .admin.hostkey import AdminSetupError, load_or_create_host_key
from .admin.options import normalize_admin_endpoint
from .core.limits import Limits
from .config import ConfigFileOptions
from .core.registry import RoomRecord
from .jsonlog import LOG_FORMATS, LoggingRoot, json_observer, twistd_log_file
from .reload import Reloader, read_motd_file
from .service import ChatService, ListeningService
from .statslog import STATS_INTERVAL, StatsLogService
from .metricsweb import MetricsService
from .persistence.records import StoreError
from .persistence.store import (HISTORY_LIMIT, MAX_OFFLINE, PRIVATE_HISTORY_LIMIT, ChatStore,
                                default_database_path)
from .core.text import check_room_name, clean_room_name

#: Where the chat listens when no --port is given.
DEFAULT_PORT = "tcp:8123"

def default_data_dir() -> str:
    """
    Return where state (the admin host key, later the database) is kept by
    default: C{$XDG_DATA_HOME/chatservice}, else C{~/.local/share/chatservice}.
    """
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "share")
    return os.path.join(base, "chatservice")


#: Endpoint types whose descriptions take a backlog= argument.
BACKLOG_ENDPOINTS = ("tcp", "tcp6", "ssl", "unix")


def with_backlog(description: str, backlog: int) -> str:
    """
    Return the endpoint C{description} with C{backlog=BACKLOG} added, if it
    is of a type that takes one and does not give its own.
    """
    kind = description.split(":", 1)[0].strip().lower()
    if kind not in BACKLOG_ENDPOINTS or "backlog=" in description:
        return description
    return f"{description}:backlog={backlog}"


def _number(kind, minimum, doc):
    def convert(value: str):
        try:
            number = kind(value)
        except ValueError:
            raise usage.UsageError(f"{value!r} is not a number") from None
        if number < minimum or number != number:
            raise usage.UsageError(f"{value!r} must be at least {minimum}")
        return number

    convert.coerceDoc = doc
    return convert


_positive_float = _number(float, 0.001, "")
_count = _number(int, 0, "0 means no limit.")
_seconds = _number(float, 0, "0 turns it off.")
_length = _number(int, 1, "")


def _log_format(value: str) -> str:
    if value.lower() not in LOG_FORMATS:
        raise usage.UsageError(f"{value!r} is not one of: {', '.join(LOG_FORMATS)}")
    return value.lower()


_log_format.coerceDoc = f"One of: {', '.join(LOG_FORMATS)}."  # type: ignore[attr-defined]

#: (option, Limits field, default, help, coerce) for every operator limit.
LIMIT_OPTIONS = [
    ("max-line-length", "max_line_length", L.MAX_LINE_LENGTH,
     "Longest line a client may send, in bytes; longer lines are refused.", _length),
    ("max-long-lines", "max_long_lines", L.MAX_LONG_LINES,
     "Over-long lines a connection may send before it is disconnected.", _count),
    ("flood-burst", "flood_burst", L.FLOOD_BURST,
     "Flood control: lines a client may send in a burst.", _length),
    ("flood-rate", "flood_rate", L.FLOOD_RATE,
     "Flood control: lines per second a client may send after a burst; "
     "faster lines are dropped with a warning. 0 turns flood control off.", _seconds),
    ("flood-kick", "flood_kick", L.FLOOD_KICK,
     "Lines dropped in one flood before the flooder is disconnected.", _count),
    ("history-flood-lines", "history_lines_per_charge", L.HISTORY_LINES_PER_CHARGE,
     "Lines of /history that count as one line against flood control "
     "(/history N takes N divided by this, rounded up).", _length),
    ("max-history-reads", "max_history_reads", L.MAX_HISTORY_READS,
     "/history reads of the database at once (one per user); past it users "
     "are told the server is busy.", _count),
    ("max-output", "max_output", L.MAX_OUTPUT,
     "Bytes waiting to be sent to a client that does not read before it is "
     "dropped.", _count),
    ("login-timeout", "login_timeout", L.LOGIN_TIMEOUT,
     "Seconds a new connection has to choose a name.", _seconds),
    ("idle-timeout", "idle_timeout", L.IDLE_TIMEOUT,
     "Seconds without a line before a user is disconnected.", _seconds),
    ("max-connections", "max_connections", L.MAX_CONNECTIONS,
     "Connections accepted at once (raise 'ulimit -n' to match).", _count),
    ("max-per-address", "max_per_address", L.MAX_PER_ADDRESS,
     "Connections at once from one remote address.", _count),
    ("max-password-checks", "max_password_checks", L.MAX_PASSWORD_CHECKS,
     "Password checks (scrypt: CPU and 16 MiB each) running at once.", _length),
    ("max-checks-per-address", "max_checks_per_address", L.MAX_CHECKS_PER_ADDRESS,
     "Password checks from one address, running or waiting; past it a login is "
     "asked to try again in a few seconds.", _count),
    ("max-checks-waiting", "max_checks_waiting", L.MAX_CHECKS_WAITING,
     "Password checks waiting in all (the address served least recently goes "
     "first); past it a login is asked to try again in a few seconds.", _count),
    ("max-rooms-per-user", "max_rooms_per_user", L.MAX_ROOMS_PER_USER,
     "Rooms one user may be in at once.", _count),
    ("max-rooms", "max_rooms", L.MAX_ROOMS,
     "Rooms on the server at once (the default room always exists); /join "
     "of a new room past it is refused.", _count),
    ("max-registered-rooms", "max_registered_rooms", L.MAX_REGISTERED_ROOMS,
     "Rooms one registered user may register (/room register) and found.", _count),
    ("max-name-length", "max_name_length", L.MAX_NAME_LENGTH,
     "Longest user name, in characters.", _length),
    ("max-room-name-length", "max_room_name_length", L.MAX_ROOM_NAME_LENGTH,
     "Longest room name, in characters.", _length),
    ("max-topic-length", "max_topic_length", L.MAX_TOPIC_LENGTH,
     "Longest room topic, in characters.", _length),
    ("busy-room-size", "busy_room_size", L.BUSY_ROOM_SIZE,
     "Rooms with more members than this get join, leave and rename notices "
     "in batches instead of one line per person.", _count),
    ("busy-room-interval", "busy_room_interval", L.BUSY_ROOM_INTERVAL,
     "Seconds between batched join, leave and rename notices in busy rooms.",
     _positive_float),
    ("busy-room-deliveries", "busy_room_deliveries", L.BUSY_ROOM_DELIVERIES,
     "Lines times members a busy room relays per second, all senders "
     "together; past it a line is refused (\"#room is busy\").", _count),
    ("nick-burst", "nick_burst", L.NICK_BURST,
     "Renames (/nick) a user may make at once before --nick-interval applies.",
     _count),
    ("nick-interval", "nick_interval", L.NICK_INTERVAL,
     "Seconds a user waits for each further rename once --nick-burst is spent.",
     _seconds),
    ("password-tries", "password_tries", L.PASSWORD_TRIES,
     "Wrong passwords for a registered name before the connection is closed.",
     _length),
    ("password-retry-delay", "password_retry_delay", L.PASSWORD_RETRY_DELAY,
     "Seconds between a wrong password and the next try.", _seconds),
    ("shutdown-grace", "shutdown_grace", L.SHUTDOWN_GRACE,
     "Seconds users get at shutdown before their connections are aborted.",
     _positive_float),
]


class Options(ConfigFileOptions, AdminOptions, usage.Options):
    """The options of C{twistd chat}."""

    synopsis = "[--port ENDPOINT ...] [options]"
    longdesc = (
        "A chat server with rooms that people reach with telnet or netcat. "
        f"With no --port it listens on {DEFAULT_PORT}."
    )

    optParameters = [
        ["default-room", None, DEFAULT_ROOM,
         "The room every user is placed in at login (it always exists)."],
        ["motd", None, "",
         "Message of the day shown after login: the text itself, or the "
         "path of a UTF-8 file holding it."],
        ["server-name", None, DEFAULT_SERVER_NAME,
         "The name the server greets people with."],
        ["data-dir", None, None,
         "Directory for the server's state (database, admin host key), "
         "created if missing. [default: $XDG_DATA_HOME/chatservice or "
         "~/.local/share/chatservice]"],
        ["database", None, None,
         "The SQLite database of accounts, history, topics and offline "
         "messages, created if missing. [default: DATA-DIR/chat.db]"],
        ["history-limit", None, HISTORY_LIMIT,
         "Lines of history kept per room; older ones are pruned in the "
         "background.", _count],
        ["private-history-limit", None, PRIVATE_HISTORY_LIMIT,
         "Lines of private conversations kept per registered account (all its "
         "conversations together; guests' are never kept); older ones are "
         "pruned in the background.", _count],
        ["max-offline", None, MAX_OFFLINE,
         "Private messages kept for one registered user while they are "
         "offline; past it the sender is told the message was not kept.",
         _count],
        ["replay-lines", None, REPLAY_LINES,
         "Lines of history shown to someone entering a room.", _count],
        ["stats-interval", None, STATS_INTERVAL,
         "Seconds between two 'stats:' lines in the log (users, connections, "
         "rooms, traffic since the last line). 0 turns them off.", _seconds],
        ["metrics-port", None, None,
         "Serve /metrics (Prometheus), /healthz and /readyz over HTTP on this "
         "endpoint, for example tcp:9100 (127.0.0.1 only unless an interface "
         "is named) or unix:/run/chat-metrics.sock. Off unless given."],
        ["irc-ping-interval", None, PING_INTERVAL,
         "Seconds of silence from an IRC client before the server PINGs it.",
         _seconds],
        ["irc-ping-timeout", None, PING_TIMEOUT,
         "Seconds a PINGed IRC client has to answer before it is "
         "disconnected.", _positive_float],
        ["irc-password", None, None,
         "A password IRC clients must send with PASS before they register "
         "(a private IRC port); registered nicks then log in with SASL. "
         "Telnet and web users are not asked for it. Off unless given."],
        ["irc-opers", None, None,
         "A password file of IRC operators (the format of --admin-passwd: "
         "python -m chatservice.passwords add FILE NAME). 'OPER NAME PASSWORD' "
         "then makes an IRC user an operator, who may KILL; read again at "
         "every OPER. No operators unless given."],
        ["web-max-frame", None, MAX_FRAME,
         "Largest WebSocket message a web client may send, in bytes; a "
         "larger one closes its connection.", _length],
        ["log-format", None, "text",
         "'text' for twistd's usual lines, 'json' for one JSON object per "
         "line (time, level, namespace, text and the event's fields), for log "
         "shippers; either goes where twistd logs (--logfile, or standard "
         "output under -n).", _log_format],
        ["listen-backlog", None, L.LISTEN_BACKLOG,
         "Connections the kernel queues for each tcp, ssl or unix --port "
         "until the server accepts them (a --port with its own backlog= "
         "keeps it).", _length],
    ] + [[option, None, default, doc, coerce]
         for option, _, default, doc, coerce in LIMIT_OPTIONS]

    optFlags = [
        ["no-database", None,
         "Keep nothing across restarts: no accounts (everyone is a guest), "
         "no history, no offline messages."],
        ["irc-history-notices", None,
         "On JOIN, show IRC clients without the batch capability the "
         "channel's last lines as NOTICEs (off: only clients with batch get "
         "the replay; any client can ask with CHATHISTORY)."],
    ]

    def __init__(self) -> None:
        super().__init__()
        self["ports"] = []
        self["irc-ports"] = []
        self["web-ports"] = []
        self["web-allow-origins"] = []

    @staticmethod
    def _check_endpoint(option: str, description: str) -> None:
        try:
            # A reactor is not needed to parse a description; this catches
            # typos and missing certificate files before anything starts.
            endpoints.serverFromString(None, description)
        except Exception as e:
            raise usage.UsageError(
                f"{option} {description!r} is not a usable endpoint ({e}). "
                "Examples: tcp:8123, tcp:8123:interface=127.0.0.1, unix:/tmp/chat.sock"
            ) from None

    def opt_irc_port(self, description: str) -> None:
        """Add an IRC listening endpoint; replaced by the help text below."""
        self._check_endpoint("--irc-port", description)
        self["irc-ports"].append(description)

    opt_irc_port.__doc__ = (
        "Where IRC clients connect, as a Twisted endpoint description: "
        "tcp:6667, tcp:6667:interface=127.0.0.1, ssl:6697:privateKey=key.pem:"
        "certKey=cert.pem. May be given more than once. [default: no IRC]"
    )

    def opt_web_port(self, description: str) -> None:
        """Add a web listening endpoint; replaced by the help text below."""
        self._check_endpoint("--web-port", description)
        self["web-ports"].append(description)

    opt_web_port.__doc__ = (
        "Where the web page (/) and its WebSocket (/ws) are served, as a Twisted "
        "endpoint description: tcp:8080, ssl:8443:privateKey=key.pem:certKey=cert.pem "
        "(use ssl: in production: passwords travel in the WebSocket). May be given "
        "more than once. [default: no web page]"
    )

    def opt_web_allow_origin(self, origin: str) -> None:
        """Allow a page origin; replaced by the help text below."""
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in (
                "", "/") or parts.query or parts.fragment:
            raise usage.UsageError(
                f"--web-allow-origin {origin!r} is not an origin: give a scheme and "
                "host (and port), such as https://chat.example.org")
        self["web-allow-origins"].append(origin.rstrip("/"))

    opt_web_allow_origin.__doc__ = (
        "Accept WebSockets from pages at this origin (https://chat.example.org) "
        "besides the server's own page. May be given more than once."
    )

    def opt_port(self, description: str) -> None:
        """Add a listening endpoint; replaced by the help text below."""
        self._check_endpoint("--port", description)
        self["ports"].append(description)

    opt_port.__doc__ = (
        "Where to listen, as a Twisted endpoint description: tcp:8123, "
        "tcp:8123:interface=127.0.0.1, unix:/path/to/socket, or "
        "ssl:8124:privateKey=key.pem:certKey=cert.pem. May be given more "
        f"than once. [default: {DEFAULT_PORT}]"
    )
    opt_p = opt_port

    def parseOptions(self, options=None) -> None:
        """
        Parse the command line.  Under C{twistd} (when these options have a
        parent), a usage error is printed and ends the process with status
        1: Twisted before 26.10 (all that Python 3.9 and PyPy can install)
        printed it but exited 0, so init systems saw a failed start as a
        success.  Used directly, a usage error is raised as usual.
        """
        try:
            super().parseOptions(options)
        except usage.UsageError as e:
            if getattr(self, "parent", None) is None:
                raise
            print(f"{self}\ntwistd chat: {e}", file=sys.stderr)
            raise SystemExit(1) from None

    def postOptions(self) -> None:
        """
        Take the settings file's values, apply defaults and check the
        values that depend on each other.
        """
        self.apply_config_file()
        if not self["ports"]:
            self["ports"] = [DEFAULT_PORT]
        room = clean_room_name(self["default-room"])
        problem = check_room_name(room, self["max-room-name-length"])
        if problem:
            raise usage.UsageError(f"--default-room {self['default-room']!r}: {problem}")
        self["default-room"] = room
        motd = self["motd"]
        self["motd-file"] = os.path.abspath(motd) if os.path.isfile(motd) else None
        self["motd"] = self._read_motd(motd)
        self["data-dir"] = os.path.abspath(
            os.path.expanduser(self["data-dir"] or default_data_dir()))
        if self["database"]:
            self["database"] = os.path.abspath(os.path.expanduser(self["database"]))
        else:
            self["database"] = default_database_path(self["data-dir"])
        self.check_admin_options()
        self._check_irc_opers()
        self._check_metrics_port()
        parent = getattr(self, "parent", None)
        if self["log-format"] == "json" and parent is not None and parent.get("syslog"):
            raise usage.UsageError(
                "--log-format json writes where --logfile says; twistd's --syslog "
                "sends its own text lines to syslog instead. Drop one of them.")

    def _check_irc_opers(self) -> None:
        for option in ("irc-opers", "irc-password"):
            if self[option] and not self["irc-ports"]:
                raise usage.UsageError(
                    f"--{option} only makes sense with --irc-port (for example "
                    "--irc-port tcp:6667)")
        path = self["irc-opers"]
        if not path:
            return
        self["irc-opers"] = path = os.path.abspath(os.path.expanduser(path))
        try:
            read_password_file(path)
        except PasswordFileError as e:
            raise usage.UsageError(
                f"--irc-opers: {e}. Create it with: python -m chatservice.passwords "
                f"add {path} NAME") from None

    def _check_metrics_port(self) -> None:
        if self["metrics-port"] is None:
            return
        description, _ = normalize_admin_endpoint(
            self["metrics-port"], "--metrics-port", "tcp:9100")
        try:
            endpoints.serverFromString(None, description)
        except Exception as e:
            raise usage.UsageError(
                f"--metrics-port {self['metrics-port']!r} is not a usable endpoint "
                f"({e}). Examples: tcp:9100, unix:/run/chat-metrics.sock") from None
        self["metrics-port"] = description

    @staticmethod
    def _read_motd(value: str) -> str:
        if not os.path.isfile(value):
            return value.replace("\\n", "\n")
        try:
            return read_motd_file(value)
        except ValueError as e:
            raise usage.UsageError(f"--motd: {e}") from None


def twistd_user(options: Options) -> Optional[Tuple[Optional[int], Optional[int]]]:
    """
    The (uid, gid) that C{twistd} switches to between C{makeService} and
    C{startService} (its C{--uid} and C{--gid}, when started as root), or
    L{None} when it will not switch.
    """
    parent = getattr(options, "parent", None)
    if parent is None or not hasattr(os, "geteuid") or os.geteuid() != 0:
        return None
    uid, gid = parent.get("uid"), parent.get("gid")
    if uid is None and gid is None:
        return None
    if gid is None:  # as twistd does: the user's own group
        import pwd

        gid = pwd.getpwuid(uid).pw_gid
    return uid, gid


@contextlib.contextmanager
def running_as(user: Optional[Tuple[Optional[int], Optional[int]]]) -> Iterator[None]:
    """
    Run the block with the effective uid and gid of C{user} (from
    L{twistd_user}; L{None}: as is), so that the files it creates belong
    to the user the server will run as, and what that user cannot use
    fails here, in one line.
    """
    if user is None:
        yield
        return
    uid, gid = user
    saved_uid, saved_gid = os.geteuid(), os.getegid()
    if gid is not None:
        os.setegid(gid)
    if uid is not None:
        os.seteuid(uid)
    try:
        yield
    finally:
        os.seteuid(saved_uid)
        os.setegid(saved_gid)


def makeService(options: Options, reactor=None) -> LoggingRoot:
    """
    Build the chat: a L{ChatService} owning the L{Chat}, and one listening
    service per C{--port} with the line protocol's L{ChatFactory} and per
    C{--irc-port} with the IRC front end's L{IRCFactory}.  The
    chat and the factory are the returned service's C{chat} and
    C{factory} attributes.

    Everything that can stop the server from starting is checked here, so
    that it is one line on the terminal (C{twistd chat: ...}, exit status
    1) before C{twistd} forks into a daemon: the admin host key, then the
    database (L{ChatStore.check}), both as the user C{twistd --uid} will
    run the server as.  Nothing is started, locked or opened here: that
    waits for C{startService}, in the process that serves.
    """
    if reactor is None:
        from twisted.internet import reactor
    limits = Limits(**{field: options[option] for option, field, *_ in LIMIT_OPTIONS})
    host_key = None
    store, topics = None, {}
    rooms: Sequence[RoomRecord] = ()
    with running_as(twistd_user(options)):
        if options.get("admin-port"):
            try:
                host_key = load_or_create_host_key(options["data-dir"])
            except AdminSetupError as e:
                raise SystemExit(f"twistd chat: {e}") from None
        if not options["no-database"]:
            store = ChatStore(options["database"], reactor,
                              history_limit=options["history-limit"],
                              max_offline=options["max-offline"],
                              private_history_limit=options["private-history-limit"])
            try:
                loaded = store.check()
                topics, rooms = loaded.topics, loaded.rooms
            except StoreError as e:
                raise SystemExit(f"twistd chat: {e}") from None
    accounts, recent = (None, None) if store is None else remember(
        store, reactor, options["replay-lines"], limits=limits)
    chat = Chat(
        clock=reactor,
        server_name=options["server-name"],
        default_room=options["default-room"],
        motd=options["motd"],
        limits=limits,
        store=store,
        stored_topics=topics,
        stored_rooms=rooms,
        replay_lines=options["replay-lines"],
        accounts=accounts,
        recent=recent,
    )
    factory = ChatFactory(chat)
    twistd_options = getattr(options, "parent", None)
    top = LoggingRoot((lambda: json_observer(twistd_log_file(twistd_options)))
                      if options["log-format"] == "json" else None)
    top.chat = chat  # type: ignore[attr-defined]
    top.factory = factory  # type: ignore[attr-defined]
    top.store = store  # type: ignore[attr-defined]
    reloader = Reloader(
        chat, motd_path=options.get("motd-file"), config=options.config_source,
        live={option: field for option, field, *_ in LIMIT_OPTIONS},
        admin_files=[(option, options[option]) for option in ("admin-keys", "admin-passwd")
                     if options.get("admin-port") and options.get(option)]
        + ([("irc-opers", options["irc-opers"])] if options.get("irc-opers") else []))
    ChatService(chat, reactor, reloader=reloader).setServiceParent(top)
    if options["stats-interval"]:
        StatsLogService(chat, options["stats-interval"]).setServiceParent(top)
    for description in options["ports"]:
        endpoint = endpoints.serverFromString(
            reactor, with_backlog(description, options["listen-backlog"]))
        ListeningService(endpoint, factory, description).setServiceParent(top)
    if options["irc-ports"]:
        irc_factory = IRCFactory(chat, ping_interval=options["irc-ping-interval"],
                                 ping_timeout=options["irc-ping-timeout"],
                                 history_notices=bool(options["irc-history-notices"]),
                                 opers=PasswordFileChecker(options["irc-opers"], reactor)
                                 if options.get("irc-opers") else None,
                                 server_password=options.get("irc-password") or None)
        top.irc_factory = irc_factory  # type: ignore[attr-defined]
        for description in options["irc-ports"]:
            endpoint = endpoints.serverFromString(
                reactor, with_backlog(description, options["listen-backlog"]))
            ListeningService(endpoint, irc_factory, description,
                             option="--irc-port").setServiceParent(top)
    if options["web-ports"]:
        from .frontends.web.factory import WebChatFactory
        from .frontends.web.resources import make_site
        web_factory = WebChatFactory(chat, options["web-allow-origins"],
                                     max_frame=options["web-max-frame"])
        top.web_factory = web_factory  # type: ignore[attr-defined]
        site = make_site(web_factory)
        for description in options["web-ports"]:
            endpoint = endpoints.serverFromString(
                reactor, with_backlog(description, options["listen-backlog"]))
            ListeningService(endpoint, site, description,
                             option="--web-port").setServiceParent(top)
    try:
        admin = make_admin_service(options, chat, reactor, host_key=host_key)
    except AdminSetupError as e:
        raise SystemExit(f"twistd chat: {e}") from None
    if admin is not None:
        admin.setServiceParent(top)
    if options.get("metrics-port"):
        frontends = ("line",) + (("irc",) if options["irc-ports"] else ()) + (
            ("web",) if options["web-ports"] else ())
        MetricsService(endpoints.serverFromString(reactor, options["metrics-port"]),
                       options["metrics-port"], chat, frontends).setServiceParent(top)
    return top
