"""
The IRC front end's connection: registration (CAP, PASS, NICK, USER), the
welcome burst, the line limits, flood control and the timeouts, over a
L{StringTransport} on a fake clock.
"""

from typing import Dict

import pytest
from twisted.internet import defer

from chatservice.core.limits import Limits
from chatservice.core.text import name_key
from conftest import make_factory
from ircclient import IRCFakeClient, irc_factory

WELCOME = ["001", "002", "003", "004", "005", "005", "251", "254", "255", "265", "266", "375", "372", "376"]


class FakeAccounts:
    """Registered names and passwords, checked at once (no store, no threads)."""

    def __init__(self, passwords: Dict[str, str]) -> None:
        self.passwords = {name_key(name): (name, password)
                          for name, password in passwords.items()}

    def is_registered(self, key: str) -> bool:
        return key in self.passwords

    def authenticate(self, key: str, password: str, address=None, owner=None) -> defer.Deferred:
        name, right = self.passwords.get(key, (None, None))
        return defer.succeed(name if password == right else None)


@pytest.fixture
def irc(factory):
    """Return C{connect()}, opening an IRC connection to the chat of C{factory}."""
    ircf = irc_factory(factory)
    return lambda: IRCFakeClient(ircf)


def test_registration_sends_the_welcome_burst_and_places_no_room(irc, connect):
    """NICK and USER give 001-005, LUSERS and the MOTD in order; the IRC user is in no room while telnet users still land in the lobby."""
    alice = irc()
    lines = alice.register("alice")
    assert alice.numerics(lines) == WELCOME
    assert lines[0] == ":testchat 001 alice :Welcome to the testchat IRC network, " \
                       "alice!~alice@testchat"
    assert lines[12] == ":testchat 372 alice :- Be nice."
    assert alice.user is not None and alice.user.rooms == {}
    bob = connect("bob")
    assert list(bob.user.rooms) == ["lobby"]
    assert alice.take() == []  # nobody told an IRC user of a lobby it is not in


def test_isupport_says_what_the_chat_really_does(irc):
    """005 carries NETWORK, CASEMAPPING=ascii, CHANTYPES=#, the name limits, PREFIX, CHANMODES and UTF8ONLY."""
    lines = irc().register("alice")
    isupports = [line for line in lines if " 005 " in line]
    tokens = [token for line in isupports for token in line.split(" ")[3:-4]]
    for token in ("NETWORK=testchat", "CASEMAPPING=ascii", "CHANTYPES=#", "CHANNELLEN=33",
                  "NICKLEN=24", "TOPICLEN=300", "PREFIX=(ov)@+", "CHANMODES=b,k,l,imnst", "UTF8ONLY",
                  "CHATHISTORY=100", "MSGREFTYPES=timestamp,msgid"):
        assert token in tokens
    assert all(line.endswith(":are supported by this server") for line in isupports)


def test_no_motd_is_422(clock):
    """A chat without a message of the day answers 422 instead of 375/372/376."""
    factory = make_factory(clock=clock, limits=Limits(flood_rate=0))
    client = IRCFakeClient(irc_factory(factory))
    numerics = client.numerics(client.register("alice"))
    assert numerics[-1] == "422" and "375" not in numerics


def test_registration_waits_for_cap_end(irc):
    """After CAP LS, NICK and USER register nothing until CAP END; CAP REQ is acknowledged all or nothing."""
    alice = irc()
    lines = alice.register("alice", "CAP LS 302")
    assert lines == [":testchat CAP * LS :message-tags server-time echo-message "
                     "multi-prefix cap-notify batch labeled-response away-notify account-tag "
                     "extended-join sasl=PLAIN draft/chathistory"]
    assert alice.user is None
    alice.send("CAP REQ :server-time echo-message")
    assert alice.take() == [":testchat CAP * ACK :server-time echo-message"]
    alice.send("CAP REQ :echo-message draft/multiline")
    assert alice.take() == [":testchat CAP * NAK :echo-message draft/multiline"]
    alice.send("CAP LIST")
    assert alice.take() == [":testchat CAP * LIST :server-time echo-message cap-notify"]
    alice.send("CAP END")
    assert alice.numerics() == WELCOME
    assert alice.user is not None


