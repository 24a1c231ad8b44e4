"""
IRC operators: OPER against a twisted.cred checker of names and passwords
(C{--irc-opers}: a real password file), user mode +o, WHOIS 313, and KILL.
"""

import pytest
from twisted.cred.checkers import InMemoryUsernamePasswordDatabaseDontUse
from twisted.internet import task
from twisted.python import usage

from chatservice.passwords import set_password
from chatservice.tap import Options, makeService
from conftest import FakeClient
from ircclient import IRCFakeClient, irc_factory


@pytest.fixture
def irc(factory):
    opers = InMemoryUsernamePasswordDatabaseDontUse(operuser=b"operpassword")
    with_opers = irc_factory(factory, opers=opers)
    without = irc_factory(factory)

    def connect(nick: str, opers: bool = True) -> IRCFakeClient:
        client = IRCFakeClient(with_opers if opers else without)
        client.register(nick)
        client.take()
        return client

    return connect


def test_oper_success_gives_381_and_mode_plus_o(irc):
    baz = irc("baz")
    baz.send("OPER operuser operpassword")
    assert baz.take() == [":testchat 381 baz :You are now an IRC operator",
                          ":baz!~baz@testchat MODE baz :+o"]
    baz.send("MODE baz")
    assert baz.take() == [":testchat 221 baz :+io"]
    other = irc("other")
    other.send("WHOIS baz")
    assert ":testchat 313 other baz :is an IRC operator" in other.take()
    baz.send("MODE baz -o", "MODE baz")
    assert baz.take() == [":baz!~baz@testchat MODE baz :-o", ":testchat 221 baz :+i"]


def test_oper_refusals(irc):
    baz = irc("baz")
    for line in ("OPER operuser nottheoperpassword", "OPER notanoperuser operpassword"):
        baz.send(line)
        assert baz.take() == [":testchat 464 baz :Password incorrect"]
    baz.send("OPER operuser")
    assert baz.numerics() == ["461"]
    plain = irc("plain", opers=False)
    plain.send("OPER operuser operpassword")
    assert plain.take() == [":testchat 491 plain :This server has no IRC operators"]
    baz.send("MODE baz +o")  # only OPER gives it
    assert baz.numerics() == ["501"]
    baz.send("MODE baz")
    assert baz.take() == [":testchat 221 baz :+i"]


def test_kill_disconnects_anyone_but_only_for_an_operator(irc, factory):
    baz = irc("baz")
    telnet = FakeClient(factory)
    telnet.send("carol")
    telnet.take()
    baz.send("KILL carol :spamming")
    assert baz.take() == [":testchat 481 baz :Permission Denied- You're not an IRC operator"]
    baz.send("OPER operuser operpassword")
    baz.take()
    baz.send("KILL nobody :x")
    assert baz.numerics() == ["401"]
    baz.send("KILL carol :spamming")
    assert "carol" not in factory.chat.users
    assert any("killed by baz (spamming)" in line for line in telnet.take())
    victim = irc("victim")
    baz.send("KILL victim")
    assert victim.closed and "victim" not in factory.chat.users


def test_irc_opers_option_reads_a_real_password_file(tmp_path):
    path = tmp_path / "opers"
    with pytest.raises(usage.UsageError, match="--irc-opers"):
        Options().parseOptions(["--irc-port", "tcp:6667", "--irc-opers", str(path)])
    set_password(str(path), "operuser", "operpassword")
    with pytest.raises(usage.UsageError, match="only makes sense with --irc-port"):
        Options().parseOptions(["--irc-opers", str(path)])
    options = Options()
    options.parseOptions(["--no-database", "--data-dir", str(tmp_path),
                          "--irc-port", "tcp:6667", "--irc-opers", str(path)])
    service = makeService(options, task.Clock())
    checker = service.irc_factory.opers
    assert checker.path == str(path)
    assert checker._check("operuser", "operpassword") == (True, None)
    assert checker._check("operuser", "wrong") == (False, None)


# -- the server password (--irc-password) ------------------------------------------


def test_a_server_password_is_asked_before_registration(factory):
    """RFC 1459's connection password: PASS first, then NICK and USER; else 464 and ERROR."""
    ircf = irc_factory(factory, server_password="s3cret")
    good = IRCFakeClient(ircf)
    assert "001" in good.numerics(good.register("alice", "PASS s3cret"))
    wrong = IRCFakeClient(ircf)
    lines = wrong.register("bob", "PASS nope")
    assert wrong.numerics(lines) == ["464"] and lines[-1].startswith("ERROR ")
    assert wrong.closed and "bob" not in factory.chat.users
    missing = IRCFakeClient(ircf)
    lines = missing.register("carol")
    assert missing.numerics(lines) == ["464"] and "send PASS" in lines[0]
    assert missing.closed
    telnet = FakeClient(factory)  # telnet users are not asked for it
    telnet.send("dave")
    assert "dave" in factory.chat.users


def test_irc_password_option(tmp_path):
    with pytest.raises(usage.UsageError, match="--irc-password only makes sense"):
        Options().parseOptions(["--irc-password", "x"])
    options = Options()
    options.parseOptions(["--no-database", "--data-dir", str(tmp_path),
                          "--irc-port", "tcp:6667", "--irc-password", "s3cret"])
    assert makeService(options, task.Clock()).irc_factory.server_password == "s3cret"
