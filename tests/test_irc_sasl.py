"""
SASL PLAIN over IRC (C{CAP REQ sasl}, C{AUTHENTICATE}): the numerics 900
and 903-908, chunked payloads, and the same password checks as C{PASS}.
"""

import base64

from test_irc_registration import registered_chat
from ircclient import IRCFakeClient


def plain(authcid: str, password: str, authzid: str = "") -> str:
    """The base64 PLAIN payload."""
    return base64.b64encode(f"{authzid}\0{authcid}\0{password}".encode()).decode()


def sasl_client(clock, passwords=None):
    alice = IRCFakeClient(registered_chat(clock, passwords or {"Alice": "secret1"}))
    alice.send("CAP LS 302", "CAP REQ sasl")
    alice.take()
    return alice


def test_sasl_plain_logs_in_to_the_account(clock):
    """AUTHENTICATE PLAIN answers +, the right payload gives 900 and 903, and registration logs in as the registered user."""
    alice = sasl_client(clock)
    alice.send("AUTHENTICATE PLAIN")
    assert alice.take() == ["AUTHENTICATE +"]
    alice.send("AUTHENTICATE " + plain("alice", "secret1"))
    assert alice.take() == [
        ":testchat 900 * Alice!~Alice@testchat Alice :You are now logged in as Alice",
        ":testchat 903 * :SASL authentication successful"]
    alice.register("alice")
    alice.send("CAP END")
    assert alice.numerics()[0] == "001"
    assert alice.user.name == "Alice" and alice.user.registered


def test_sasl_wrong_password_is_904_and_registered_nick_still_refused(clock):
    """A wrong password is 904; registering the registered nick without a login is still 433 with the NOTICE."""
    alice = sasl_client(clock)
    alice.send("AUTHENTICATE PLAIN", "AUTHENTICATE " + plain("alice", "wrong"))
    assert alice.take()[-1] == (":testchat 904 * :SASL authentication failed: wrong "
                                "account name or password")
    alice.register("alice")
    alice.send("CAP END")
    lines = alice.take()
    assert alice.numerics(lines) == ["433"]
    assert "send PASS" in lines[1]
    assert alice.user is None


def test_sasl_unknown_mechanism_abort_and_too_long(clock):
    """An unknown mechanism is 908 then 904; AUTHENTICATE * aborts with 906; a chunk over 400 bytes is 905."""
    alice = sasl_client(clock)
    alice.send("AUTHENTICATE SCRAM-SHA-256")
    assert alice.numerics() == ["908", "904"]
    alice.send("AUTHENTICATE PLAIN", "AUTHENTICATE *")
    assert alice.take()[-1] == ":testchat 906 * :SASL authentication aborted"
    alice.send("AUTHENTICATE PLAIN", "AUTHENTICATE " + "A" * 401)
    assert alice.numerics() == ["905"]


def test_sasl_payload_in_400_byte_chunks(clock):
    """A payload of exactly 400 bytes waits for AUTHENTICATE +; a longer one is sent in pieces."""
    password = "bar" * 97
    alice = sasl_client(clock, {"foo": password})
    payload = plain("foo", password, "foo")
    assert len(payload) == 400
    alice.send("AUTHENTICATE PLAIN", "AUTHENTICATE " + payload)
    assert alice.take() == ["AUTHENTICATE +"]
    alice.send("AUTHENTICATE +")
    assert alice.numerics() == ["900", "903"]
    bob = sasl_client(clock, {"bob": "x" * 400})
    payload = plain("bob", "x" * 400)
    bob.send("AUTHENTICATE PLAIN", "AUTHENTICATE " + payload[:400],
             "AUTHENTICATE " + payload[400:])
    assert bob.numerics() == ["900", "903"]


def test_sasl_needs_the_cap_and_comes_before_registration(clock):
    """Without CAP REQ sasl, AUTHENTICATE is 904; after a SASL login, another is 907; before registration it is not 451."""
    alice = IRCFakeClient(registered_chat(clock, {"Alice": "secret1"}))
    alice.send("AUTHENTICATE PLAIN")
    assert alice.numerics() == ["904"]
    alice.send("CAP REQ sasl", "AUTHENTICATE PLAIN", "AUTHENTICATE " + plain("Alice", "secret1"),
               "AUTHENTICATE PLAIN")
    assert alice.numerics() == ["900", "903", "907"]
