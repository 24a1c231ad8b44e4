"""
IRCv3 C{draft/chathistory}: the C{CHATHISTORY} command (LATEST, BEFORE,
AFTER, AROUND, BETWEEN, TARGETS) over the rooms' stored lines, answered as
a C{chathistory} batch with server-time and msgid tags, and its errors as
C{FAIL CHATHISTORY ...} standard replies.

Messages are referred to by C{timestamp=} (server-time, to the
millisecond) or C{msgid=} (L{chatservice.frontends.irc.wire.message_id}).
A nick target is the private conversation with that nick (online or not),
as the store keeps it for the account the client is logged in to; a guest
has none (an empty batch).  TARGETS lists the channels one is in and the
nicks one has a conversation with, together, by the time of their last line.
"""

from typing import Any, Callable, List, Optional, Tuple

from twisted.internet import defer

from ...core import errors
from ...core.text import check_name, name_key, normalize, sanitize
from .base import ConnectionBase
from .wire import format_time, message, millis, msgid_micros, parse_time

#: Most messages one CHATHISTORY answer holds (RPL_ISUPPORT CHATHISTORY).
CHATHISTORY_MAX = 100
#: How many of a room's last lines CHATHISTORY looks through (as /history's most).
CHATHISTORY_SCAN = 500
#: The subcommands, and how many parameters each needs after its name.
SUBCOMMANDS = {"LATEST": 3, "BEFORE": 3, "AFTER": 3, "AROUND": 3, "BETWEEN": 4,
               "TARGETS": 3}
#: Stored line kinds that are messages (topic changes are events, left out).
MESSAGE_KINDS = ("say", "act")

#: A reference: its unit ("ms" or "us") and value, or None for C{*}.
Ref = Optional[Tuple[str, int]]


def parse_ref(raw: str) -> Tuple[bool, Ref]:
    """C{timestamp=...}, C{msgid=...} or C{*}: (valid, reference)."""
    if raw == "*":
        return True, None
    kind, _, value = raw.partition("=")
    if kind == "timestamp":
        ms = parse_time(value)
        return ms is not None, ("ms", ms) if ms is not None else None
    if kind == "msgid":
        us = msgid_micros(value)
        return us is not None, ("us", us) if us is not None else None
    return False, None


def position(line, ref: Tuple[str, int]) -> int:
    """Where C{line} is compared with C{ref}: its time in C{ref}'s unit, minus C{ref}."""
    unit, value = ref
    when = millis(line.when) if unit == "ms" else int(round(line.when * 1e6))
    return when - value