def test_cap_ls_301_has_no_values(irc):
    """CAP LS without 302 lists the names alone (no sasl=PLAIN), as IRCv3.1 clients expect."""
    alice = irc()
    alice.send("CAP LS")
    [line] = alice.take()
    assert " sasl " in line and "=" not in line


def test_myinfo_lists_user_and_channel_modes(irc):
    """004 is server, version, user modes, channel modes and the channel modes with a parameter."""
    lines = irc().register("alice")
    [myinfo] = [line for line in lines if " 004 " in line]
    words = myinfo.split(" ")
    assert words[3] == "testchat" and words[4].startswith("chatservice-")
    assert words[5:] == ["i", "biklmnostv", ":bklov"]


def test_cap_after_registration(irc):
    """After registration, CAP REQ may add echo-message but not server-time (it changes how rooms reach the client); an unknown CAP subcommand is 410."""
    alice = irc()
    alice.register("alice")
    alice.send("CAP REQ :echo-message", "CAP REQ :server-time", "CAP FOO")
    assert alice.take() == [":testchat CAP alice ACK :echo-message",
                            ":testchat CAP alice NAK :server-time",
                            ":testchat 410 alice FOO :Invalid CAP command"]


def test_bad_nicks_get_432_and_taken_ones_433(irc, connect):
    """Nicks follow the chat's name rules: invalid and reserved ones get 432; one in use by a telnet user, in any case or width, gets 433; a good nick then registers."""
    connect("bob")
    alice = irc()
    alice.send("NICK a!ice", "NICK admin", "NICK ＢＯＢ", "NICK")
    numerics = alice.numerics()
    assert numerics == ["432", "432", "433", "431"]
    alice.send("USER alice 0 * :Alice")
    assert alice.user is None
    alice.send("NICK alice")
    assert alice.numerics()[0] == "001"


def test_a_name_taken_meanwhile_is_433_at_registration(irc, connect):
    """A nick taken between NICK and USER is refused with 433 at USER; NICK again then registers."""
    alice = irc()
    alice.send("NICK alice")
    connect("alice")
    alice.send("USER alice 0 * :Alice")
    assert alice.numerics() == ["433"]
    alice.send("NICK alice2")
    assert alice.user.name == "alice2"


def registered_chat(clock, passwords):
    factory = make_factory(clock=clock, server_name="testchat", limits=Limits(flood_rate=0))
    factory.chat.accounts = FakeAccounts(passwords)
    return irc_factory(factory)


def test_registered_nick_needs_pass(clock):
    """A registered nick without PASS gets 433 and a NOTICE saying to send PASS; with the right PASS first it logs in as registered."""
    ircf = registered_chat(clock, {"Alice": "secret1"})
    alice = IRCFakeClient(ircf)
    lines = alice.register("alice")
    assert alice.numerics(lines) == ["433"]
    assert "send PASS" in lines[1] and lines[1].startswith(":testchat NOTICE * :")
    assert alice.user is None
    alice.send("PASS secret1", "NICK alice")
    assert alice.numerics()[0] == "001"
    assert alice.user.name == "Alice" and alice.user.registered


def test_wrong_pass_is_464_and_three_close(clock):
    """A wrong PASS is 464; after the retry delay the client may try again; the third wrong one closes with an ERROR."""
    ircf = registered_chat(clock, {"alice": "secret1"})
    alice = IRCFakeClient(ircf)
    lines = alice.register("alice", "PASS nope")
    for attempt in range(2):
        assert alice.numerics(lines) == ["464"]
        clock.advance(2)
        assert "Send PASS" in alice.take()[-1]
        alice.send("PASS nope", "NICK alice")
        lines = alice.take()
    assert alice.numerics(lines) == ["464"]
    assert lines[-1] == "ERROR :Closing link: Too many wrong passwords."
    assert alice.closed


