"""
Probes of issue 10 over real TCP: commands whose cost grew with the server
(/rooms with thousands of rooms, renames in a room of hundreds, lines to a
big room), sent at the rate flood control allows, while another user's
/ping must keep coming back quickly.

The server and every client share this process and its reactor, so a
round trip here also pays for the clients' reading: the bound is generous.
"""

import re
import time

import pytest_twisted
from twisted.internet import defer, task

from conftest import FakeClient
from netclient import connect_client

#: The longest a /ping may take while the abuse goes on.
PING_BOUND = 1.0
#: Lines each abuser sends at once (flood control allows 20, the name took one)...
BURST = 18
#: ...then this many a second (flood control allows 5)...
PER_SECOND = 4
#: ...for this long.
SECONDS = 1.5


def sleep(seconds: float) -> defer.Deferred:
    """Fire after C{seconds} on the reactor."""
    from twisted.internet import reactor

    return task.deferLater(reactor, seconds, lambda: None)


@defer.inlineCallbacks
def ping_while(client, running):
    """Ping every quarter second while C{running()}; return the round trips."""
    trips = []
    while running():
        start = time.monotonic()
        yield client.sync(f"p{len(trips)}", timeout=10)
        trips.append(time.monotonic() - start)
        yield sleep(0.25)
    return trips


@defer.inlineCallbacks
def at_flood_rate(clients, line):
    """
    Have each client send C{line(client, n)} for n = 0, 1, ...: L{BURST} at
    once, then L{PER_SECOND} a second for L{SECONDS}; return how many each sent.
    """
    for client in clients:
        client.say(*[line(client, n) for n in range(BURST)])
    sent = BURST
    for _ in range(int(SECONDS * PER_SECOND)):
        yield sleep(1 / PER_SECOND)
        for client in clients:
            client.say(line(client, sent))
        sent += 1
    return sent


@defer.inlineCallbacks
def run_abuse(pinger, clients, line):
    """Run L{at_flood_rate} while the pinger pings; return (lines sent each, round trips)."""
    done = []
    pings = ping_while(pinger, lambda: not done)
    sent = yield at_flood_rate(clients, line)
    done.append(True)
    trips = yield pings
    return sent, trips


@defer.inlineCallbacks
def crowd(server, count, prefix="m"):
    """Log C{count} TCP clients in at once (into the default room)."""
    clients = yield defer.gatherResults(
        [connect_client(server.port, f"{prefix}{n:03d}", timeout=20) for n in range(count)])
    server.clients.extend(clients)
    return clients


@pytest_twisted.inlineCallbacks
def test_rooms_with_19000_rooms_at_the_flood_rate(chat):
    """
    Ten users send /rooms (and /rooms *5*) at the flood rate on a server of
    19,000 rooms (as 1,000 users made in issue 10): every one is answered in
    full, and pings stay quick.  (It used to sort every room each time: 20 to
    60 ms a call, seconds of stall.)
    """
    server = yield chat("--no-database", "--max-rooms", "0", "--max-rooms-per-user", "0")
    factory = server.factory
    makers = [FakeClient(factory, host=f"10.0.0.{n}") for n in range(10)]
    for n, maker in enumerate(makers):
        maker.send(f"maker{n}")
    for n in range(18999):
        factory.chat.join(makers[n % 10].user, f"r{n:05d}")
    for maker in makers:
        maker.transport.clear()
    assert len(factory.chat.rooms) == 19000
    try:
        pinger = yield server.connect("pinger")
        abusers = []
        for n in range(10):
            abusers.append((yield server.connect(f"abuser{n}")))

        def line(client, n):
            return "/rooms" if abusers.index(client) < 5 else "/rooms *5*"

        sent, trips = yield run_abuse(pinger, abusers, line)
        for client in abusers:
            yield client.sync("end", timeout=20)
    finally:
        for maker in makers:  # not over TCP: the server cannot close them
            maker.lose()
    assert trips and max(trips) < PING_BOUND, trips
    for n, client in enumerate(abusers):
        lines = client.lines
        assert not [l for l in lines if l.startswith("!!")], lines[-5:]
        assert lines.count("-- Type /join ROOM to enter one, or to create a new one.") == sent
        if n < 5:
            assert lines.count("-- 19,000 rooms:") == sent
            assert lines.count("--   #lobby (21 users) (current)") == sent
            assert len([l for l in lines if l.startswith("--   #r")]) == 99 * sent
            assert len([l for l in lines if l.startswith(
                "--   ... and 18,900 more: type /rooms PATTERN to narrow it down")]) == sent
        else:
            assert lines.count(
                "-- Rooms whose names match *5*: 271 among the first 1,000 of the "
                "19,000 rooms") == sent
            assert len([l for l in lines if l.startswith("--   #r")]) == 100 * sent
            assert lines.count("--   The search stopped after 1,000 rooms: put more "
                               "letters before the first * to search them all.") == sent