def select(lines: list, sub: str, refs: List[Ref], limit: int) -> list:
    """The lines (oldest first) C{sub} with C{refs} and C{limit} picks, oldest first."""
    if sub == "LATEST":
        if refs[0] is not None:
            lines = [line for line in lines if position(line, refs[0]) > 0]
        return lines[-limit:]
    ref = refs[0]
    assert ref is not None
    if sub == "BEFORE":
        return [line for line in lines if position(line, ref) < 0][-limit:]
    if sub == "AFTER":
        return [line for line in lines if position(line, ref) > 0][:limit]
    if sub == "AROUND":
        before = [line for line in lines if position(line, ref) < 0][-(limit // 2):] \
            if limit // 2 else []
        after = [line for line in lines if position(line, ref) >= 0]
        return before + after[:limit - len(before)]
    end = refs[1]
    assert end is not None
    inside = [line for line in lines if position(line, ref) * position(line, end) < 0]
    return inside[:limit] if micros(ref) <= micros(end) else inside[-limit:]


def micros(ref: Tuple[str, int]) -> int:
    """A reference's time in microseconds."""
    unit, value = ref
    return value * 1000 if unit == "ms" else value


class ChatHistoryCommands(ConnectionBase):
    """CHATHISTORY (mixed into the protocol)."""

    def fail(self, code: str, *params: str) -> None:
        """A C{FAIL CHATHISTORY code params... :text} standard reply."""
        self.send_line(message(self.server, "FAIL", "CHATHISTORY", code, *params))

    def irc_CHATHISTORY(self, msg) -> None:
        """CHATHISTORY LATEST|BEFORE|AFTER|AROUND|BETWEEN target refs... limit, or TARGETS."""
        params = msg.params
        sub = params[0].upper() if params else ""
        if sub not in SUBCOMMANDS:
            self.fail("INVALID_PARAMS", sub or "*", "Unknown subcommand: use LATEST, BEFORE, "
                      "AFTER, AROUND, BETWEEN or TARGETS")
            return
        if len(params) - 1 < SUBCOMMANDS[sub]:
            self.fail("NEED_MORE_PARAMS", sub, "Missing parameters")
            return
        args = params[1:]
        if sub == "TARGETS":
            self.history_targets(args)
            return
        target, raw_refs, raw_limit = args[0], args[1:-1], args[-1]
        refs: List[Ref] = []
        for raw in raw_refs:
            valid, ref = parse_ref(raw)
            if not valid or (ref is None and sub != "LATEST"):
                self.fail("INVALID_PARAMS", sub, raw, "Use timestamp=YYYY-MM-DDThh:mm:ss.sssZ "
                          "or msgid=ID" + (" or *" if sub == "LATEST" else ""))
                return
            refs.append(ref)
        if not raw_limit.isdigit() or not 0 < int(raw_limit):
            self.fail("INVALID_PARAMS", sub, raw_limit, "The limit must be a positive number")
            return
        limit = min(int(raw_limit), CHATHISTORY_MAX)
        if not target.startswith("#"):
            self.private_chathistory(target, sub, refs, limit)
            return
        room = self.find_channel(target)
        if room is None or self.user not in room:
            self.fail("INVALID_TARGET", sub, target,
                      "No such channel, or you are not in it: JOIN it first")
            return
        user = self.user
        self.read_history(lambda: self.chat.history(room, CHATHISTORY_SCAN, user), target,
                          lambda lines: select([line for line in lines
                                                if line.kind in MESSAGE_KINDS],
                                               sub, refs, limit), sub)

    def private_chathistory(self, target: str, sub: str, refs: List[Ref], limit: int) -> None:
        """
        The private conversation with the nick C{target}: read for a
        logged-in user (whether the nick is online, registered or gone);
        a guest's conversations are not kept (an empty batch).
        """
        user = self.user
        if self.chat.account_of(user) is None:
            if name_key(target) not in self.chat.users and not self.chat.is_registered(target):
                self.fail("INVALID_TARGET", sub, target, "No such nick or channel")
                return
            self.send_history(target, [])
            return
        if check_name(normalize(sanitize(target))) is not None:
            self.fail("INVALID_TARGET", sub, target, "No such nick or channel")
            return
        self.read_history(lambda: self.chat.private_history(user, target, CHATHISTORY_SCAN),
                          target, lambda lines: select(lines, sub, refs, limit), sub,
                          private=True)

    def read_history(self, read: Callable[[], defer.Deferred], target: str,
                     pick: Callable[[list], list], sub: str, private: bool = False) -> None:
        """
        Read stored lines with C{read} (a channel's, or with C{private} a
        conversation's), then send what C{pick} makes of them; while it
        reads, the connection's later commands wait.
        """
        try:
            d = read()
        except errors.Busy as e:
            self.fail("MESSAGE_ERROR", sub, target, str(e))
            return
        held = self.hold_input()

        def show(lines) -> None:
            self.release_input(held, lambda: self.send_history(target, pick(lines), private))

        def failed(failure) -> None:
            self.release_input(held, lambda: self._check_failed(failure))

        d.addCallbacks(show, failed)

    def send_history(self, target: str, lines: list, private: bool = False) -> None:
        """
        C{lines} (of a channel, or with C{private} of a conversation) as a
        C{chathistory} batch for C{target} (plain lines without C{batch}).
        """
        renderer = self.renderer
        render: Callable[[Any, Optional[str]], bytes] = (
            renderer.private_history if private
            else lambda line, batch: renderer.history(line, target, batch))
        if "batch" not in self.caps:
            self.send_line(b"".join(render(line, None) for line in lines))
            return
        self.batches += 1
        ref = f"h{self.batches}"
        out = [message(self.server, "BATCH", f"+{ref}", "chathistory", target)]
        out += [render(line, ref) for line in lines]
        out.append(message(self.server, "BATCH", f"-{ref}"))
        self.send_line(b"".join(out))

    def history_targets(self, args: List[str]) -> None:
        """
        CHATHISTORY TARGETS timestamp=a timestamp=b limit: your channels and
        private conversations with lines between, by their last line's time.
        """
        refs = [parse_ref(raw) for raw in args[:2]]
        if not all(valid and ref is not None and ref[0] == "ms" for valid, ref in refs) \
                or not args[2].isdigit():
            self.fail("INVALID_PARAMS", "TARGETS", args[0],
                      "TARGETS takes two timestamp= references and a limit")
            return
        (_, low), (_, high) = refs
        assert low is not None and high is not None
        start, end = sorted((low[1], high[1]))
        limit = min(int(args[2]) or CHATHISTORY_MAX, CHATHISTORY_MAX)
        rooms = list(self.user.rooms.values())
        found: List[Tuple[int, str]] = []
        try:
            # Both bounds widened by a millisecond: the times are compared in
            # whole milliseconds below.
            private = self.chat.private_targets(self.user, (start - 1) / 1000.0,
                                                (end + 1) / 1000.0, CHATHISTORY_MAX)
        except errors.Busy as e:
            self.fail("MESSAGE_ERROR", "TARGETS", args[0], str(e))
            return
        held = self.hold_input()

        def conversations(targets) -> None:
            for peer, when in targets:
                stamp = millis(when)
                if start < stamp < end:
                    found.append((stamp, peer))

        def one(lines, room) -> None:
            stamps = [millis(line.when) for line in lines if line.kind in MESSAGE_KINDS]
            stamps = [stamp for stamp in stamps if start < stamp < end]
            if stamps:
                found.append((max(stamps), room.display))

        def answer() -> None:
            self.batches += 1
            ref = f"t{self.batches}"
            out = [message(self.server, "BATCH", f"+{ref}", "draft/chathistory-targets")]
            for stamp, name in sorted(found)[:limit]:
                out.append(message(self.server, "CHATHISTORY", "TARGETS", name,
                                   format_time(stamp / 1000.0), tags={"batch": ref}))
            out.append(message(self.server, "BATCH", f"-{ref}"))
            self.send_line(b"".join(out))

        def failed(failure) -> None:
            self.release_input(held, lambda: self._check_failed(failure))

        reads = [self.chat.history(room, CHATHISTORY_SCAN).addCallback(one, room)
                 for room in rooms]
        reads.append(private.addCallback(conversations))
        defer.gatherResults(reads, consumeErrors=True).addCallbacks(
            lambda _: self.release_input(held, answer), failed)