def test_commands_before_registration(irc):
    """Before registration a known command is 451 and an unknown one 421; PING is answered; nothing disconnects."""
    alice = irc()
    alice.send("JOIN #lobby", "FROB x", "PING :abc", "PRIVMSG #lobby :hi")
    assert alice.take() == [":testchat 451 * :You have not registered",
                            ":testchat 421 * FROB :Unknown command",
                            ":testchat PONG testchat :abc",
                            ":testchat 451 * :You have not registered"]
    assert not alice.closed


def test_pass_and_user_after_registration_are_462(irc):
    """PASS or USER again is 462 ERR_ALREADYREGISTRED; too few parameters is 461."""
    alice = irc()
    alice.register("alice")
    alice.send("USER a 0 * :b", "PASS x", "USER a b", "JOIN")
    assert alice.numerics() == ["462", "462", "461", "461"]


def test_registration_timeout(clock, factory):
    """A client that does not register within --login-timeout gets a NOTICE, an ERROR, and is closed."""
    factory.chat.limits.login_timeout = 30
    alice = IRCFakeClient(irc_factory(factory))
    alice.send("NICK alice")
    clock.advance(30)
    lines = alice.take()
    assert lines[0].startswith(":testchat NOTICE * :Registration timed out")
    assert lines[1].startswith("ERROR :Closing link: Registration timed out")
    assert alice.closed


def test_silent_client_is_pinged_then_closed(clock, factory):
    """A silent client gets PING after the interval; a PONG keeps it; silence past the timeout closes it with a NOTICE and ERROR, and its rooms see it quit."""
    alice = IRCFakeClient(irc_factory(factory, ping_interval=90, ping_timeout=60))
    alice.register("alice")
    alice.send("JOIN #lobby")
    alice.take()
    clock.advance(90)
    assert alice.take() == ["PING :testchat"]
    alice.send("PONG :testchat")
    clock.advance(89)
    assert alice.take() == []
    clock.advance(1)
    assert alice.take() == ["PING :testchat"]
    clock.advance(60)
    lines = alice.take()
    assert lines[0].startswith(":testchat NOTICE alice :Ping timeout")
    assert lines[1].startswith("ERROR :Closing link: Ping timeout")
    assert alice.closed and "alice" not in factory.chat.users


def test_long_lines_are_417_and_tags_have_their_own_allowance(irc):
    """A line over 512 bytes gets 417 and is not acted on; 4,000 bytes of tags before a short line are accepted; over 8,191 bytes of tags are 417."""
    alice = irc()
    alice.register("alice")
    alice.send("JOIN #" + "a" * 600)
    assert alice.numerics() == ["417"]
    assert alice.user.rooms == {}
    alice.send("@+draft/x=" + "b" * 4000 + " JOIN #games")
    assert alice.take()[0] == ":alice!~alice@testchat JOIN :#games"
    alice.send("@+draft/x=" + "b" * 8200 + " PING x")
    assert alice.numerics() == ["417"]
    assert not alice.closed


def test_a_line_without_end_is_refused_once(irc):
    """Bytes that never end in a newline are refused with one 417 and not buffered."""
    alice = irc()
    alice.register("alice")
    alice.feed(b"PRIVMSG #x :" + b"z" * 20000)
    assert alice.numerics() == ["417"]
    assert alice.protocol._buffer == b""
    alice.feed(b"zzz\r\nPING :ok\r\n")
    assert alice.take() == [":testchat PONG testchat :ok"]


def test_too_many_long_lines_disconnect(clock):
    """Past --max-long-lines refused lines, a NOTICE explains and the connection closes."""
    factory = make_factory(clock=clock, server_name="testchat",
                           limits=Limits(flood_rate=0, max_long_lines=2))
    alice = IRCFakeClient(irc_factory(factory))
    alice.register("alice")
    for _ in range(3):
        alice.send("PRIVMSG #x :" + "y" * 600)
    lines = alice.take()
    assert alice.numerics(lines) == ["417", "417"]
    assert "too many over-long lines" in lines[2]
    assert alice.closed


