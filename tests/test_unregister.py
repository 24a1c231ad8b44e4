"""
/unregister: a user gives up a registered name, over real TCP against the
real service and store (conftest's C{chat}): the password is checked, the
name is free afterwards, founders hand their rooms on first, and rooms
forget the account as a kept operator.
"""

import pytest_twisted

from dbfile import query

PASSWORD = "Zebra-Quartz-417"
FAST_RETRY = ("--password-retry-delay", "0.05")


@pytest_twisted.inlineCallbacks
def test_unregister_checks_the_password_and_frees_the_name(chat, tmp_path):
    running = yield chat(*FAST_RETRY)
    alice = yield running.connect("alice")
    bob = yield running.connect("bob")
    alice.say(f"/register {PASSWORD}")
    yield alice.expect("is now registered to you")
    bob.say("/unregister whatever")  # a guest
    yield bob.expect("The name bob is not registered, so there is nothing to give up.")
    alice.say("/unregister")
    yield alice.expect("/unregister PASSWORD")  # the usage
    alice.say("/unregister Wrong-Guess-639")
    yield alice.expect("That is not your password.")
    alice.say(f"/unregister {PASSWORD}")
    yield alice.expect("The name alice is no longer registered: you are a guest now")
    alice.say("/unregister " + PASSWORD)
    yield alice.expect("The name alice is not registered")
    alice.say("/quit")
    yield alice.wait_closed()
    again = yield running.connect()
    again.say("alice")  # no password asked: a guest may take it
    yield again.expect("Hello alice, welcome")
    yield running.stop()
    assert query(tmp_path / "data" / "chat.db", "SELECT key FROM accounts") == []


@pytest_twisted.inlineCallbacks
def test_a_founder_hands_rooms_on_first_and_rooms_forget_a_kept_operator(chat):
    running = yield chat(*FAST_RETRY)
    alice = yield running.connect("alice")
    bob = yield running.connect("bob")
    for user in (alice, bob):
        user.say(f"/register {PASSWORD}")
        yield user.expect("is now registered to you")
    alice.say("/join games")
    yield alice.expect("#games")
    alice.say("/room register")
    yield alice.expect("#games is now registered to you")
    bob.say("/join games")
    yield bob.expect("#games")
    alice.say("/op bob")
    yield alice.expect("bob")
    alice.say("/room info")
    yield alice.expect("Operators kept: bob.")
    alice.say(f"/unregister {PASSWORD}")
    yield alice.expect("You are the founder of #games: hand each on with /room transfer NAME")
    bob.say(f"/unregister {PASSWORD}")
    yield bob.expect("The name bob is no longer registered")
    alice.say("/room info")
    yield alice.expect("Operators kept: none besides the founder.")
    alice.say("/room drop")
    yield alice.expect("#games is no longer registered")
    alice.say(f"/unregister {PASSWORD}")
    yield alice.expect("The name alice is no longer registered")
    yield running.stop()
