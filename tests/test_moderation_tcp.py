"""
Moderated and invite-only rooms over real TCP: the service from
C{twistd chat}'s options on 127.0.0.1, with several line-protocol users.
"""

import pytest_twisted

from netclient import wait_until


@pytest_twisted.inlineCallbacks
def test_moderated_room_over_tcp(chat):
    """In a +m room only the operator and the voiced speak; the others are told why."""
    server = yield chat()
    alice = yield server.connect("alice")
    bob = yield server.connect("bob")
    carol = yield server.connect("carol")
    alice.say("/join stage")
    yield alice.expect("-- You are alone in #stage.")
    bob.say("/join stage")
    carol.say("/join stage")
    yield bob.expect(lambda line: line.startswith("-- Here with you: @alice"))
    yield carol.expect(lambda line: line.startswith("-- Here with you: @alice"))
    alice.say("/mode +m", "/voice bob")
    yield carol.expect("-- alice made the room moderated in #stage")
    yield carol.expect("-- alice gave bob a voice in #stage")
    carol.say("may I?")
    yield carol.expect("!! #stage is moderated: only its operators and voiced members can "
                       "speak. Ask an operator to /voice you.")
    bob.say("thanks for having me")
    alice.say("welcome, bob")
    yield carol.expect("<bob> thanks for having me")
    yield carol.expect("<alice> welcome, bob")
    yield alice.expect("<bob> thanks for having me")
    assert not any("may I?" in line for line in alice.lines + bob.lines)


@pytest_twisted.inlineCallbacks
def test_invite_only_room_over_tcp(chat):
    """A +i room keeps out the uninvited; an invite lets one in; a kick puts them out again."""
    server = yield chat()
    alice = yield server.connect("alice")
    bob = yield server.connect("bob")
    carol = yield server.connect("carol")
    alice.say("/join club", "/mode +i")
    yield alice.expect("-- alice made the room invite-only in #club")
    bob.say("/join club")
    yield bob.expect("!! #club is invite-only: ask an operator to /invite you.")
    alice.say("/invite bob")
    yield bob.expect("-- alice invites you to #club: type /join #club to enter")
    bob.say("/join club")
    yield bob.expect("-> You joined #club")
    yield alice.expect("-> bob joined #club")
    carol.say("/join club")
    yield carol.expect("!! #club is invite-only: ask an operator to /invite you.")
    alice.say("/kick bob not tonight")
    yield bob.expect("<- bob was kicked out of #club by alice (not tonight)")
    yield bob.expect(lambda line: line.startswith("-- You are now talking in #lobby."))
    bob.say("/join club")
    yield bob.expect("!! #club is invite-only: ask an operator to /invite you.")
    rooms = server.factory.chat.rooms
    yield wait_until(lambda: [u.name for u in rooms["club"].members.values()] == ["alice"])