def test_flood_delays_lines_then_disconnects(clock):
    """Flood control as IRC servers do it: lines past the burst wait their turn at --flood-rate (none is lost, and later commands wait behind them); more than --flood-kick waiting lines close the connection with a NOTICE and ERROR."""
    factory = make_factory(clock=clock, server_name="testchat",
                           limits=Limits(flood_burst=5, flood_rate=1, flood_kick=3))
    alice = IRCFakeClient(irc_factory(factory))
    alice.register("alice")  # 2 lines of the burst
    alice.send(*["PING :%d" % n for n in range(3)])
    assert len(alice.take()) == 3
    alice.send("PING :late", "PING :later")
    assert alice.take() == []
    clock.advance(1)
    assert alice.take() == [":testchat PONG testchat :late"]
    clock.advance(1)
    assert alice.take() == [":testchat PONG testchat :later"]
    alice.send(*["PING :%d" % n for n in range(4)])
    lines = alice.take()
    assert lines == [":testchat NOTICE alice :You were disconnected for flooding: more than 3 "
                     "lines were waiting.",
                     "ERROR :Closing link: You were disconnected for flooding: more than 3 "
                     "lines were waiting."]
    assert alice.closed


def test_message_tags_are_accepted_and_ignored(irc, connect):
    """A message with client tags is acted on as without them."""
    bob = connect("bob")
    alice = irc()
    alice.register("alice")
    alice.send("JOIN #lobby", "@label=1;+draft/reply=abc\\sd PRIVMSG #lobby :tagged")
    assert bob.take()[-1] == "<alice> tagged"


def test_quit_with_a_message(irc, connect):
    """QUIT :reason answers ERROR and closes; the telnet neighbours see the reason."""
    bob = connect("bob")
    alice = irc()
    alice.register("alice")
    alice.send("JOIN #lobby")
    bob.take()
    alice.take()
    alice.send("QUIT :see you")
    assert alice.take() == ["ERROR :Quit: see you"]
    assert alice.closed
    assert bob.take() == ["<- alice quit (see you)"]
    assert "alice" not in bob.factory.chat.users


def test_kick_and_shutdown_say_why(irc, factory):
    """A kick from the operator reaches an IRC client as a NOTICE then ERROR."""
    alice = irc()
    alice.register("alice")
    factory.chat.kick("alice", "spam")
    assert alice.take() == [":testchat NOTICE alice :You have been kicked: spam",
                            "ERROR :Closing link: You have been kicked: spam"]
    assert alice.closed


def test_connection_lost_cleans_up(irc, factory):
    """A vanished IRC client leaves no ghost nick behind."""
    alice = irc()
    alice.register("alice")
    alice.transport.loseConnection()
    alice.protocol.connectionLost(None)
    assert "alice" not in factory.chat.users
    assert factory.chat.clients == {}




def test_idle_timeout_ignores_ping_and_pong(clock, factory):
    """--idle-timeout applies to IRC users too: PINGs and PONGs do not count as activity, other commands do."""
    factory.chat.limits.idle_timeout = 100
    alice = IRCFakeClient(irc_factory(factory, ping_interval=0))
    alice.register("alice")
    clock.advance(50)
    alice.send("AWAY", "PING :x")
    clock.advance(60)
    alice.send("PONG :x")
    assert not alice.closed
    clock.advance(40)
    lines = alice.take()
    assert lines[-2] == ":testchat NOTICE alice :You were idle for more than 100 seconds."
    assert alice.closed and "alice" not in factory.chat.users


def test_slow_reader_is_dropped_at_the_output_cap(clock, factory, connect):
    """An IRC client that stops reading is dropped once --max-output bytes wait for it, as a telnet one is."""
    factory.chat.limits.max_output = 2000
    alice = IRCFakeClient(irc_factory(factory))
    alice.register("alice")
    alice.send("JOIN #lobby")
    bob = connect("bob")
    alice.protocol.pauseProducing()
    for n in range(40):
        bob.send(f"line {n} " + "x" * 50)
    assert alice.transport.disconnecting or alice.transport.disconnected
    assert "alice" not in factory.chat.users