@pytest_twisted.inlineCallbacks
def test_join_past_max_rooms_over_tcp(chat):
    """Past --max-rooms a new room is refused with the reason and what to type."""
    server = yield chat("--no-database", "--max-rooms", "2")
    alice = yield server.connect("alice")
    alice.say("/join games", "/join music")
    yield alice.expect("-> You joined #games")
    line = yield alice.expect("!!")
    assert line == ("!! #music cannot be created: the server already has 2 rooms, the most "
                    "it allows. Join an existing room instead: type /rooms to see them.")


def renames_told(lines):
    """How many renames C{lines} tell of, batched or not, and in how many lines."""
    count = notices = 0
    for line in lines:
        if " is now known as " in line and not line.startswith("-- You are"):
            notices += 1
            count += line.count(" is now known as ")
            more = re.search(r" and (\d+) others? renamed in ", line)
            if more:
                count += int(more.group(1))
    return count, notices


@pytest_twisted.inlineCallbacks
def test_renamers_in_a_room_of_hundreds(chat):
    """
    Five members of a 200-member room rename at the flood rate: each gets 3
    renames and then refusals saying how long to wait, the others hear of
    the 15 renames in a batched line or two, and pings stay quick.  (Each
    rename used to be a line to every member, with no limit.)
    """
    server = yield chat("--no-database", "--max-per-address", "0",
                        "--busy-room-interval", "0.5")
    members = yield crowd(server, 200)
    pinger = yield server.connect("pinger")
    renamers = members[:5]
    yield sleep(0.7)  # the batched notice of everyone's arrival goes out

    def line(client, n):
        return f"/nick r{renamers.index(client)}x{n}"

    sent, trips = yield run_abuse(pinger, renamers, line)
    yield sleep(0.7)  # the batched notice of the renames goes out
    yield pinger.sync("end")
    assert trips and max(trips) < PING_BOUND, trips
    for client in renamers:
        yield client.sync("end")
        mine = [l for l in client.lines if "You are now known as" in l
                or "changing your name too often" in l]
        assert len(mine) == sent
        assert all("You are now known as" in l for l in mine[:3]), mine[:4]
        assert all(re.fullmatch(
            r"!! You are changing your name too often \(3 times at once, then once every "
            r"10 seconds\)\. Wait \d+ seconds?, then type /nick NEWNAME again\.", l)
            for l in mine[3:]), mine[3:5]
    for observer in (pinger, members[100], members[199]):
        count, notices = renames_told(observer.lines)
        assert count == 15, observer.lines[-5:]
        assert notices <= 4


@pytest_twisted.inlineCallbacks
def test_talkers_in_a_busy_room(chat):
    """
    Ten members of a 200-member room talk at the flood rate: the room takes
    100 lines a second in all (--busy-room-deliveries 20,000), refuses the
    rest with a line saying so, and pings stay quick.
    """
    server = yield chat("--no-database", "--max-per-address", "0")
    members = yield crowd(server, 200)
    pinger = yield server.connect("pinger")
    talkers = members[:10]
    start = time.monotonic()

    def line(client, n):
        return f"t{talkers.index(client)} line {n}"

    sent, trips = yield run_abuse(pinger, talkers, line)
    elapsed = time.monotonic() - start
    for client in talkers:
        yield client.sync("end")
    yield pinger.sync("end")
    assert trips and max(trips) < PING_BOUND, trips
    heard = [l for l in pinger.lines if re.fullmatch(r"<m00\d> t\d line \d+", l)]
    refused = 0
    for n, client in enumerate(talkers):
        busy = [l for l in client.lines if l.startswith("!! #lobby is busy: with 201 members")]
        said = [l for l in heard if l.startswith(f"<m00{n}> ")]
        assert len(busy) + len(said) == sent, (n, len(busy), len(said))
        refused += len(busy)
    # 20,000 deliveries a second at 201 members: 99 lines at once, then 99 a second
    assert refused > 0
    assert len(heard) <= 100 + 100 * elapsed
