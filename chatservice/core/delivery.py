"""
Fan-out: how a room's events reach its members.

Broadcasting is the hot path of the whole server.  Each room keeps a
L{DeliveryPlan}: its members' write callables grouped by renderer (one per
front end: the line protocol's, later IRC's and the web's) and by whether
the room is their current one.  A broadcast encodes the event once per
group and hands the same payload to every writer in it: no per-recipient
formatting, look-ups or logging.

The L{Outbox} gathers the events of one batch (one read from a client, as
the front end says with L{Outbox.batch}) so that a client sending many lines
at once costs each member one write per batch instead of one per line.  How
the events of a batch are put together is the renderer's business
(L{chatservice.core.interfaces.IRenderer.combine}): the line protocol
concatenates lines, a WebSocket front end can send one frame holding a list.
"""

from typing import Any, Callable, Dict, List, Optional, Tuple

#: A writer: takes one payload (bytes for the line protocol).
Writer = Callable[[Any], None]
#: One planned group: (encode, combine, focused, writers, writers as a dict,
#: whether its renderer echoes a sender's own lines).
_Group = Tuple[Callable[[Any, bool], Any], Callable[[List[Any]], Any], bool,
               Tuple[Writer, ...], Dict[Writer, None], bool]


class DeliveryPlan:
    """
    The writers of one room's members, grouped by (renderer, focused).

    @ivar groups: C{(renderer, focused) -> {write: None}}; dicts for O(1)
        removal, in order of arrival.
    """

    def __init__(self) -> None:
        self.groups: Dict[Tuple[Any, bool], Dict[Writer, None]] = {}
        self._plan: Optional[List[_Group]] = None

    def _group(self, client, focused: bool) -> Dict[Writer, None]:
        renderer = client.renderer
        key = (renderer, focused and renderer.distinguishes_focus)
        group = self.groups.get(key)
        if group is None:
            group = self.groups[key] = {}
        return group

    def add(self, client, focused: bool) -> None:
        """Plan deliveries to C{client}'s writer."""
        self._group(client, focused)[client.write] = None
        self._plan = None

    def remove(self, client, focused: bool, write: Optional[Writer] = None) -> None:
        """Stop deliveries to C{client}'s writer (or to C{write}, an old one)."""
        self._group(client, focused).pop(client.write if write is None else write, None)
        self._plan = None

    def steps(self) -> List[_Group]:
        """The groups that have members, ready for a broadcast."""
        plan = self._plan
        if plan is None:
            plan = self._plan = [
                (renderer.encode, renderer.combine, focused, tuple(writers), writers,
                 bool(getattr(renderer, "echoes_own_lines", False)))
                for (renderer, focused), writers in self.groups.items()
                if writers
            ]
        return plan

    def deliver(self, batch: List[tuple]) -> Tuple[int, int]:
        """
        Write a batch of C{(event, excluded writer or None, own line)}
        triples to the members, in order, and return the size of what was
        written and the number of writes.  Each event is encoded once per
        group; each member gets one write for the batch, without the events
        they are excluded from (but with their own lines, in a group whose
        renderer echoes them).  The counts are worked out per group, not
        per member.
        """
        written = writes = 0
        if len(batch) == 1:
            event, skip, own_line = batch[0]
            for encode, _, focused, writers, group, echoes in self.steps():
                data = encode(event, focused)
                if skip is None or (own_line and echoes) or skip not in group:
                    for write in writers:
                        write(data)
                    reached = len(writers)
                else:
                    for write in writers:
                        if write is not skip:
                            write(data)
                    reached = len(writers) - 1
                written += reached * len(data)
                writes += reached
            return written, writes
        for encode, combine, focused, writers, group, echoes in self.steps():
            datas = [encode(event, focused) for event, _, _ in batch]
            blob = combine(datas)
            skipped = [None if own_line and echoes else skip for _, skip, own_line in batch]
            # Senders must not get their own lines back (unless this front
            # end echoes them): they get the batch without them (usually
            # nothing, when the batch is all theirs).
            own = {}
            for sender in set(skipped):
                if sender is not None and sender in group:
                    mine = [data for data, skip in zip(datas, skipped) if skip is not sender]
                    own[sender] = combine(mine) if mine else None
            if own:
                for write in writers:
                    data = own.get(write, blob)
                    if data:
                        write(data)
                        written += len(data)
                writes += len(writers) - sum(1 for data in own.values() if not data)
            else:
                for write in writers:
                    write(blob)
                written += len(writers) * len(blob)
                writes += len(writers)
        return written, writes


class Outbox:
    """
    Gathers the room events of one batch, so that a client sending many
    lines at once costs each member one write per batch instead of one per
    line.

    Only one room's events are gathered at a time, and anything else that
    writes to a client (a reply, a private message, a membership change in
    that room, an event in another room) flushes them first: every member
    still sees everything in the order it happened.

    @ivar gathering: true during a batch.
    @ivar room: the room whose events are waiting, or L{None}.
    @ivar events: the waiting C{(event, excluded writer, own line)} triples.
    @ivar bytes_relayed: the size of what was written to room members so far.
    @ivar deliveries: the writes to room members so far (one per member per
        batch, counted once per batch).
    """

    def __init__(self) -> None:
        self.gathering = False
        self._nested = 0
        self.room: Any = None
        self.events: List[tuple] = []
        self.bytes_relayed = 0
        self.deliveries = 0

    def batch(self) -> "Outbox":
        """
        Gather the room events caused inside the C{with} block and deliver
        them at its end (a front end wraps one read from a client in it).
        Nested batches belong to the outermost one.
        """
        # The outbox is its own context manager: a generator-based one
        # cost five Python calls per read.
        return self

    def __enter__(self) -> None:
        if self.gathering:
            self._nested += 1
        else:
            self.gathering = True

    def __exit__(self, *exc_info: Any) -> None:
        if self._nested:
            self._nested -= 1
        else:
            self.gathering = False
            self.flush()

    def post(self, room, event, skip: Optional[Writer], own_line: bool = False) -> None:
        """
        Deliver C{event} to C{room}'s members but the writer C{skip} (whose
        own line it is, if C{own_line}): at once, or with the room's other
        events at the end of the batch.
        """
        if self.gathering:
            if self.room is not room:
                self.flush()
                self.room = room
            self.events.append((event, skip, own_line))
        else:
            written, writes = room.plan.deliver([(event, skip, own_line)])
            self.bytes_relayed += written
            self.deliveries += writes

    def settle(self, room=None) -> None:
        """
        Deliver the waiting events now (only if they are C{room}'s, when a
        room is given): its membership is about to change, or something is
        about to be written outside the batch.
        """
        if self.room is not None and (room is None or self.room is room):
            self.flush()

    def flush(self) -> None:
        """Deliver the waiting events, if any."""
        room = self.room
        if room is not None:
            self.room = None
            batch, self.events = self.events, []
            written, writes = room.plan.deliver(batch)
            self.bytes_relayed += written
            self.deliveries += writes