def test_offline_messages_are_shown_at_login(clock):
    """A registered nick logging in with PASS gets the private messages kept for it, with their time in the text (or in @time= under server-time)."""
    from chatservice.persistence.records import OfflineMessage

    ircf = registered_chat(clock, {"alice": "secret1"})
    kept = [OfflineMessage(1796126400.0, "bob", "are you there?", False),
            OfflineMessage(1796126460.0, "bob", "waves", True)]

    class Store:
        def take_offline(self, key):
            return defer.succeed(kept if key == "alice" else [])

    ircf.chat.store = Store()
    alice = IRCFakeClient(ircf)
    lines = alice.register("alice", "PASS secret1")
    assert lines[-3:] == [
        ":testchat NOTICE alice :2 messages while you were away:",
        ":bob!~bob@testchat PRIVMSG alice :[sent 2026-12-01 12:00 UTC] are you there?",
        ":bob!~bob@testchat PRIVMSG alice :\x01ACTION [sent 2026-12-01 12:01 UTC] waves\x01"]
    ircf.chat.logout(alice.user)
    again = IRCFakeClient(ircf)
    lines = again.register("alice", "CAP REQ server-time", "PASS secret1")
    again.send("CAP END")
    lines = again.take()
    assert lines[-1] == ("@time=2026-12-01T12:01:00.000Z :bob!~bob@testchat PRIVMSG alice "
                         ":\x01ACTION waves\x01")


def test_too_many_password_checks_is_explained(clock):
    """When the server has too many password checks waiting, a NOTICE says so and no wrong try is counted; PASS and NICK again then log in."""
    from chatservice.core import errors

    ircf = registered_chat(clock, {"alice": "secret1"})
    accounts = ircf.chat.accounts
    right = accounts.authenticate
    accounts.authenticate = lambda *args: defer.fail(
        errors.TooManyChecks("Too many logins are being checked; try again in a few seconds."))
    alice = IRCFakeClient(ircf)
    lines = alice.register("alice", "PASS secret1")
    assert lines == [":testchat NOTICE * :Too many logins are being checked; try again in "
                     "a few seconds. Send PASS <password> and NICK again."]
    accounts.authenticate = right
    alice.send("PASS secret1", "NICK alice")
    assert alice.numerics()[0] == "001"


def test_password_tries_and_delay_follow_the_options(clock):
    """--password-tries and --password-retry-delay apply to PASS as to telnet's password prompt."""
    ircf = registered_chat(clock, {"alice": "secret1"})
    ircf.chat.limits.password_tries = 2
    ircf.chat.limits.password_retry_delay = 5
    alice = IRCFakeClient(ircf)
    assert alice.numerics(alice.register("alice", "PASS nope")) == ["464"]
    clock.advance(4)
    alice.send("PASS nope", "NICK alice")
    assert alice.take() == [":testchat NOTICE * :Wrong password: wait a moment, then send "
                            "PASS and NICK again."]
    clock.advance(1)
    alice.take()
    alice.send("PASS nope", "NICK alice")
    assert alice.take()[-1] == "ERROR :Closing link: Too many wrong passwords."


def test_user_with_an_empty_name_is_461(irc):
    """USER with an empty real name (or user name) is 461 and registers nothing; a proper USER then does."""
    alice = irc()
    alice.send("NICK alice", "USER alice * * :")
    assert alice.take() == [
        ":testchat 461 * USER :Not enough parameters: the user name and the real name may "
        "not be empty"]
    assert alice.user is None
    alice.send("USER alice * * :Alice")
    assert alice.numerics()[0] == "001"


def test_a_client_waiting_for_flood_control_that_hangs_up_is_gone_at_once(clock):
    """Lines waiting for flood control do not stop the server from reading: a hang-up logs the user out at once, and the nick is free."""
    factory = make_factory(clock=clock, server_name="testchat",
                           limits=Limits(flood_burst=3, flood_rate=1, flood_kick=10))
    ircf = irc_factory(factory)
    bob = IRCFakeClient(ircf)
    bob.register("bob")
    bob.send("PING :1", "PING :2", "PING :3")
    assert bob.transport.producerState == "producing"
    bob.protocol.connectionLost(None)
    assert "bob" not in factory.chat.users
    again = IRCFakeClient(ircf)
    assert again.numerics(again.register("bob"))[0] == "001"
